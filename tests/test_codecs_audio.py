"""Audio codec: mel front end vs an independent computation, MMAudio VAE folding, BigVGAN
vocoders vs independent implementations, full-size key coverage on the meta device."""

import importlib.util
import math
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import MMAudioVAE, MMAudioVocoder
from diffusers.models.autoencoders import autoencoder_mmaudio
from diffusers.models.autoencoders.autoencoder_mmaudio import MMAudioMelSpectrogram, mel_filterbank

from manifests import manifest, manifest_state_dict

from jova_core.codecs import load_audio_codec
from jova_core.codecs.bigvgan import vocode, vocoder_from_state_dict
from jova_core.codecs.mel import MEL_16K, MEL_44K, MelFrontEnd
from jova_core.codecs.mmaudio_vae import mmaudio_vae_from_state_dict
from jova_core.codecs.signals import syllables

# ---------------------------------------------------------------- mel front end


def numpy_log_mel(waveform, cfg):
    """Independent reference: numpy framing + rfft, diffusers' Slaney filterbank, float64."""
    fbank = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, 0.0, cfg.f_max).double().numpy()
    pad = (cfg.n_fft - cfg.hop_length) // 2
    x = np.pad(waveform.double().numpy(), ((0, 0), (pad, pad)), mode="reflect")
    frames = (x.shape[1] - cfg.n_fft) // cfg.hop_length + 1
    index = np.arange(cfg.n_fft)[None] + cfg.hop_length * np.arange(frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.n_fft) / cfg.n_fft)
    magnitude = np.sqrt(np.abs(np.fft.rfft(x[:, index] * window, axis=-1)) ** 2 + 1e-9)
    mel = np.maximum(fbank @ magnitude.transpose(0, 2, 1), 1e-5)
    return np.log10(mel) if cfg.log_base == "10" else np.log(mel)


