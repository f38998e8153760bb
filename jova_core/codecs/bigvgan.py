"""BigVGAN vocoders hosted in diffusers' `LTX2Vocoder`.

Two releases are read:
- MMAudio's 16 kHz BigVGAN (`best_netG.pt`): 80 mels, tanh output, conv_post with bias.
- NVIDIA's BigVGAN v2 44 kHz 128-band (`bigvgan_generator.pt`): clamped output, no final bias.
LTX2Vocoder can express both (snakebeta + anti-aliasing, final tanh or clamp, optional
final bias), so one class and one renaming serve both. Weight norm is folded at load time,
whether stored as weight_g/weight_v or as parametrizations.weight.original0/original1.
The architecture is read from the weight shapes.
"""

from __future__ import annotations

import re

import torch
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

from ..weights import build_exactly, strip_prefix

# Weight-norm pairs: (magnitude suffix, direction suffix) -> folded ".weight".
_WEIGHT_NORM_STYLES = (
    (".weight_g", ".weight_v"),
    (".parametrizations.weight.original0", ".parametrizations.weight.original1"),
)

# BigVGAN name -> LTX2Vocoder name (applied in order, on whole dotted segments).
_RENAMES = (
    (r"^conv_pre\.", "conv_in."),
    (r"^ups\.(\d+)\.0\.", r"upsamplers.\1."),
    (r"^resblocks\.", "resnets."),
    (r"^activation_post\.", "act_out."),
    (r"^conv_post\.", "conv_out."),
    (r"\.downsample\.lowpass\.filter$", ".downsample.filter"),
)
_ACTIVATION = re.compile(r"^(resnets\.\d+\.)activations\.(\d+)\.(.*)$")


def fold_weight_norm(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace every weight-norm pair by the plain weight g * v / ||v|| (norm over all dims but 0)."""
    out = {}
    for key, value in state_dict.items():
        for g_suffix, v_suffix in _WEIGHT_NORM_STYLES:
            if key.endswith(v_suffix):
                base = key[: -len(v_suffix)]
                magnitude = state_dict.get(base + g_suffix)
                if magnitude is None:
                    raise KeyError(f"weight-norm direction {key} has no magnitude {base + g_suffix}")
                norm = torch.linalg.vector_norm(value, dim=tuple(range(1, value.ndim)), keepdim=True)
                out[base + ".weight"] = value * (magnitude / norm)
                break
            if key.endswith(g_suffix):
                break  # consumed with its direction
        else:
            out[key] = value
    return out


def rename_bigvgan_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state_dict.items():
        for pattern, replacement in _RENAMES:
            key = re.sub(pattern, replacement, key)
        # AMP blocks interleave activations: even ones precede convs1, odd ones convs2.
        match = _ACTIVATION.match(key)
        if match:
            prefix, index, rest = match.group(1), int(match.group(2)), match.group(3)
            key = f"{prefix}acts{1 + index % 2}.{index // 2}.{rest}"
        out[key] = value
    return out


def bigvgan_config(state_dict: dict[str, torch.Tensor], source: str) -> dict:
    """LTX2Vocoder arguments for a folded, renamed BigVGAN state dict."""
    if "conv_in.weight" not in state_dict or "upsamplers.0.weight" not in state_dict:
        raise ValueError(
            f"{source} is not a BigVGAN generator (no conv_pre / ups.0.0 weights). Pick MMAudio's 16 kHz "
            "best_netG.pt or NVIDIA's bigvgan_v2_44khz_128band_512x bigvgan_generator.pt."
        )
    hidden, num_mels, _ = state_dict["conv_in.weight"].shape
    stages = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("upsamplers."))
    kernels = [state_dict[f"upsamplers.{i}.weight"].shape[-1] for i in range(stages)]
    # BigVGAN's transposed convs use kernel = 2 * rate (every known release); their padding is (k - rate) / 2.
    rates = [k // 2 for k in kernels]
    blocks = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("resnets."))
    per_stage = blocks // stages
    resnet_kernels = [state_dict[f"resnets.{j}.convs1.0.weight"].shape[-1] for j in range(per_stage)]
    convs = 1 + max(int(k.split(".")[3]) for k in state_dict if k.startswith("resnets.0.convs1."))
    has_bias = "conv_out.bias" in state_dict
    return dict(
        in_channels=num_mels, hidden_channels=hidden, out_channels=1,
        upsample_kernel_sizes=kernels, upsample_factors=rates,
        resnet_kernel_sizes=resnet_kernels,
        # BigVGAN's AMP blocks use dilations 1, 3, 5 (not stored in the weights).
        resnet_dilations=[[1, 3, 5][:convs] for _ in resnet_kernels],
        act_fn="snakebeta", antialias=True,
        # MMAudio's 16 kHz release ends in tanh with a biased conv_post; BigVGAN v2 clamps without bias.
        final_act_fn="tanh" if has_bias else "clamp", final_bias=has_bias,
    )


def vocoder_from_state_dict(
    state_dict: dict[str, torch.Tensor], source: str, sample_rate: int, dtype=None, device="cpu"
) -> LTX2Vocoder:
    """LTX2Vocoder holding a BigVGAN generator state dict (any weight-norm style), eval mode."""
    state_dict = rename_bigvgan_keys(fold_weight_norm(strip_prefix(state_dict, ("generator.", "module."))))
    config = bigvgan_config(state_dict, source)
    vocoder = build_exactly(lambda: LTX2Vocoder(**config, output_sampling_rate=sample_rate), state_dict, source, dtype)
    return vocoder.to(device).eval()


def vocode(vocoder: LTX2Vocoder, mel: torch.Tensor) -> torch.Tensor:
    """mel [B, n_mels, T] -> waveform [B, 1, T * hop]."""
    return vocoder(mel[:, None], time_last=True)
