"""Converters against the full key tables of the real checkpoints (manifests, meta tensors).

Every key of Wan2.1 1.3B / 14B (original, ComfyUI-prefixed and diffusers layouts) and
JavisDiT++ v1.0 must be consumed, and the result must be exactly the parameter set of
the JoVA model the inferred config builds (checked on the meta device: no memory).
"""

from __future__ import annotations

import math

import pytest
import torch
from manifests import manifest_state_dict

from jova_core.checkpoint import convert_state_dict
from jova_core.convert import convert_javisdit, convert_wan
from jova_core.identify import identify


WAN_13B = "wan2.1_t2v_1.3B_transformer"
WAN_14B = "wan2.1_t2v_14B_transformer"
JAVISDIT = "javisdit_v1.0_jav_transformer"


def diffusers_layout(state_dict):
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    return convert_wan_transformer_to_diffusers(dict(state_dict))


def numel(tensors) -> int:
    return sum(math.prod(t.shape) for t in tensors)


def converted(name: str, state_dict):
    kind = identify(list(state_dict))
    assert kind.name == ("javisdit" if name == JAVISDIT else "wan2.1"), kind
    # convert_state_dict checks the result key by key and shape by shape against a
    # meta-device JoVATransformer of the inferred config.
    return convert_state_dict(kind, state_dict, name)


@pytest.mark.parametrize(
    "name, dims",
    [(WAN_13B, (1536, 30, 12, 8960)), (WAN_14B, (5120, 40, 40, 13824)), (JAVISDIT, (1536, 30, 12, 8960))],
)
def test_manifest_converts_to_exact_jova_parameter_set(name, dims):
    source = manifest_state_dict(name)
    config, tensors = converted(name, source)
    assert (config.dim, config.num_layers, config.num_heads, config.ffn_dim) == dims
    assert (config.text_dim, config.freq_dim, config.text_attention, config.text_len) == (4096, 256, "cross", 512)
    assert (config.video_in_channels, config.video_out_channels, config.video_patch_size) == (16, 16, (1, 2, 2))
    # The whole Wan backbone lands in the video branch, unchanged in size.
    video = [t for k, t in tensors.items() if k.startswith("video.") or ".video." in k]
    wan_keys = [k for k in source if "audio" not in k]
    assert numel(video) == numel(source[k] for k in wan_keys)
    if name == JAVISDIT:
        assert (config.audio_in_channels, config.audio_patch_size, config.audio_rope) == (8, (2, 2), "javisdit")
        assert numel(video) == numel(manifest_state_dict(WAN_13B).values())
    else:
        assert (config.audio_in_channels, config.audio_patch_size, config.audio_rope) == (20, (1, 1), "aligned")
        # every source tensor is used as is in the video branch
        assert {id(v) for v in source.values()} <= {id(v) for v in tensors.values()}
    assert config.preset == ("wan2.1-1.3b" if name == WAN_13B else "custom")


@pytest.mark.parametrize("layout", ["comfyui", "diffusers"])
def test_wan_layouts_convert_to_the_same_tensors(layout):
    original = manifest_state_dict(WAN_13B)
    variant = {f"model.diffusion_model.{k}": v for k, v in original.items()} if layout == "comfyui" else diffusers_layout(original)
    assert len(set(variant) & set(original)) <= 2  # only patch_embedding.{weight,bias} keep their names
    config, tensors = converted(WAN_13B, variant)
    _, expected = convert_wan(original)
    assert config.preset == "wan2.1-1.3b"
    assert {k: tuple(v.shape) for k, v in tensors.items()} == {k: tuple(v.shape) for k, v in expected.items()}
    # Renaming must not mix up tensors: each video key holds the very tensor of the source.
    by_id = {id(v): k for k, v in original.items()}
    renamed = {by_id[id(v)] for k, v in tensors.items() if id(v) in by_id}
    assert renamed == set(original)


@pytest.mark.parametrize("name", [WAN_13B, JAVISDIT])
def test_a_missing_extra_or_misshapen_key_is_named(name):
    source = manifest_state_dict(name)
    convert = convert_javisdit if name == JAVISDIT else convert_wan

    missing = dict(source)
    del missing["blocks.7.cross_attn.k.weight"]
    with pytest.raises(KeyError, match=r"blocks\.7"):
        converted(name, missing)

    extra = {**source, "blocks.3.self_attn.k_img.weight": torch.empty(1536, 1536, device="meta")}
    with pytest.raises(KeyError, match="k_img"):
        converted(name, extra)
    top_extra = {**source, "img_emb.proj.1.weight": torch.empty(1536, 1280, device="meta")}
    with pytest.raises((KeyError, ValueError), match="img_emb|image"):
        convert(top_extra)

    wrong = {**source, "blocks.2.ffn.2.weight": torch.empty(1536, 8000, device="meta")}
    with pytest.raises(KeyError, match=r"blocks\.2\.(video|audio)\.ffn\.2\.weight"):
        converted(name, wrong)