@pytest.mark.parametrize("cfg", [MEL_16K, MEL_44K], ids=["16k", "44k"])
def test_mel_front_end_matches_independent_computation(cfg):
    waveform = torch.cat([syllables(1.0, cfg.sample_rate), 0.3 * torch.randn(1, cfg.sample_rate)])
    ours = MelFrontEnd(cfg)(waveform)
    assert ours.shape == (2, cfg.n_mels, cfg.sample_rate // cfg.hop_length)
    error = np.abs(ours.numpy() - numpy_log_mel(waveform, cfg))
    # float32 vs float64: near-silent bins (magnitudes ~1e-4) carry the largest log errors.
    assert error.max() < 5e-3 and np.median(error) < 1e-6


def test_mel_log_base_differs_by_variant():
    waveform = syllables(0.5)
    assert MEL_16K.log_base == "10" and MEL_44K.log_base == "e"
    # 44.1 kHz: identical to diffusers' built-in front end (natural log, fmax = sr/2).
    x44 = syllables(0.5, 44_100)
    torch.testing.assert_close(MelFrontEnd(MEL_44K)(x44), MMAudioMelSpectrogram(44_100, 2048, 128, 512)(x44))
    # 16 kHz: diffusers' built-in front end is off by the factor ln(10).
    builtin = MMAudioMelSpectrogram(16_000, 1024, 80, 256)(waveform)
    torch.testing.assert_close(MelFrontEnd(MEL_16K)(waveform) * math.log(10), builtin, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- MMAudio VAE


@pytest.mark.parametrize("name,mels,latent,hidden", [("mmaudio_vae_16k", 80, 20, 384), ("mmaudio_vae_44k", 128, 40, 512)])
def test_mmaudio_vae_real_keys_all_load_at_full_size(name, mels, latent, hidden):
    vae, mel = mmaudio_vae_from_state_dict(manifest_state_dict(name, keep_dtype=False), name, device="meta")
    assert (vae.config.mel_bins, vae.config.latent_channels, vae.config.hidden_channels) == (mels, latent, hidden)
    assert mel.n_mels == mels
    params = sum(v.numel() for k, v in vae.state_dict().items() if k.startswith("vae."))
    assert params == manifest(name)["n_params"]


TINY_VAE = dict(mel_bins=80, latent_channels=20, hidden_channels=16, sample_rate=16_000, n_fft=1024, hop_length=256)


def tiny_raw_vae_state_dict(seed=0):
    """Raw (unfolded) MMAudio VAE weights at a tiny width, MMAudio's key names."""
    g = torch.Generator().manual_seed(seed)
    keys = {k[len("vae."):]: v.shape for k, v in MMAudioVAE(**TINY_VAE).state_dict().items() if k.startswith("vae.")}
    raw = {k: 3.0 * torch.randn(shape, generator=g) for k, shape in keys.items()}
    raw["encoder.learnable_gain"] = torch.tensor(0.3)
    raw["decoder.learnable_gain"] = torch.tensor(-0.2)
    raw["data_mean"] = torch.randn(1, 80, 1, generator=g) - 2
    raw["data_std"] = torch.rand(1, 80, 1, generator=g) + 0.5
    return raw


class RawMPConv:
    """EDM2 reference forward: normalise the raw weight on every call (as MMAudio trains)."""

    def __enter__(self):
        self.saved = autoencoder_mmaudio.MMAudioMPConv1d.forward

        def forward(conv, x, gain=1.0):
            w = autoencoder_mmaudio.normalize(conv.weight.float())
            w = w * (gain / math.sqrt(w[0].numel()))
            return F.conv1d(x, w.to(x.dtype), padding=conv.padding)

        autoencoder_mmaudio.MMAudioMPConv1d.forward = forward

    def __exit__(self, *exc):
        autoencoder_mmaudio.MMAudioMPConv1d.forward = self.saved


def test_mmaudio_vae_folding_matches_raw_forward():
    raw = tiny_raw_vae_state_dict()
    folded, _ = mmaudio_vae_from_state_dict(raw, "tiny")
    oracle = MMAudioVAE(**TINY_VAE).eval()
    oracle.vae.load_state_dict(raw)
    mel = MelFrontEnd(MEL_16K)(syllables(1.0))
    z = torch.randn(1, 20, 16)
    with torch.no_grad(), RawMPConv():
        expected_moments, expected_mel = oracle.vae.encode(mel), oracle.vae.decode(z)
    with torch.no_grad():
        torch.testing.assert_close(folded.vae.encode(mel), expected_moments, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(folded.vae.decode(z), expected_mel, rtol=1e-4, atol=1e-4)
        # Without folding the raw weights give something else entirely.
        assert (oracle.vae.decode(z) - expected_mel).abs().max() > 1.0


# ---------------------------------------------------------------- BigVGAN vocoders


def as_parametrizations(state_dict):
    """weight_g/weight_v -> parametrizations.weight.original0/original1 (new torch style)."""
    out = {}
    for k, v in state_dict.items():
        k = k.replace(".weight_g", ".parametrizations.weight.original0").replace(".weight_v", ".parametrizations.weight.original1")
        out[k] = v
    return out


def as_weight_g_v(state_dict):
    return {k.replace(".parametrizations.weight.original0", ".weight_g").replace(".parametrizations.weight.original1", ".weight_v"): v
            for k, v in state_dict.items()}


@pytest.mark.parametrize("name,style", [
    ("bigvgan_16k_mmaudio", as_parametrizations), ("bigvgan_16k_mmaudio", as_weight_g_v),
    ("bigvgan_v2_44khz_128band_512x", as_weight_g_v), ("bigvgan_v2_44khz_128band_512x", as_parametrizations),
])
def test_vocoder_real_keys_all_load_at_full_size(name, style):
    state = style(manifest_state_dict(name, keep_dtype=False))
    vocoder = vocoder_from_state_dict({"generator." + k: v for k, v in state.items()}, name, 16_000, device="meta")
    is_16k = name.startswith("bigvgan_16k")
    cfg = vocoder.config
    assert cfg.in_channels == (80 if is_16k else 128)
    assert list(cfg.upsample_factors) == ([4, 4, 2, 2, 2, 2] if is_16k else [8, 4, 2, 2, 2, 2])
    assert (cfg.final_act_fn, cfg.final_bias) == (("tanh", True) if is_16k else ("clamp", False))
    # Folding turns each (g, v) pair into one weight: the parameter count shrinks by the g's.
    g_numel = sum(v.numel() for k, v in state.items() if k.endswith((".weight_g", ".original0")))
    assert sum(v.numel() for v in vocoder.state_dict().values()) == manifest(name)["n_params"] - g_numel


@pytest.fixture(scope="module")
def nvidia_bigvgan():
    """NVIDIA's PyPI `bigvgan` (installed --no-deps) as an oracle. Its package __init__ and its
    utils module pull in librosa/matplotlib for training-time code, so import only the generator
    module, with the two tiny helpers it takes from utils provided here."""
    if "bigvgan.bigvgan" not in sys.modules:
        spec = importlib.util.find_spec("bigvgan")
        if spec is None:
            pytest.skip("test oracle missing: pip install --no-deps bigvgan")
        package = types.ModuleType("bigvgan")
        package.__path__ = list(spec.submodule_search_locations)
        utils = types.ModuleType("bigvgan.utils")
        utils.get_padding = lambda kernel_size, dilation=1: (kernel_size * dilation - dilation) // 2
        utils.init_weights = lambda m, mean=0.0, std=0.01: m.weight.data.normal_(mean, std) if "Conv" in type(m).__name__ else None
        sys.modules.update({"bigvgan": package, "bigvgan.utils": utils})
    return importlib.import_module("bigvgan.bigvgan"), importlib.import_module("bigvgan.env")


TINY_VOCODERS = {
    "16k": dict(num_mels=80, upsample_rates=[4, 4, 2, 2, 2, 2], upsample_kernel_sizes=[8, 8, 4, 4, 4, 4],
                use_tanh_at_final=True, use_bias_at_final=True),
    "44k": dict(num_mels=128, upsample_rates=[8, 4, 2, 2, 2, 2], upsample_kernel_sizes=[16, 8, 4, 4, 4, 4],
                use_tanh_at_final=False, use_bias_at_final=False),
}


def randomise_snake(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith((".alpha", ".beta")):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("variant,style", [("16k", as_parametrizations), ("44k", as_weight_g_v)], ids=["16k", "44k"])
def test_vocoder_matches_nvidia_bigvgan(variant, style, nvidia_bigvgan):
    bigvgan, env = nvidia_bigvgan
    h = env.AttrDict(dict(
        TINY_VOCODERS[variant], upsample_initial_channel=64, resblock="1", resblock_kernel_sizes=[3, 7, 11],
        resblock_dilation_sizes=[[1, 3, 5]] * 3, activation="snakebeta", snake_logscale=True,
    ))
    torch.manual_seed(0)
    oracle = bigvgan.BigVGAN(h, use_cuda_kernel=False).eval()
    randomise_snake(oracle, 1)
    state = style(oracle.state_dict())
    ours = vocoder_from_state_dict({"generator": state}["generator"], "tiny", 16_000)
    mel = torch.randn(2, h.num_mels, 4)
    with torch.no_grad():
        expected = oracle(mel)
        got = vocode(ours, mel)
    assert got.shape == expected.shape == (2, 1, 4 * math.prod(h.upsample_rates))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_vocoder_44k_matches_diffusers_mmaudio_vocoder():
    torch.manual_seed(0)
    oracle = MMAudioVocoder(num_mels=128, upsample_initial_channel=64).eval()
    randomise_snake(oracle, 2)
    # Store it the way NVIDIA's files do: weight-norm pairs with g = ||w|| per output row.
    raw = {}
    for k, v in oracle.state_dict().items():
        is_conv = k.endswith(".weight") and v.ndim == 3 and ".filter" not in k
        if is_conv:
            raw[k[: -len(".weight")] + ".weight_g"] = torch.linalg.vector_norm(v, dim=(1, 2), keepdim=True)
            raw[k[: -len(".weight")] + ".weight_v"] = v * 2.5
        else:
            raw[k] = v
    ours = vocoder_from_state_dict(raw, "tiny 44k", 44_100)
    mel = torch.randn(1, 128, 4)
    with torch.no_grad():
        torch.testing.assert_close(vocode(ours, mel), oracle(mel, return_dict=False)[0], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- AudioCodec from files


def tiny_vocoder_state(num_mels=80, factors=(4, 4, 2, 2, 2, 2), tanh=True):
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    torch.manual_seed(3)
    ltx = LTX2Vocoder(in_channels=num_mels, hidden_channels=64, out_channels=1, upsample_factors=list(factors),
                      upsample_kernel_sizes=[2 * f for f in factors], act_fn="snakebeta", antialias=True,
                      final_act_fn="tanh" if tanh else "clamp", final_bias=tanh)
    # Back to BigVGAN names (inverse of the loader's renaming).
    out = {}
    for k, v in ltx.state_dict().items():
        k = k.replace("conv_in.", "conv_pre.").replace("conv_out.", "conv_post.").replace("act_out.", "activation_post.")
        k = k.replace("resnets.", "resblocks.").replace(".downsample.filter", ".downsample.lowpass.filter")
        parts = k.split(".")
        if parts[0] == "upsamplers":
            k = ".".join(["ups", parts[1], "0"] + parts[2:])
        if len(parts) > 3 and parts[2] in ("acts1", "acts2"):
            index = 2 * int(parts[3]) + (parts[2] == "acts2")
            k = ".".join(parts[:2] + ["activations", str(index)] + parts[4:])
        out[k] = v
    return out


def test_load_audio_codec_from_files(tmp_path):
    vae_path, vocoder_path = tmp_path / "v1-16.pth", tmp_path / "best_netG.pt"
    torch.save(tiny_raw_vae_state_dict(), vae_path)
    torch.save({"generator": tiny_vocoder_state()}, vocoder_path)
    codec = load_audio_codec(str(vae_path), str(vocoder_path))
    assert (codec.sample_rate, codec.latent_rate, codec.latent_channels) == (16_000, 31.25, 20)
    # Stereo 48 kHz input is mixed down and resampled.
    stereo = F.interpolate(syllables(1.0)[None], scale_factor=3, mode="linear")[0].repeat(2, 1)
    latents = codec.encode(stereo, 48_000)
    assert latents.shape == (1, 20, codec.latent_frames(1.0)) == (1, 20, 31)
    # The encoder sees OUR log10 mel (diffusers' built-in one would use the natural log).
    with torch.no_grad():
        mono16 = codec.prepare_waveform(stereo, 48_000)
        expected = codec.vae.vae.encode(torch.from_numpy(numpy_log_mel(mono16, MEL_16K)).float())[:, :20]
    torch.testing.assert_close(latents, expected, rtol=1e-3, atol=1e-3)
    waveform = codec.decode(latents)
    assert waveform.shape == (1, 1, codec.num_samples(31)) == (1, 1, 31 * 512)
    assert waveform.abs().max() <= 1.0


def test_audio_codec_errors(tmp_path):
    vae_path, vocoder_path = tmp_path / "v1-16.pth", tmp_path / "bigvgan_generator.pt"
    torch.save(tiny_raw_vae_state_dict(), vae_path)
    torch.save({"generator": tiny_vocoder_state(128, (8, 4, 2, 2, 2, 2), tanh=False)}, vocoder_path)
    with pytest.raises(ValueError, match="pair the 16 kHz VAE"):
        load_audio_codec(str(vae_path), str(vocoder_path))
    # Swapped or doubled files are refused before loading, naming what each file is.
    with pytest.raises(ValueError, match=r"bigvgan_generator.pt is a BigVGAN vocoder .* is a BigVGAN vocoder"):
        load_audio_codec(str(vocoder_path), str(vocoder_path))
    with pytest.raises(ValueError, match=r"v1-16.pth is the MMAudio audio VAE and .* is the MMAudio audio VAE"):
        load_audio_codec(str(vae_path), str(vae_path))
