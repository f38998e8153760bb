"""daVinci-MagiHuman's DiT (GAIR-NLP, Apache-2.0): one transformer over ONE packed sequence.

    video latents [B,48,F,H,W] --1x2x2 patches, Linear 192->D--> video tokens ┐
    audio latents [B,64,T]     --Linear 64->D-----------------> audio tokens  ├─ [video | audio | text]
    text [B,L,3584] (trimmed)  --Linear 3584->D---------------> text tokens   ┘
    -> num_layers x MagiHumanLayer (pre-norm joint self-attention + MLP)
    -> per-modality RMSNorm + Linear heads -> velocities (noise - data); text gives nothing

No timestep input: the model reads the noise level off the latents. Layers in `mm_layers`
(the first and last four) hold three weight sets, one per modality (video, audio, text,
stacked along the rows of every weight in that order); the others hold one set applied to
every token. Attention is grouped-query (num_kv_heads key/value heads), with per-head
RMSNorm on q and k, MagiHuman's RoPE (jova_core.model.rope, "magihuman" helpers) and a
sigmoid gate per query head and token. MLPs are GELU7 (`gelu7_layers`) or SwiGLU7.

Parameter names are the released checkpoint's own (`adapter.video_embedder.weight`,
`block.layers.N.attention.linear_qkv.weight`, ...): the state dict loads with no renaming.
RMSNorm weights are stored as offsets from 1, as released. Residual stream, norms, RoPE,
gate and activations run in fp32; block linears and attention in the dtype of the block
weights (bf16 in the release), as upstream does.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..defaults import GenerationDefaults
from ..geometry import WAN22_VAE, AudioLatentGeometry, ModelGeometry
from . import rope
from .attention import get_attention
from .hosted import Hosting
from .transformer import _compiled_with_hook_guards

VIDEO, AUDIO, TEXT = 0, 1, 2  # modality index = expert index in per-modality weights

# Its base model's inference settings (pipeline/video_generate.py, common/config.py; see
# shared/reference/magihuman.md): 25 fps, 448 x 256 for 4 s (101 frames -> 26 latent frames,
# 101 audio tokens: the codec count at 25 fps), UniPC, 32 steps, shift 5 on sigmas from 0.999
# (first 0.9998), video guidance 5 then 2 at int(1000 sigma) <= 500, audio guidance 5 throughout. The negative prompt is our own wording of
# the faults upstream's fixed negative lists (visual, audio and speech).
MAGIHUMAN_DEFAULTS = GenerationDefaults(
    fps=25.0, width=448, height=256, frames=101, steps=32, sampler="unipc", shift=5.0, shift_rule="fixed",
    cfg_video=5.0, cfg_audio=5.0, cfg_video_late=2.0, cfg_switch_t=500.0, sigma_max=0.999,
    negative_prompt=("blurry, low quality, distorted face, deformed hands, flicker, static frame, watermark, "
                     "subtitles; noisy, muffled or distorted audio, background hum, mumbled or unclear speech, "
                     "lips out of sync with the voice"),
    audio_length="codec", source="daVinci-MagiHuman base inference (GAIR-NLP), shared/reference/magihuman.md",
)
# Its distilled model's (example/distill): 8 steps at shift 5 from 0.999 (sigmas 0.9998, 0.972 ...
# 0.416: the same schedule at 8 steps), no guidance, each step re-noising the clean prediction (the "renoise" solver).
MAGIHUMAN_DISTILL_DEFAULTS = dataclasses.replace(
    MAGIHUMAN_DEFAULTS, steps=8, sampler="renoise", cfg_video=1.0, cfg_audio=1.0, cfg_video_late=None,
    source="daVinci-MagiHuman distill inference (GAIR-NLP), shared/reference/magihuman.md",
)
# Upstream allocates only the block linears (BaseLinear) in low precision: the embedders, the
# RMSNorms (in blocks and heads) and the heads stay fp32 whatever the weights are loaded in.
MAGIHUMAN_FP32_MODULES = (r"^adapter\.", r"norm", r"^final_linear_")
# Upstream pads T5Gemma prompts to 640 tokens and trims them to their real length.
MAGIHUMAN_TEXT_LEN = 640


@dataclass(frozen=True)
class MagiHumanConfig:
    """Architecture of a MagiHuman DiT; the defaults are the released 15.3B model's."""

    hidden_size: int = 5120
    num_layers: int = 40
    head_dim: int = 128
    num_kv_heads: int = 8
    mm_layers: tuple[int, ...] = (0, 1, 2, 3, 36, 37, 38, 39)  # one weight set per modality
    gelu7_layers: tuple[int, ...] = (0, 1, 2, 3)  # the others use SwiGLU7
    video_latent_channels: int = 48  # Wan2.2 VAE
    video_patch_size: tuple[int, int, int] = (1, 2, 2)
    audio_in_channels: int = 64  # Stable Audio Open VAE
    text_dim: int = 3584  # T5Gemma-9B encoder
    eps: float = 1e-6
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        if self.hidden_size % self.head_dim or self.head_dim % 8:
            raise ValueError(f"hidden_size {self.hidden_size} must be a multiple of head_dim {self.head_dim}, itself a multiple of 8")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"{self.num_heads} query heads cannot be grouped over {self.num_kv_heads} key/value heads")
        outside = [i for i in (*self.mm_layers, *self.gelu7_layers) if not 0 <= i < self.num_layers]
        if outside:
            raise ValueError(f"layer indices {outside} lie outside 0..{self.num_layers - 1}")

    @property
    def num_heads(self) -> int:
        return self.hidden_size // self.head_dim

    @property
    def video_in_channels(self) -> int:
        """Features of one video token: a patch flattened channel-major (c, pt, ph, pw)."""
        return self.video_latent_channels * math.prod(self.video_patch_size)

    @property
    def gelu7_width(self) -> int:
        return 4 * self.hidden_size

    @property
    def swiglu7_width(self) -> int:
        return int(self.hidden_size * 8 / 3) // 4 * 4

    def num_experts(self, layer: int) -> int:
        return 3 if layer in self.mm_layers else 1


