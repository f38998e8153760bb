"""JavisDiT++ v1.0 (JavisVerse/JavisDiT-v1.0-jav) -> JoVA, exactly.

JavisDiT++ is Wan2.1-1.3B with audio tokens appended to the video tokens: ONE
self-attention and ONE cross-attention whose weights both modalities share, a shared
text MLP and time MLP, one timestep for both modalities, and audio-only weights for the
rest (facts read from its public model code, javisdit/models/wan/modules/model.py):
  audio_patch_embedding  Conv2d(8 -> dim, kernel = stride = (2 time, 2 mel)) over
                         AudioLDM2 latents laid out [B, 8, T, M] (time before mel bins)
  audio_head             Wan head (own modulation) reading the shared time embedding
  audio_time_projection  SiLU, Linear(dim -> 3 dim): audio FFN shift/scale/gate
  blocks.N.audio_ffn, blocks.N.audio_modulation.param [1, 3, dim]
Audio tokens take the self-attention shift/scale/gate of the shared modulation (video
timestep projection rows 0..3 dim, block modulation [:, :3]) and their FFN's from the
audio parameters.

A JoVA model with per-branch weights hosts this exactly:
  - the shared attention, norms, cross-attention, text and time MLPs are copied into
    both branches;
  - audio block modulation = concat(modulation[:, :3], audio_modulation.param);
  - audio time projection (6 dim rows) = concat(time_projection rows [0, 3 dim),
    audio_time_projection);
  - JoVA audio latents are [B, C, F, T] (bins before time): the patch kernel's last two
    axes are swapped and the head's output rows reordered from (time, mel, channel) to
    (mel, time, channel); give JoVA a JavisDiT latent as ``latent.transpose(-1, -2)``;
  - positions: config audio_rope="javisdit" (see model/rope.py).
Conditions for exactness: t_audio == t_video (JavisDiT has one timestep) and the same
text for both branches (its text MLP is shared).

Velocity sign: JavisDiT's forward returns the NEGATED head output, because its rflow
scheduler integrates v = x0 - noise (its loss target is x_start - noise). The heads
themselves therefore predict noise - x0, which is JoVA's convention already, so the
heads are copied unchanged; JoVA's output is minus JavisDiT's output.
"""

from __future__ import annotations

import torch

from ..config import JoVAConfig
from ..defaults import GenerationDefaults
from ..geometry import AUDIOLDM2
from ..identify import JAVISDIT_MARKER, is_javisdit
from .source import SourceStateDict, strip_wrapper_prefix
from .wan import BRANCH_MODULES, wan_config

MARKER = JAVISDIT_MARKER
# JavisDiT++ v1.0's own inference settings (JavisVerse/JavisDiT HEAD b505b37), stored in a
# converted file so the pack reproduces them. Sources, upstream paths:
JAVISDIT_DEFAULTS = GenerationDefaults(
    # configs/javisdit-v1-0/inference/sample.py: fps 16 (and saved at 16 fps).
    fps=16.0,
    # sample.py: resolution "240p", aspect_ratio "9:16"; javisdit/datasets/aspect.py maps
    # that to 240 x 426 (H x W, landscape); JoVA rounds the width to 432, the size
    # JavisDiT++ decodes too (latent width 54).
    width=426, height=240,
    # sample.py num_frames 65 (README: 240p, 4 s); 65 / 16 = 4.0625 s.
    frames=65,
    # sample.py: 50 steps; javisdit/schedulers/rf/rectified_flow.py: Euler on
    # t_i = 1000 (1 - i/N), each shifted (= jova_core.sampling.schedule.sampling_sigmas).
    steps=50, sampler="euler",
    # javisdit/schedulers/rf/__init__.py: s = sqrt(H W / 512^2) * sqrt(5 floor(F / 17))
    # from the requested pixel size and frame count (240p, 65 frames: 2.42).
    shift=1.0, shift_rule="javisdit",
    # sample.py cfg_scale 5.0, applied to both modalities with the config's neg_prompt
    # (Wan2.1's standard Chinese negative prompt followed by audio negatives), verbatim:
    cfg_video=5.0, cfg_audio=5.0,
    negative_prompt=(
        "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走，低音质，差音质，最差音质，噪音，失真的，破音，削波失真，数字瑕疵，声音故障，不自然的，刺耳的，尖锐的，底噪，过多混响，过多回声，突兀的剪辑，不自然的淡出，录音质量差，业余录音"
    ),
    # scripts/inference.py: mel frames int(duration / 0.01) rounded up to a multiple of 32,
    # AudioLDM2 latents [B, 8, T_mel / 4, 16] (JoVA: [B, 8, 16, T]); 65 frames -> 104.
    # (The latent geometry itself is the model config's: jova_core.geometry.AUDIOLDM2.)
    audio_length="javisdit",
    source="JavisVerse/JavisDiT b505b37: configs/javisdit-v1-0/inference/sample.py, scripts/inference.py, "
           "javisdit/schedulers/rf, javisdit/datasets/aspect.py",
)


