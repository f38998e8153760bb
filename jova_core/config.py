"""The JoVA transformer's configuration and its named presets.

A config is a plain dataclass that round-trips through JSON, so it can live in a
checkpoint's safetensors metadata (see ``jova_core.checkpoint``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from .geometry import AudioLatentGeometry, ModelGeometry, VideoLatentGeometry


def dataclass_from_json(cls, text: str, what: str):
    """A settings dataclass stored as JSON in a file's metadata. Unknown fields are refused,
    not dropped: they mean a newer pack wrote the file, and ignoring them would run it wrongly."""
    data = json.loads(text)
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} fields {unknown}; is this file from a newer ComfyUI-JoVA?")
    return cls(**data)


@dataclass
class JoVAConfig:
    # Width of every token stream.
    dim: int = 1536
    num_heads: int = 12
    ffn_dim: int = 8960
    # Sinusoidal timestep features fed to each branch's time MLP.
    freq_dim: int = 256
    # Width of the text encoder's hidden states (umT5-XXL: 4096).
    text_dim: int = 4096
    # "cross": text is padded to ``text_len`` and read by per-branch cross-attention
    #          (Wan2.1 / JavisDiT++ layout); self-attention is joint over video + audio.
    # "joint": text tokens join the one self-attention, as in the JoVA paper.
    text_attention: str = "cross"
    text_len: int = 512
    # Blocks where text and modality tokens of a branch have separate weights
    # (four token groups); only meaningful with text_attention="joint".
    dual_stream_layers: int = 0
    # Blocks where each branch's [text; modality] tokens share one set of weights.
    single_stream_layers: int = 30
    eps: float = 1e-6
    rope_theta: float = 10000.0

    # Video branch: Wan2.1 VAE latents [B, 16, T, H, W], patchified by (t, h, w).
    # (The latent geometry these fields make: ``geometry`` below, jova_core.geometry.)
    video_in_channels: int = 16
    video_out_channels: int = 16
    video_patch_size: tuple[int, int, int] = (1, 2, 2)
    # Extra input channels for the reference image (Waver style: 16 first-frame latent
    # channels + 4 mask channels); 0 disables reference conditioning.
    video_condition_channels: int = 0
    # Which latent frames carry the reference latent in those channels: "first" (Waver:
    # frame 0 only; later frames must fetch it through attention) or "every" (repeated on
    # every frame, as Stable Video Diffusion conditions; the mask still marks frame 0 as
    # the given one). "every" lets a small model keep the picture from the first steps.
    reference_frames: str = "first"
    # Pixel frames per video latent frame (Wan VAE's temporal stride) and pixels per
    # latent cell side (Wan2.1: 8; Wan2.2: 16).
    video_temporal_stride: int = 4
    video_spatial_stride: int = 8

    # Audio branch: latents [B, C, F, T] (F frequency bins, 1 for MMAudio's 1D latents),
    # patchified by (f, t).
    audio_in_channels: int = 20
    audio_out_channels: int = 20
    audio_patch_size: tuple[int, int] = (1, 1)
    # F of 2-D audio latents [B, C, F, T] (AudioLDM2: 16 latent mel bins); 1 for [B, C, T].
    audio_frequency_bins: int = 1
    # Audio latent frames per second (MMAudio 16k: 31.25); used by the aligned RoPE.
    audio_latent_rate: float = 31.25
    # "aligned": audio temporal positions in units of video latent frames (see model/rope.py).
    # "javisdit": JavisDiT++'s index-based TA-RoPE (for hosting its checkpoint exactly).
    audio_rope: str = "aligned"
    # Video frame rate the aligned RoPE assumes when the caller gives none.
    default_fps: float = 16.0

    preset: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        self.video_patch_size = tuple(self.video_patch_size)
        self.audio_patch_size = tuple(self.audio_patch_size)
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head dim {self.head_dim} must be even for RoPE")
        if self.text_attention not in ("cross", "joint"):
            raise ValueError(f"text_attention must be 'cross' or 'joint', got {self.text_attention!r}")
        if self.text_attention == "cross" and self.dual_stream_layers:
            raise ValueError(
                "dual_stream_layers needs text_attention='joint': with cross-attention text "
                "is not a token stream, so there is nothing to give separate weights to"
            )
        if self.reference_frames not in ("first", "every"):
            raise ValueError(f"reference_frames must be 'first' or 'every', got {self.reference_frames!r}")
        if self.audio_rope not in ("aligned", "javisdit"):
            raise ValueError(f"audio_rope must be 'aligned' or 'javisdit', got {self.audio_rope!r}")
        reference = self.video_in_channels + self.video_temporal_stride  # latent + one mask channel per pixel frame
        if self.video_condition_channels not in (0, reference):
            raise ValueError(
                f"video_condition_channels must be 0 (no reference image) or {reference} "
                f"({self.video_in_channels} latent + {self.video_temporal_stride} mask channels), "
                f"got {self.video_condition_channels}"
            )

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def num_layers(self) -> int:
        return self.dual_stream_layers + self.single_stream_layers

    @property
    def geometry(self) -> ModelGeometry:
        """The latents this model takes (channels, strides, audio latent rate, patches)."""
        return ModelGeometry(
            video=VideoLatentGeometry(self.video_in_channels, self.video_temporal_stride, self.video_spatial_stride,
                                      name=f"{self.preset} model"),
            audio=AudioLatentGeometry(self.audio_in_channels, self.audio_latent_rate, self.audio_frequency_bins,
                                      name=f"{self.preset} model"),
            video_patch=self.video_patch_size,
            audio_patch=self.audio_patch_size,
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "JoVAConfig":
        return dataclass_from_json(cls, text, "JoVA config")


PRESETS: dict[str, dict] = {
    # For tests and the CPU demo: well under a million parameters.
    "tiny": dict(
        dim=32, num_heads=2, ffn_dim=64, freq_dim=32, text_dim=16, text_attention="joint",
        text_len=16, dual_stream_layers=1, single_stream_layers=1,
    ),
    # Wan2.1 T2V 1.3B in both branches, text by cross-attention: hosts converted Wan2.1
    # and JavisDiT++ weights. Audio: MMAudio 16k latents (20 channels, 31.25 Hz).
    "wan2.1-1.3b": dict(
        dim=1536, num_heads=12, ffn_dim=8960, text_dim=4096, text_attention="cross",
        text_len=512, single_stream_layers=30,
    ),
    # The paper's hybrid layout at Waver 1.0's scale (M=16 dual + N=40 single blocks,
    # 24 heads x 128, hidden 3072; flan-T5-XXL text). Waver's FFN width is not public:
    # 4 x hidden is our assumption. Far too big for a CPU: build it on the meta device.
    "jova-paper": dict(
        dim=3072, num_heads=24, ffn_dim=12288, text_dim=4096, text_attention="joint",
        text_len=512, dual_stream_layers=16, single_stream_layers=40,
        video_condition_channels=20,
    ),
}


def preset_config(name: str, **overrides) -> JoVAConfig:
    """The named preset, with any field overridden by keyword."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return JoVAConfig(**{**PRESETS[name], **overrides, "preset": name})