def gelu7(u: torch.Tensor) -> torch.Tensor:
    """c * sigmoid(1.702 c), c = min(u, 7)."""
    c = u.clamp(max=7.0)
    return c * torch.sigmoid(1.702 * c)


def swiglu7(u: torch.Tensor) -> torch.Tensor:
    """Even columns of u gate, odd ones are the linear half: gelu7(g) * (clamp(l, -7, 7) + 1)."""
    gate, linear = u[..., ::2], u[..., 1::2]
    return gelu7(gate) * (linear.clamp(-7.0, 7.0) + 1)


def _compute_dtype(weight: torch.Tensor) -> torch.dtype:
    """The dtype a layer with this weight computes in: its own, bf16 for fp8 storage (the
    weight is upcast when the layer runs, by layer-wise casting hooks)."""
    return torch.bfloat16 if weight.dtype in (torch.float8_e4m3fn, torch.float8_e5m2) else weight.dtype


def _run(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """An fp32-kept linear (embedders, heads) on x, cast to whatever the layer computes in; fp32 out."""
    return layer(x.to(_compute_dtype(layer.weight))).float()


def _per_modality(x: torch.Tensor, lengths: tuple[int, int, int], apply) -> torch.Tensor:
    """apply(expert, part) on each modality's run of tokens (dim 1) of x, joined again."""
    parts = [apply(e, part) for e, part in enumerate(torch.split(x, lengths, dim=1)) if part.shape[1]]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class ModalityRMSNorm(nn.Module):
    """RMSNorm over the last dim with weight (1 + w); one w per modality when experts = 3."""

    def __init__(self, dim: int, experts: int = 1, eps: float = 1e-6):
        super().__init__()
        self.experts, self.eps = experts, eps
        self.weight = nn.Parameter(torch.zeros(experts * dim))

    def forward(self, x: torch.Tensor, lengths: tuple[int, int, int] | None = None) -> torch.Tensor:
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)
        scales = (self.weight.float() + 1).chunk(self.experts)
        if self.experts == 1:
            return normed * scales[0]
        return _per_modality(normed, lengths, lambda e, part: part * scales[e])


