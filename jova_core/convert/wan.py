"""Wan2.1 text-to-video transformer -> JoVA: Wan is the video branch, its copy the audio branch.

Reads the three layouts Wan2.1 ships in (key facts in shared/reference/formats.md):
  original  : blocks.N.self_attn.q.weight, head.head.weight, ...  (Wan-AI .pth/.safetensors)
  ComfyUI   : the same names, optionally behind "model.diffusion_model."
  diffusers : blocks.N.attn1.to_q.weight, proj_out.weight, ...     (WanTransformer3DModel)
JoVA's branch parameters use the original names (``video.head.head.weight``,
``blocks.N.video.self_attn.q.weight``), so the diffusers layout is first renamed to the
original one; the config (dim, layers, heads, FFN, text and time widths, channels) is
read from the shapes, so the 14B model converts like the 1.3B one.

The audio branch starts as a copy of the video branch (JoVA's recipe: both modalities
begin from the same pretrained weights and specialise in training). Only the ends that
touch latents are new, because audio latents (MMAudio 16k: 20 channels, patch (1, 1))
do not fit the video's 16-channel 1x2x2 patches:
  patch embedding: W_a = c * W_v V_20, where V_20 [64, 20] are the 20 right-singular
      vectors of the flattened video embedding W_v [dim, 64] with the largest singular
      values, and c^2 = ||W_v||_F^2 / ||W_v V_20||_F^2. An audio token then is the video
      embedding of the pseudo video patch c * V_20 a: it lies in the directions the video
      blocks respond to most, and for unit-variance latents it has the same expected
      squared norm as a video token, so the copied blocks see inputs of familiar scale.
      The bias is the video bias.
  head: zero weights and bias, so the initial audio velocity is exactly 0 (Wan's own
      initialisation of a new head); the head modulation is the video one.
"""

from __future__ import annotations

import re

import torch

from ..config import PRESETS, JoVAConfig, preset_config
from ..identify import wan_layout
from .source import SourceStateDict, strip_wrapper_prefix

WAN_HEAD_DIM = 128  # every released Wan2.1 transformer uses 128-wide heads
WAN_TEXT_LEN = 512  # umT5 prompt length Wan pads to