def convert_javisdit(state_dict: dict[str, torch.Tensor]) -> tuple[JoVAConfig, dict[str, torch.Tensor]]:
    """JavisDiT++ v1.0 transformer -> (JoVA config, JoVA state dict)."""
    state_dict = strip_wrapper_prefix(state_dict, MARKER)
    if not is_javisdit(state_dict.keys()):
        raise ValueError("not a JavisDiT++ transformer: expected audio_patch_embedding and blocks.N.audio_ffn keys")
    source = SourceStateDict(state_dict, "JavisDiT++ transformer")
    dim, audio_channels, patch_t, patch_m = source.shape(MARKER)
    config = wan_config(
        source,
        audio_in_channels=audio_channels,
        audio_out_channels=source.shape("audio_head.head.weight")[0] // (patch_t * patch_m),
        audio_patch_size=(patch_m, patch_t),
        audio_rope="javisdit",
        # AudioLDM2 latents: 25 latent frames per second, 16 latent mel bins.
        audio_latent_rate=AUDIOLDM2.latent_rate,
        audio_frequency_bins=AUDIOLDM2.frequency_bins,
    )
    out: dict[str, torch.Tensor] = {}

    # Video branch: the Wan part, names unchanged.
    for module in BRANCH_MODULES:
        for name, tensor in source.take_prefix(module + ".").items():
            out[f"video.{module}.{name}"] = tensor
    # Audio branch ends.
    for module in ("text_embedding", "time_embedding"):
        for name, tensor in list(out.items()):
            if name.startswith(f"video.{module}."):
                out["audio" + name[len("video"):]] = tensor.clone()
    shared = 3 * dim  # rows of time_projection giving the attention shift/scale/gate
    for name in ("weight", "bias"):
        out[f"audio.time_projection.1.{name}"] = torch.cat(
            [out[f"video.time_projection.1.{name}"][:shared], source.take(f"audio_time_projection.1.{name}")]
        )
    out["audio.patch_embedding.weight"] = source.take(MARKER).transpose(2, 3).contiguous()
    out["audio.patch_embedding.bias"] = source.take("audio_patch_embedding.bias")
    out["audio.head.modulation"] = source.take("audio_head.modulation")
    for name in ("weight", "bias"):
        rows = source.take(f"audio_head.head.{name}")  # rows ordered (time, mel, channel)
        rows = rows.unflatten(0, (patch_t, patch_m, -1)).transpose(0, 1).flatten(0, 2)
        out[f"audio.head.head.{name}"] = rows.contiguous()

    for i in range(config.num_layers):
        block = source.take_prefix(f"blocks.{i}.")
        audio_ffn = {k: block.pop(k) for k in list(block) if k.startswith("audio_ffn.")}
        audio_modulation = block.pop("audio_modulation.param")
        for name, tensor in block.items():
            out[f"blocks.{i}.video.{name}"] = tensor
            if name != "modulation":
                out[f"blocks.{i}.audio.{name}"] = tensor.clone()
        out[f"blocks.{i}.audio.modulation"] = torch.cat([block["modulation"][:, :3], audio_modulation], dim=1)
        for name, tensor in audio_ffn.items():
            out[f"blocks.{i}.audio.ffn{name[len('audio_ffn'):]}"] = tensor
    source.finish()
    return config, out

