"""Wan2.2 video VAE (MagiHuman's video codec): told apart from Wan2.1 by contents, the original
key layout renamed for diffusers' AutoencoderKLWan, MagiHuman's latent normalisation, and the
Wan2.2 geometry (48 channels, 4 x 16 x 16)."""

import re

import pytest
import torch
from diffusers import AutoencoderKLWan
from safetensors.torch import save_file

from manifests import manifest_state_dict

from jova_core.codecs import load_video_codec
from jova_core.codecs.wan_vae import (
    WanVideoCodec,
    convert_wan22_vae_to_diffusers,
    wan_vae_config,
    wan_vae_from_state_dict,
)
from jova_core.geometry import WAN21_VAE, WAN22_VAE

# Pairs (original Wan2.2_VAE.pth name, diffusers name) of real keys, as public ports of the
# released file list them.
REAL_NAME_PAIRS = {
    "encoder.downsamples.0.downsamples.0.residual.0.gamma": "encoder.down_blocks.0.resnets.0.norm1.gamma",
    "encoder.downsamples.0.downsamples.1.residual.6.weight": "encoder.down_blocks.0.resnets.1.conv2.weight",
    "encoder.downsamples.1.downsamples.0.shortcut.weight": "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
    "encoder.downsamples.0.downsamples.2.resample.1.weight": "encoder.down_blocks.0.downsampler.resample.1.weight",
    "decoder.upsamples.0.upsamples.2.residual.3.gamma": "decoder.up_blocks.0.resnets.2.norm2.gamma",
    "decoder.upsamples.0.upsamples.3.time_conv.weight": "decoder.up_blocks.0.upsampler.time_conv.weight",
}
# MagiHuman's Wan2.2 latent tables (inference/model/vae2_2/vae2_2_module.py), first and last values.
MEAN_ENDS, STD_ENDS = (-0.2289, -0.0667), (0.4765, 0.7744)
TINY = dict(base_dim=8, decoder_base_dim=8)


def to_original(name: str, resnets_per_block: dict[tuple[str, int], int]) -> str:
    """diffusers name -> Wan2.2 original name (restated from the released layout: blocks nest
    their resnets then their resampler under `downsamples.j` / `upsamples.j`)."""
    flat = {"quant_conv.": "conv1.", "post_quant_conv.": "conv2.", "encoder.conv_in.": "encoder.conv1.",
            "decoder.conv_in.": "decoder.conv1.", "encoder.norm_out.": "encoder.head.0.",
            "decoder.norm_out.": "decoder.head.0.", "encoder.conv_out.": "encoder.head.2.",
            "decoder.conv_out.": "decoder.head.2."}
    for new, old in flat.items():
        if name.startswith(new):
            return old + name[len(new):]
    layer = {"norm1": "residual.0", "conv1": "residual.2", "norm2": "residual.3", "conv2": "residual.6",
             "conv_shortcut": "shortcut"}
    m = re.match(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d)\.(\w+)\.(\w+)$", name)
    if m:
        part, kind, i, sub, leaf = m.groups()
        if kind == "attentions":
            return f"{part}.middle.1.{sub}.{leaf}"
        return f"{part}.middle.{2 * int(i)}.{layer[sub]}.{leaf}"
    m = re.match(r"(encoder|decoder)\.(down|up)_blocks\.(\d)\.(resnets\.(\d)\.(\w+)|(down|up)sampler)\.(.+)$", name)
    part, way, block, _, resnet, sub, sampler, rest = m.groups()
    head = f"{part}.{way}samples.{block}.{way}samples"
    if sampler:
        return f"{head}.{resnets_per_block[part, int(block)]}.{rest}"
    return f"{head}.{resnet}.{layer[sub]}.{rest}"


def original_state_dict(model: AutoencoderKLWan) -> dict[str, torch.Tensor]:
    state = model.state_dict()
    counts = {}
    for k in state:
        m = re.match(r"(encoder|decoder)\.(?:down|up)_blocks\.(\d)\.resnets\.(\d)\.", k)
        if m:
            key = (m.group(1), int(m.group(2)))
            counts[key] = max(counts.get(key, 0), int(m.group(3)) + 1)
    return {to_original(k, counts): v.contiguous() for k, v in state.items()}


def tiny_wan22(seed=0):
    torch.manual_seed(seed)
    cfg = {k: v for k, v in wan_vae_config(48).items() if not k.startswith("_")}
    reference = AutoencoderKLWan(**{**cfg, **TINY}).eval()
    return original_state_dict(reference), reference


