"""Wan2.1 video codec: real-size key coverage (meta device) and a tiny random VAE end to end."""


import pytest
import torch
from diffusers import AutoencoderKLWan
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
from safetensors.torch import save_file

from manifests import manifest, manifest_state_dict

from jova_core.codecs import load_video_codec, valid_video_size
from jova_core.codecs.wan_vae import WanVideoCodec, wan_vae_config, wan_vae_from_state_dict

# Published Wan2.1 latent statistics (formats.md).
MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
        0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
       3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160]
TINY_DIM = 8


def test_real_file_keys_all_load_at_full_size():
    data = manifest("wan2.1_vae")
    vae = wan_vae_from_state_dict(manifest_state_dict("wan2.1_vae", keep_dtype=False), "manifest", device="meta")
    assert sum(p.numel() for p in vae.state_dict().values()) == data["n_params"]
    assert vae.config.base_dim == 96 and vae.config.z_dim == 16


def test_comfyui_prefix_is_accepted_and_wrong_shape_is_named():
    prefixed = {f"vae.{k}": v for k, v in manifest_state_dict("wan2.1_vae", keep_dtype=False).items()}
    wan_vae_from_state_dict(prefixed, "prefixed", device="meta")
    broken = manifest_state_dict("wan2.1_vae", keep_dtype=False)
    broken["decoder.head.2.weight"] = torch.empty(3, 96, 3, 3, 2, device="meta")
    with pytest.raises(KeyError, match="decoder.conv_out.weight"):
        wan_vae_from_state_dict(broken, "broken", device="meta")


def tiny_original_file(tmp_path, suffix):
    """A random tiny Wan VAE written under the ORIGINAL key names, plus the diffusers twin."""
    torch.manual_seed(0)
    cfg = {k: v for k, v in wan_vae_config().items() if not k.startswith("_")}
    cfg["base_dim"] = TINY_DIM
    reference = AutoencoderKLWan(**cfg).eval()
    # Original <- diffusers names, from diffusers' own converter applied to the real key set.
    original = manifest_state_dict("wan2.1_vae", keep_dtype=False)
    by_tensor = {id(v): k for k, v in original.items()}
    to_original = {new: by_tensor[id(v)] for new, v in convert_wan_vae_to_diffusers(original).items()}
    state = {to_original[k]: v.contiguous() for k, v in reference.state_dict().items()}
    path = tmp_path / f"wan_vae{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, str(path))
    return str(path), reference


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_tiny_vae_file_matches_diffusers(tmp_path, suffix):
    path, reference = tiny_original_file(tmp_path, suffix)
    codec = load_video_codec(path)
    assert isinstance(codec, WanVideoCodec)
    frames = torch.rand(1, 5, 32, 48, 3)
    latents = codec.encode(frames)
    assert latents.shape == (1, 16, 2, 4, 6)
    with torch.no_grad():
        z = reference.encode(frames.permute(0, 4, 1, 2, 3) * 2 - 1).latent_dist.mode()
        expected = (z - torch.tensor(MEAN).view(1, -1, 1, 1, 1)) / torch.tensor(STD).view(1, -1, 1, 1, 1)
        torch.testing.assert_close(latents, expected, rtol=1e-4, atol=1e-5)
        decoded = codec.decode(latents)
        pixels = reference.decode(z).sample.clamp(-1, 1)
    assert decoded.shape == (1, 5, 32, 48, 3)
    torch.testing.assert_close(decoded, (pixels.permute(0, 2, 3, 4, 1) + 1) / 2, rtol=1e-4, atol=1e-4)


def test_tiled_decode_runs_the_tiled_path(tmp_path, monkeypatch):
    path, _ = tiny_original_file(tmp_path, ".safetensors")
    codec = load_video_codec(path)
    latents = codec.encode(torch.rand(1, 5, 64, 64, 3))
    calls = []
    original = codec.vae.tiled_decode
    monkeypatch.setattr(codec.vae, "tiled_decode", lambda *a, **k: calls.append(1) or original(*a, **k))
    untiled = codec.decode(latents)
    # Small overlapping tiles: tiled path, same geometry, valid pixels. (With random weights the
    # blended tiles are not close to the untiled decode; memory is compared in bench/codecs.py.)
    codec.configure_tiling(tile_pixels=32, overlap_pixels=16)
    tiled = codec.decode(latents, tiled=True)
    assert calls == [1] and not codec.vae.use_tiling
    assert tiled.shape == untiled.shape == (1, 5, 64, 64, 3)
    assert torch.isfinite(tiled).all() and 0 <= tiled.min() and tiled.max() <= 1


def test_bad_inputs_say_what_to_do(tmp_path):
    path, _ = tiny_original_file(tmp_path, ".safetensors")
    codec = load_video_codec(path)
    with pytest.raises(ValueError, match="4k\\+1"):
        codec.encode(torch.rand(1, 4, 32, 32, 3))
    with pytest.raises(ValueError, match="multiples of 8"):
        codec.encode(torch.rand(1, 5, 30, 32, 3))
    other = tmp_path / "not_wan.safetensors"
    save_file({"encoder.conv_in.weight": torch.zeros(4, 80, 3)}, str(other))
    with pytest.raises(ValueError, match="not a Wan VAE"):
        load_video_codec(str(other))
    with pytest.raises(FileNotFoundError):
        load_video_codec(str(tmp_path / "missing.pth"))


def test_valid_video_size():
    assert valid_video_size(50, 250, 300) == (49, 256, 304)
    assert valid_video_size(1, 3, 3) == (1, 16, 16)


def test_chunked_decode_carries_the_causal_cache(tmp_path):
    """decode_chunks hands out the frames of decode() (diffusers' whole loop) chunk by chunk."""
    path, _ = tiny_original_file(tmp_path, ".safetensors")
    codec = load_video_codec(path)
    latents = torch.randn(1, 16, 5, 4, 6, generator=torch.Generator().manual_seed(1))
    whole = codec.decode(latents)
    for chunk in (1, 2, 5):
        pieces = list(codec.decode_chunks(latents, chunk))
        assert [p.shape[1] for p in pieces][:1] == [1 + 4 * (min(chunk, 5) - 1)]
        torch.testing.assert_close(torch.cat(pieces, dim=1), whole, rtol=0, atol=1e-6)
    assert codec.vae._feat_map == [None] * len(codec.vae._feat_map)  # the cache is not left behind