class ModalityLinear(nn.Linear):
    """Bias-free linear, one weight block per modality stacked along the rows when experts = 3.
    Runs in the weight's dtype and returns fp32. An nn.Linear, so that layer-wise casting
    (fp8 storage, bf16 compute: diffusers' apply_layerwise_casting) treats it as one."""

    def __init__(self, in_features: int, out_features: int, experts: int = 1):
        super().__init__(in_features, experts * out_features, bias=False)
        self.experts = experts

    def forward(self, x: torch.Tensor, lengths: tuple[int, int, int]) -> torch.Tensor:
        x = x.to(self.weight.dtype)
        if self.experts == 1:
            return F.linear(x, self.weight).float()
        blocks = self.weight.chunk(self.experts)
        return _per_modality(x, lengths, lambda e, part: F.linear(part, blocks[e]).float())


class MagiHumanAttention(nn.Module):
    def __init__(self, cfg: MagiHumanConfig, experts: int):
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        q_size, kv_size = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
        self.sizes = (q_size, kv_size, kv_size, cfg.num_heads)  # fused rows: q | k | v | gate
        self.pre_norm = ModalityRMSNorm(cfg.hidden_size, experts, cfg.eps)
        self.linear_qkv = ModalityLinear(cfg.hidden_size, sum(self.sizes), experts)
        self.linear_proj = ModalityLinear(q_size, cfg.hidden_size, experts)
        self.q_norm = ModalityRMSNorm(cfg.head_dim, experts, cfg.eps)
        self.k_norm = ModalityRMSNorm(cfg.head_dim, experts, cfg.eps)

    def forward(self, x: torch.Tensor, lengths, cos, sin, attend, dtype) -> torch.Tensor:
        qkv = self.linear_qkv(self.pre_norm(x, lengths), lengths)  # [B, S, q + 2 kv + heads] fp32
        q, k, v, gate = qkv.split(self.sizes, dim=-1)
        q = self.q_norm(q.unflatten(-1, (self.num_heads, self.head_dim)), lengths)  # [B, S, H, hd]
        k = self.k_norm(k.unflatten(-1, (self.num_kv_heads, self.head_dim)), lengths)  # [B, S, Hkv, hd]
        v = v.unflatten(-1, (self.num_kv_heads, self.head_dim))
        q, k = rope.apply_rope_half(q, cos, sin), rope.apply_rope_half(k, cos, sin)
        out = attend(q.to(dtype), k.to(dtype), v.to(dtype)).float()  # [B, S, H, hd]
        out = out * torch.sigmoid(gate)[..., None]
        return self.linear_proj(out.flatten(2), lengths)


class MagiHumanMLP(nn.Module):
    def __init__(self, cfg: MagiHumanConfig, experts: int, gelu: bool):
        super().__init__()
        width = cfg.gelu7_width if gelu else cfg.swiglu7_width
        self.activation = gelu7 if gelu else swiglu7
        self.pre_norm = ModalityRMSNorm(cfg.hidden_size, experts, cfg.eps)
        self.up_gate_proj = ModalityLinear(cfg.hidden_size, width if gelu else 2 * width, experts)
        self.down_proj = ModalityLinear(width, cfg.hidden_size, experts)

    def forward(self, x: torch.Tensor, lengths) -> torch.Tensor:
        hidden = self.activation(self.up_gate_proj(self.pre_norm(x, lengths), lengths))
        return self.down_proj(hidden, lengths)


class MagiHumanLayer(nn.Module):
    def __init__(self, cfg: MagiHumanConfig, index: int):
        super().__init__()
        experts = cfg.num_experts(index)
        self.attention = MagiHumanAttention(cfg, experts)
        self.mlp = MagiHumanMLP(cfg, experts, gelu=index in cfg.gelu7_layers)

    def forward(self, x: torch.Tensor, lengths, cos, sin, attend, dtype) -> torch.Tensor:
        x = x + self.attention(x, lengths, cos, sin, attend, dtype)
        return x + self.mlp(x, lengths)


class MagiHumanBlocks(nn.Module):
    """Holds the layers (keys block.layers.N.*)."""

    def __init__(self, cfg: MagiHumanConfig):
        super().__init__()
        self.layers = nn.ModuleList(MagiHumanLayer(cfg, i) for i in range(cfg.num_layers))


class RopeBands(nn.Module):
    """The RoPE frequencies, a buffer the checkpoint carries (key adapter.rope.bands)."""

    def __init__(self, cfg: MagiHumanConfig):
        super().__init__()
        self.register_buffer("bands", rope.magihuman_bands(cfg.head_dim, cfg.rope_theta))