def test_shipped_config_is_wan22():
    cfg = wan_vae_config(48)
    assert (cfg["z_dim"], cfg["base_dim"], cfg["decoder_base_dim"], cfg["patch_size"]) == (48, 160, 256, 2)
    assert cfg["is_residual"] and cfg["temperal_downsample"] == [False, True, True]
    assert len(cfg["latents_mean"]) == len(cfg["latents_std"]) == 48
    assert (cfg["latents_mean"][0], cfg["latents_mean"][-1]) == MEAN_ENDS
    assert (cfg["latents_std"][0], cfg["latents_std"][-1]) == STD_ENDS


def test_real_names_map_to_diffusers_and_full_size_loads_on_meta():
    converted = convert_wan22_vae_to_diffusers({k: torch.empty(1) for k in REAL_NAME_PAIRS})
    assert set(converted) == set(REAL_NAME_PAIRS.values())
    with torch.device("meta"):
        full = AutoencoderKLWan(**{k: v for k, v in wan_vae_config(48).items() if not k.startswith("_")})
    original = original_state_dict(full)
    assert set(REAL_NAME_PAIRS) <= set(original)
    vae = wan_vae_from_state_dict({f"vae.{k}": v for k, v in original.items()}, "full-size Wan2.2 layout", device="meta")
    assert (vae.config.z_dim, vae.config.base_dim, vae.config.decoder_base_dim) == (48, 160, 256)
    assert sum(v.numel() for v in vae.state_dict().values()) == sum(v.numel() for v in original.values())


def test_wan21_and_wan22_files_are_told_apart(tmp_path):
    state, _ = tiny_wan22()
    path = tmp_path / "Wan2.2_VAE.safetensors"
    save_file(state, str(path))
    assert load_video_codec(str(path)).geometry == WAN22_VAE
    wan21 = wan_vae_from_state_dict(manifest_state_dict("wan2.1_vae", keep_dtype=False), "wan2.1", device="meta")
    assert WanVideoCodec(wan21).geometry == WAN21_VAE
    # A Wan-style file with another channel count is named, not guessed.
    odd = dict(state, **{"conv2.weight": torch.zeros(32, 32, 1, 1, 1)})
    with pytest.raises(ValueError, match="32 latent channels"):
        wan_vae_from_state_dict(odd, "odd")


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_tiny_wan22_matches_diffusers_with_magihuman_normalisation(tmp_path, suffix):
    state, reference = tiny_wan22()
    path = tmp_path / f"Wan2.2_VAE{suffix}"
    (save_file if suffix == ".safetensors" else lambda s, p: torch.save(s, p))(state, str(path))
    codec = load_video_codec(str(path))
    assert isinstance(codec, WanVideoCodec) and codec.geometry == WAN22_VAE
    frames = torch.rand(1, 5, 32, 48, 3)
    latents = codec.encode(frames)
    assert latents.shape == (1, *WAN22_VAE.latent_shape(5, 32, 48)) == (1, 48, 2, 2, 3)
    mean = torch.tensor(reference.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(reference.config.latents_std).view(1, -1, 1, 1, 1)
    with torch.no_grad():
        mu = reference.encode(frames.permute(0, 4, 1, 2, 3) * 2 - 1).latent_dist.mode()
        expected = (mu - mean) / std
        scale = expected.abs().max()
        assert (latents - expected).abs().max() <= 1e-4 * scale
        decoded = codec.decode(latents)
        pixels = (reference.decode(latents * std + mean).sample.clamp(-1, 1) + 1) / 2
    assert decoded.shape == (1, 5, 32, 48, 3)
    assert (decoded - pixels.permute(0, 2, 3, 4, 1)).abs().max() <= 1e-4


def test_wan22_refuses_sizes_off_its_16_pixel_grid(tmp_path):
    state, _ = tiny_wan22()
    path = tmp_path / "Wan2.2_VAE.safetensors"
    save_file(state, str(path))
    codec = load_video_codec(str(path))
    with pytest.raises(ValueError, match="multiples of 16"):
        codec.encode(torch.rand(1, 5, 24, 32, 3))


def test_identify_names_a_wan22_file_as_a_wan_vae():
    from jova_core.identify import identify

    state, _ = tiny_wan22()
    kind = identify(list(state))
    assert kind.name == "wan-vae" and "Wan2.2" in kind.description


def test_wan22_chunked_decode_unpatchifies_each_chunk(tmp_path):
    state, _ = tiny_wan22()
    path = tmp_path / "Wan2.2_VAE.safetensors"
    save_file(state, str(path))
    codec = load_video_codec(str(path))
    latents = torch.randn(1, 48, 4, 2, 3, generator=torch.Generator().manual_seed(2))
    whole = codec.decode(latents)
    chunked = torch.cat(list(codec.decode_chunks(latents, 3)), dim=1)
    assert chunked.shape == whole.shape == (1, 13, 32, 48, 3)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
