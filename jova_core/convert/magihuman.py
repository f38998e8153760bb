"""daVinci-MagiHuman DiT checkpoints (base, distill; same keys): config read off the shapes.

The released keys are MagiHumanTransformer's own parameter names, so nothing is renamed;
what this does is infer the architecture (the files carry no config) and take every key
exactly once, so a file of another layout is refused instead of half-loaded:
- hidden = rows of adapter.video_embedder.weight; head_dim = 8 x len(adapter.rope.bands);
- layers = the block.layers.N present; a layer with 3 x hidden pre-norm weights holds one
  weight set per modality (mm layer);
- key/value heads from the fused qkv rows per expert = hidden + 2 x kv x head_dim + heads;
- GELU7 layers are those whose MLP up projection has 4 x hidden rows per expert.
"""

from __future__ import annotations

import re

import torch

from ..model.magihuman import MagiHumanConfig, MagiHumanTransformer
from ..identify import MAGIHUMAN_MARKERS
from .source import SourceStateDict, strip_wrapper_prefix

FORMAT = "daVinci-MagiHuman DiT"
MARKERS = MAGIHUMAN_MARKERS


def is_magihuman(keys) -> bool:
    keys = set(keys)
    return all(m in keys for m in MARKERS) or all(any(k.endswith("." + m) for k in keys) for m in MARKERS)


def magihuman_config(source: SourceStateDict) -> MagiHumanConfig:
    hidden, video_in = source.shape("adapter.video_embedder.weight")
    head_dim = 8 * source.shape("adapter.rope.bands")[0]
    heads = hidden // head_dim
    layers = sorted({int(m.group(1)) for k in source.keys() if (m := re.match(r"block\.layers\.(\d+)\.", k))})
    if layers != list(range(len(layers))) or not layers:
        raise ValueError(f"this {FORMAT} checkpoint has layers {layers[:5]}...: not numbered 0..N-1; is the file complete?")
    mm_layers, gelu7_layers, kv_heads = [], [], set()
    for i in layers:
        experts = source.shape(f"block.layers.{i}.attention.pre_norm.weight")[0] // hidden
        if experts == 3:
            mm_layers.append(i)
        qkv_rows = source.shape(f"block.layers.{i}.attention.linear_qkv.weight")[0] // experts
        kv_heads.add((qkv_rows - hidden - heads) // (2 * head_dim))
        if source.shape(f"block.layers.{i}.mlp.up_gate_proj.weight")[0] // experts == 4 * hidden:
            gelu7_layers.append(i)
    if len(kv_heads) != 1:
        raise ValueError(f"this {FORMAT} checkpoint mixes key/value head counts {sorted(kv_heads)} across layers")
    patch = (1, 2, 2)
    return MagiHumanConfig(
        hidden_size=hidden,
        num_layers=len(layers),
        head_dim=head_dim,
        num_kv_heads=kv_heads.pop(),
        mm_layers=tuple(mm_layers),
        gelu7_layers=tuple(gelu7_layers),
        video_latent_channels=video_in // (patch[0] * patch[1] * patch[2]),
        video_patch_size=patch,
        audio_in_channels=source.shape("adapter.audio_embedder.weight")[1],
        text_dim=source.shape("adapter.text_embedder.weight")[1],
    )


def convert_magihuman(state_dict: dict[str, torch.Tensor]) -> tuple[MagiHumanConfig, dict[str, torch.Tensor]]:
    """(config, state dict of MagiHumanTransformer(config)): each parameter the model of the
    inferred config has is taken from the file once; keys left over are refused."""
    source = SourceStateDict(strip_wrapper_prefix(state_dict, MARKERS[0]), FORMAT)
    config = magihuman_config(source)
    with torch.device("meta"):
        expected = MagiHumanTransformer(config).state_dict()
    tensors = {key: source.take(key) for key in expected}
    source.finish()
    return config, tensors