# diffusers name -> original name, for modules outside the blocks.
DIFFUSERS_TOP = {
    "condition_embedder.time_embedder.linear_1": "time_embedding.0",
    "condition_embedder.time_embedder.linear_2": "time_embedding.2",
    "condition_embedder.text_embedder.linear_1": "text_embedding.0",
    "condition_embedder.text_embedder.linear_2": "text_embedding.2",
    "condition_embedder.time_proj": "time_projection.1",
    "proj_out": "head.head",
    "scale_shift_table": "head.modulation",
    "patch_embedding": "patch_embedding",
}
# ... and inside each block. diffusers' norm2 is Wan's affine cross-attention norm3.
DIFFUSERS_BLOCK = {
    "scale_shift_table": "modulation",
    "norm2": "norm3",
    "ffn.net.0.proj": "ffn.0",
    "ffn.net.2": "ffn.2",
    **{
        f"{d}.{dp}": f"{o}.{op}"
        for d, o in (("attn1", "self_attn"), ("attn2", "cross_attn"))
        for dp, op in (("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "o"), ("norm_q", "norm_q"), ("norm_k", "norm_k"))
    },
}
# Modules each branch has outside the blocks, in the original layout.
BRANCH_MODULES = ("patch_embedding", "text_embedding", "time_embedding", "time_projection", "head")
# ... of which the audio branch gets its own (audio latents do not fit video patches).
NEW_AUDIO_MODULES = ("patch_embedding", "head")
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")


def _rename(name: str, table: dict[str, str]) -> str | None:
    for src, dst in table.items():
        if name == src or name.startswith(src + "."):
            return dst + name[len(src):]
    return None


def diffusers_name_to_original(name: str) -> str:
    """A diffusers WanTransformer3DModel parameter or module name in Wan's original naming;
    a name with no original counterpart (image-to-video extras) is returned unchanged."""
    block = _BLOCK_KEY.match(name)
    if block:
        rest = _rename(block.group(2), DIFFUSERS_BLOCK)
        return f"blocks.{block.group(1)}.{rest}" if rest else name
    return _rename(name, DIFFUSERS_TOP) or name


def diffusers_to_original(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a diffusers WanTransformer3DModel state dict to Wan's original key names.
    Keys with no original counterpart keep their name, so the converter can list them."""
    return {diffusers_name_to_original(key): value for key, value in state_dict.items()}


def jova_names(wan_name: str) -> tuple[str, str | None]:
    """Where a Wan2.1 parameter or module (original name) lives in the JoVA model that
    convert_wan makes: (its video-branch name, the name of its audio-branch copy, or None
    where the audio branch has its own, e.g. the patch embedding and head)."""
    block = _BLOCK_KEY.match(wan_name)
    if block:
        return f"blocks.{block.group(1)}.video.{block.group(2)}", f"blocks.{block.group(1)}.audio.{block.group(2)}"
    module = wan_name.split(".", 1)[0]
    audio = f"audio.{wan_name}" if module in BRANCH_MODULES and module not in NEW_AUDIO_MODULES else None
    return f"video.{wan_name}", audio


def load_wan_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Any Wan2.1 layout -> original key names (raises if it is not a Wan transformer)."""
    state_dict = strip_wrapper_prefix(state_dict, "patch_embedding.weight")
    layout = wan_layout(state_dict)
    if layout is None:
        raise ValueError("not a Wan2.1 transformer: expected patch_embedding/head.head/blocks.0.self_attn keys "
                         "(original or ComfyUI layout) or proj_out/blocks.0.attn1 keys (diffusers layout)")
    return diffusers_to_original(state_dict) if layout == "diffusers" else state_dict


def wan_config(source: SourceStateDict, head_dim: int = WAN_HEAD_DIM, **overrides) -> JoVAConfig:
    """The JoVA config hosting this Wan transformer (original key names), from its shapes."""
    dim, in_channels, *patch = source.shape("patch_embedding.weight")
    if in_channels != 16 or "img_emb.proj.0.weight" in source:
        raise ValueError(
            f"this Wan transformer takes {in_channels} latent channels"
            + (" and CLIP image features" if "img_emb.proj.0.weight" in source else "")
            + ": it is an image-to-video or Wan2.2 model; JoVA converts the Wan2.1 text-to-video transformer (16 channels)"
        )
    if dim % head_dim:
        raise ValueError(f"Wan width {dim} is not a multiple of the head width {head_dim}")
    layers = 1 + max(int(m.group(1)) for k in source.keys() if (m := _BLOCK_KEY.match(k)))
    out_features = source.shape("head.head.weight")[0]
    fields = dict(
        PRESETS["wan2.1-1.3b"],
        dim=dim,
        num_heads=dim // head_dim,
        ffn_dim=source.shape("blocks.0.ffn.0.weight")[0],
        freq_dim=source.shape("time_embedding.0.weight")[1],
        text_dim=source.shape("text_embedding.0.weight")[1],
        text_len=WAN_TEXT_LEN,
        single_stream_layers=layers,
        video_in_channels=in_channels,
        video_out_channels=out_features // (patch[0] * patch[1] * patch[2]),
        video_patch_size=tuple(patch),
    )
    config = JoVAConfig(**{**fields, **overrides})
    config.preset = "wan2.1-1.3b" if config == preset_config("wan2.1-1.3b") else "custom"
    return config


def audio_patch_embedding_from_video(video_weight: torch.Tensor, audio_shape: tuple[int, int, int]) -> torch.Tensor:
    """[dim, Cv, pt, ph, pw] video patch embedding -> [dim, C, pf, pa] for audio patches of
    `audio_shape` (C, pf, pa) (see the module docstring)."""
    flat = video_weight.flatten(1).float()  # [dim, Cv*pt*ph*pw]
    width = audio_shape[0] * audio_shape[1] * audio_shape[2]
    if width > flat.shape[1]:
        raise ValueError(f"cannot embed {width}-wide audio patches into a {flat.shape[1]}-wide video patch space")
    _, _, vh = torch.linalg.svd(flat, full_matrices=False)
    audio = flat @ vh[:width].T  # [dim, width]
    scale = (flat.square().sum() / audio.square().sum()).sqrt()
    return (audio * scale).to(video_weight.dtype).reshape(-1, *audio_shape)


def convert_wan(state_dict: dict[str, torch.Tensor], **config_overrides) -> tuple[JoVAConfig, dict[str, torch.Tensor]]:
    """Wan2.1 T2V transformer (any layout) -> (JoVA config, JoVA state dict).

    config_overrides replace fields of the inferred config (e.g. audio_in_channels).
    Tensors keep their dtype; the audio copies are clones, never views of the video ones.
    """
    source = SourceStateDict(load_wan_keys(state_dict), "Wan2.1 transformer")
    config = wan_config(source, **config_overrides)
    out: dict[str, torch.Tensor] = {}
    for module in BRANCH_MODULES:
        for name, tensor in source.take_prefix(module + ".").items():
            out[f"video.{module}.{name}"] = tensor
            if module not in NEW_AUDIO_MODULES:
                out[f"audio.{module}.{name}"] = tensor.clone()
    for i in range(config.num_layers):
        for name, tensor in source.take_prefix(f"blocks.{i}.").items():
            out[f"blocks.{i}.video.{name}"] = tensor
            out[f"blocks.{i}.audio.{name}"] = tensor.clone()
    source.finish()

    video_w = out["video.patch_embedding.weight"]
    pf, pa = config.audio_patch_size
    out["audio.patch_embedding.weight"] = audio_patch_embedding_from_video(video_w, (config.audio_in_channels, pf, pa))
    out["audio.patch_embedding.bias"] = out["video.patch_embedding.bias"].clone()
    out["audio.head.head.weight"] = video_w.new_zeros(config.audio_out_channels * pf * pa, config.dim)
    out["audio.head.head.bias"] = video_w.new_zeros(config.audio_out_channels * pf * pa)
    out["audio.head.modulation"] = out["video.head.modulation"].clone()
    return config, out