class MagiHumanAdapter(nn.Module):
    """Per-modality input embeddings (Linear with bias, fp32) and the RoPE bands."""

    def __init__(self, cfg: MagiHumanConfig):
        super().__init__()
        self.video_embedder = nn.Linear(cfg.video_in_channels, cfg.hidden_size)
        self.audio_embedder = nn.Linear(cfg.audio_in_channels, cfg.hidden_size)
        self.text_embedder = nn.Linear(cfg.text_dim, cfg.hidden_size)
        self.rope = RopeBands(cfg)


class MagiHumanTransformer(nn.Module):
    def __init__(self, config: MagiHumanConfig | None = None, attention: str = "sdpa"):
        super().__init__()
        cfg = self.config = config or MagiHumanConfig()
        self.adapter = MagiHumanAdapter(cfg)
        self.block = MagiHumanBlocks(cfg)
        self.final_norm_video = ModalityRMSNorm(cfg.hidden_size, eps=cfg.eps)
        self.final_norm_audio = ModalityRMSNorm(cfg.hidden_size, eps=cfg.eps)
        self.final_linear_video = nn.Linear(cfg.hidden_size, cfg.video_in_channels, bias=False)
        self.final_linear_audio = nn.Linear(cfg.hidden_size, cfg.audio_in_channels, bias=False)
        self.set_attention(attention)

    def set_attention(self, name: str) -> None:
        self._attend = get_attention(name)

    @property
    def compute_dtype(self) -> torch.dtype:
        """Dtype of the block linears and attention: their weights' (bf16 for the released
        files), bf16 for weights stored in fp8."""
        return _compute_dtype(self.block.layers[0].attention.linear_qkv.weight)

    @property
    def hosting(self) -> Hosting:
        """What the sampler and nodes need to know (jova_core.model.hosted)."""
        cfg = self.config
        geometry = ModelGeometry(
            video=WAN22_VAE,
            audio=AudioLatentGeometry(cfg.audio_in_channels, MAGIHUMAN_DEFAULTS.fps, name="daVinci-MagiHuman"),
            video_patch=cfg.video_patch_size,
        )
        return Hosting(
            name="daVinci-MagiHuman", geometry=geometry, timesteps="none", reference="clean-first-frame",
            modes=("t2va", "i2va", "a2v"),
            modes_note=("it always generates video and sound together (text, + a clean first frame for i2va, "
                        "+ your clean audio for a2v); its release has no video-only, audio-only or "
                        "video-to-audio mode"),
            text_dim=cfg.text_dim, text_len=MAGIHUMAN_TEXT_LEN, separate_audio_text=False, trims_text=True,
            video_codec="Wan2.2 VAE", audio_codec="Stable Audio Open VAE", text_encoder="T5Gemma-9B encoder",
            defaults=MAGIHUMAN_DEFAULTS, fp32_modules=MAGIHUMAN_FP32_MODULES,
        )

    def swappable_blocks(self) -> nn.ModuleList:
        return self.block.layers

    def compile_blocks(self, **options) -> None:
        """torch.compile each layer's forward in place, as JoVATransformer.compile_blocks does."""
        for layer in self.block.layers:
            layer.forward = _compiled_with_hook_guards(layer.forward, **options)

    def forward(
        self, video: torch.Tensor | None, audio: torch.Tensor | None, text: torch.Tensor, *,
        t_video=None, t_audio=None, text_audio: torch.Tensor | None = None,
        reference: torch.Tensor | None = None, fps: float | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Flow velocities (noise - data) for noisy latents; no timestep is taken.

        video: [B, video_latent_channels, F, H, W] normalised Wan2.2 latents (H, W even), or None.
        audio: [B, audio_in_channels, T] Stable Audio Open latents, or None.
        text:  [B or 1, L, text_dim] T5Gemma hidden states of the real tokens only (no padding).
        t_video, t_audio, fps: accepted for the hosted-model interface (jova_core.model.hosted)
            and ignored: the model reads the noise level off the latents, audio positions
            come from lengths.
        text_audio: must be None or `text` (one text stream for both modalities).
        reference: must be None (a reference image is a clean latent frame 0, set by the sampler).
        Returns velocities shaped like video and audio (None where the input was None).
        """
        cfg = self.config
        if video is None and audio is None:
            raise ValueError("MagiHumanTransformer needs video latents, audio latents, or both")
        if text_audio is not None and text_audio is not text and not torch.equal(text_audio, text):
            raise ValueError("daVinci-MagiHuman reads one text for video and audio: give one negative prompt "
                             "(leave negative_audio unconnected)")
        if reference is not None:
            raise ValueError("daVinci-MagiHuman takes a reference image as a clean first latent frame, not as "
                             "condition channels")
        batch = (video if video is not None else audio).shape[0]
        if text.dim() == 3 and text.shape[0] == 1 and batch > 1:
            text = text.expand(batch, -1, -1)
        parts, positions, video_grid = [], [], None
        if video is not None:
            tokens, video_grid = self._patchify_video(video)  # [B, Nv, 192]
            parts.append(_run(self.adapter.video_embedder, tokens))
            positions.append(rope.magihuman_video_positions(video_grid, device=video.device))
        if audio is not None:
            if audio.dim() != 3 or audio.shape[1] != cfg.audio_in_channels:
                raise ValueError(f"audio latents must be [B, {cfg.audio_in_channels}, T]; got {list(audio.shape)}")
            parts.append(_run(self.adapter.audio_embedder, audio.transpose(1, 2)))
            positions.append(rope.magihuman_audio_positions(audio.shape[2], device=audio.device))
        if text.dim() != 3 or text.shape[0] != batch or text.shape[2] != cfg.text_dim:
            raise ValueError(f"text must be [{batch}, L, {cfg.text_dim}] hidden states; got {list(text.shape)}")
        parts.append(_run(self.adapter.text_embedder, text))
        positions.append(rope.magihuman_text_positions(text.shape[1], device=text.device))

        n_video = parts[0].shape[1] if video is not None else 0
        n_audio = audio.shape[2] if audio is not None else 0
        lengths = (n_video, n_audio, text.shape[1])
        x = torch.cat(parts, dim=1)  # [B, S, D] fp32 residual stream
        angles = rope.magihuman_angles(torch.cat(positions), self.adapter.rope.bands)
        cos, sin = torch.cos(angles).float(), torch.sin(angles).float()
        dtype = self.compute_dtype
        for layer in self.block.layers:
            x = layer(x, lengths, cos, sin, self._attend, dtype)

        video_out = audio_out = None
        if video is not None:
            head = _run(self.final_linear_video, self.final_norm_video(x[:, :n_video]))
            video_out = self._unpatchify_video(head, video_grid).to(video.dtype)
        if audio is not None:
            head = _run(self.final_linear_audio, self.final_norm_audio(x[:, n_video : n_video + n_audio]))
            audio_out = head.transpose(1, 2).to(audio.dtype)
        return video_out, audio_out

    def _patchify_video(self, video: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """[B, C, F, H, W] -> tokens [B, F'*H'*W', C*pt*ph*pw] in (f, y, x) raster order,
        features channel-major (c, pt, ph, pw), and the patch grid (F', H', W')."""
        cfg = self.config
        pt, ph, pw = cfg.video_patch_size
        b, c, f, h, w = video.shape
        if c != cfg.video_latent_channels or f % pt or h % ph or w % pw:
            raise ValueError(
                f"video latents must be [B, {cfg.video_latent_channels}, F, H, W] with F, H, W multiples of "
                f"{cfg.video_patch_size}; got {list(video.shape)}"
            )
        grid = (f // pt, h // ph, w // pw)
        x = video.reshape(b, c, grid[0], pt, grid[1], ph, grid[2], pw)
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # [B, F', H', W', C, pt, ph, pw]
        return x.reshape(b, math.prod(grid), -1), grid

    def _unpatchify_video(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """Head outputs [B, N, pt*ph*pw*C], read (pt, ph, pw, c) with the channel fastest
        (unlike the input), -> [B, C, F, H, W]."""
        pt, ph, pw = self.config.video_patch_size
        b = x.shape[0]
        x = x.reshape(b, *grid, pt, ph, pw, -1)  # [B, F', H', W', pt, ph, pw, C]
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # [B, C, F', pt, H', ph, W', pw]
        return x.reshape(b, -1, grid[0] * pt, grid[1] * ph, grid[2] * pw)
