"""AudioLDM2 audio codec (JavisDiT++'s): the mel front end against an independent float64
restatement, encode/decode against diffusers' AutoencoderKL and transformers'
SpeechT5HifiGan loaded their own way (from_pretrained), the real key tables at full size,
file recognition and refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from diffusers.models.autoencoders import autoencoder_mmaudio
from safetensors.torch import save_file
from test_codecs_audio import tiny_raw_vae_state_dict, tiny_vocoder_state
from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

from manifests import manifest, manifest_state_dict

from jova_core.codecs import load_audio_codec
from jova_core.codecs.audioldm2 import AudioLDM2Codec, AudioLDM2Mel, mel_frames, shipped_config, vae_config, vocoder_config
from jova_core.codecs.signals import syllables
from jova_core.geometry import AUDIOLDM2

TINY_VAE = dict(in_channels=1, out_channels=1, latent_channels=8, block_out_channels=(32, 32, 64), layers_per_block=1,
                down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                norm_num_groups=32, scaling_factor=0.4110932946205139)
TINY_VOCODER = dict(model_in_dim=64, upsample_initial_channel=64, upsample_rates=[5, 4, 2, 2, 2],
                    upsample_kernel_sizes=[16, 16, 8, 4, 4], resblock_kernel_sizes=[3, 7, 11],
                    resblock_dilation_sizes=[[1, 3, 5]] * 3, leaky_relu_slope=0.1, normalize_before=False)


def randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter redrawn (so the test sees more than default initialisations)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = 1.0 if name.endswith("weight") and p.ndim == 1 else 0.5 / math.sqrt(max(1, p[0].numel()))
            p.copy_((1.0 if p.ndim == 1 and name.endswith("weight") else 0.0) + scale * torch.randn(p.shape, generator=g))
    return module.eval()


def write_release(root, with_pickle: bool = True):
    """A cvssp/audioldm2-like folder at tiny width: vae/ and vocoder/ written by the
    libraries themselves (config.json + safetensors), plus the vocoder's pickle duplicate."""
    vae = randomised(AutoencoderKL(**TINY_VAE), 0)
    vocoder = randomised(SpeechT5HifiGan(SpeechT5HifiGanConfig(**TINY_VOCODER)), 1)
    vae.save_pretrained(root / "vae")
    vocoder.save_pretrained(root / "vocoder")
    if with_pickle:  # never read: loading it would fail the test
        (root / "vocoder" / "pytorch_model.bin").write_bytes(b"not to be read")
    return root / "vae", root / "vocoder"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return write_release(tmp_path_factory.mktemp("audioldm2"))


# ---------------------------------------------------------------- mel front end


def slaney_filterbank(sample_rate, n_fft, n_mels, f_max):
    """Slaney mel scale + area normalisation (librosa's defaults), restated in numpy."""
    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        log = 27.0 / math.log(6.4)
        return np.where(f < 1000.0, 3.0 * f / 200.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) * log)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        return np.where(m < 15.0, 200.0 * m / 3.0, 1000.0 * np.exp((m - 15.0) * math.log(6.4) / 27.0))

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(f_max), n_mels + 2))
    lower = (freqs[None] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    upper = (edges[2:, None] - freqs[None]) / (edges[2:] - edges[1:-1])[:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]  # [n_mels, n_freqs]


def numpy_log_mel(waveform: np.ndarray) -> np.ndarray:
    """JavisDiT++'s transform restated in float64 numpy: [N] -> [mel_frames(N), 64]."""
    x = waveform.astype(np.float64)
    x = x - x.mean()
    x = np.clip(x / (np.abs(x).max() + 1e-8) * 0.5, -1.0, 1.0)
    x = np.pad(x, 512, mode="reflect")
    frames = 1 + (len(x) - 1024) // 160
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)  # periodic Hann
    index = np.arange(1024)[None] + 160 * np.arange(frames)[:, None]
    magnitude = np.abs(np.fft.rfft(x[index] * window, axis=-1))  # [frames, 513]
    log_mel = np.log(np.maximum(magnitude @ slaney_filterbank(16_000, 1024, 64, 8_000.0).T, 1e-5))
    target = mel_frames(len(waveform))
    out = np.zeros((target, 64))
    out[: min(target, frames)] = log_mel[:target]
    return out


def test_slaney_restatement_matches_diffusers_filterbank():
    # A second, independent filterbank (diffusers' MMAudio one) agrees with the restatement.
    diffusers_bank = autoencoder_mmaudio.mel_filterbank(16_000, 1024, 64, 0.0, 8_000.0).double().numpy()
    np.testing.assert_allclose(slaney_filterbank(16_000, 1024, 64, 8_000.0), diffusers_bank, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seconds", [1.0, 4.0625])
def test_mel_front_end_matches_independent_computation(seconds):
    n = round(seconds * 16_000)
    t = torch.arange(n) / 16_000
    chirp = 0.3 * torch.sin(2 * math.pi * (200 + 1500 * t) * t) + 0.05 * torch.randn(n, generator=torch.Generator().manual_seed(0))
    ours = AudioLDM2Mel()(chirp[None] * 3.0 + 0.2)[0]  # loudness step removes the gain and the offset
    expected = numpy_log_mel(chirp.numpy() * 3.0 + 0.2)
    # 1 s -> 101 STFT frames padded to 104; 65 frames at 16 fps -> 406 -> 408 (facts, section 1.6).
    assert ours.shape == expected.shape == ({1.0: 104, 4.0625: 408}[seconds], 64)
    assert np.abs(ours.double().numpy() - expected).max() < 1e-4
    assert (ours[-1] == 0).all()  # padded in the log domain with zeros, as upstream


# ---------------------------------------------------------------- the codec against the libraries


def test_codec_matches_diffusers_and_transformers(release):
    vae_dir, vocoder_dir = release
    codec = load_audio_codec(str(vae_dir), str(vocoder_dir))  # folders: pickle duplicate ignored
    assert isinstance(codec, AudioLDM2Codec)
    assert codec.geometry == AUDIOLDM2 and (codec.sample_rate, codec.latent_rate, codec.latent_channels) == (16_000, 25.0, 8)
    oracle_vae = AutoencoderKL.from_pretrained(vae_dir).eval()
    oracle_vocoder = SpeechT5HifiGan.from_pretrained(vocoder_dir).eval()
    wave = syllables(1.0)  # [1, 16000]
    latents = codec.encode(wave, 16_000)
    assert latents.shape == (1, 8, 16, codec.latent_frames(1.0)) == (1, 8, 16, 26)
    with torch.no_grad():
        mel = torch.from_numpy(numpy_log_mel(wave[0].numpy())).float()[None, None]  # [1, 1, 104, 64]
        expected = oracle_vae.encode(mel).latent_dist.mean * oracle_vae.config.scaling_factor  # [1, 8, 26, 16]
    assert (latents - expected.transpose(-1, -2)).abs().max() < 1e-4
    # Decode: AutoencoderKL.decode -> SpeechT5HifiGan, cut to 640 samples per latent frame.
    z = torch.randn(2, 8, 16, 6, generator=torch.Generator().manual_seed(2))
    waveform = codec.decode(z)
    with torch.no_grad():
        mel = oracle_vae.decode(z.transpose(-1, -2) / oracle_vae.config.scaling_factor).sample[:, 0]
        full = oracle_vocoder(mel)
    assert full.shape[-1] == 160 * 24 + 32  # the vocoder's own length (facts, section 3)
    assert waveform.shape == (2, 1, codec.num_samples(6)) == (2, 1, 6 * 640)
    assert (waveform[:, 0] - full[:, : 6 * 640]).abs().max() < 1e-4


def test_renamed_single_files_use_shipped_configs_with_sizes_from_the_weights(release, tmp_path):
    vae_dir, vocoder_dir = release
    (tmp_path / "audioldm2_vae.safetensors").write_bytes((vae_dir / "diffusion_pytorch_model.safetensors").read_bytes())
    (tmp_path / "audioldm2_vocoder.safetensors").write_bytes((vocoder_dir / "model.safetensors").read_bytes())
    codec = load_audio_codec(str(tmp_path / "audioldm2_vae.safetensors"), str(tmp_path / "audioldm2_vocoder.safetensors"))
    reference = load_audio_codec(str(vae_dir / "diffusion_pytorch_model.safetensors"), str(vocoder_dir / "model.safetensors"))
    assert list(codec.vae.config.block_out_channels) == [32, 32, 64] and codec.scaling_factor == reference.scaling_factor
    z = torch.randn(1, 8, 16, 4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(codec.decode(z), reference.decode(z))


def test_real_key_tables_load_at_full_size():
    vae_state = manifest_state_dict("audioldm2_vae", keep_dtype=False)
    with torch.device("meta"):
        vae = AutoencoderKL(**vae_config(vae_state, None))
    assert vae.state_dict().keys() == vae_state.keys()
    assert all(vae.state_dict()[k].shape == v.shape for k, v in vae_state.items())
    assert sum(v.numel() for v in vae.state_dict().values()) == manifest("audioldm2_vae")["n_params"]
    vocoder_state = manifest_state_dict("audioldm2_vocoder", keep_dtype=False)
    config = vocoder_config(vocoder_state, None, "manifest")
    assert config.to_dict() | shipped_config("vocoder") == config.to_dict() | {"_class_name": "SpeechT5HifiGan",
                                                                              "_source": shipped_config("vocoder")["_source"]}
    with torch.device("meta"):
        vocoder = SpeechT5HifiGan(config)
    assert {k: tuple(v.shape) for k, v in vocoder.state_dict().items()} == {k: tuple(v.shape) for k, v in vocoder_state.items()}
    assert sum(v.numel() for v in vocoder.state_dict().values()) == manifest("audioldm2_vocoder")["n_params"]


def test_mismatched_pairs_are_refused_naming_each_file(release, tmp_path):
    vae_dir, vocoder_dir = release
    mmaudio_vae = tmp_path / "v1-16.pth"
    torch.save(tiny_raw_vae_state_dict(), mmaudio_vae)
    bigvgan = tmp_path / "best_netG.pt"
    torch.save({"generator": tiny_vocoder_state()}, bigvgan)
    transformer = tmp_path / "javisdit.safetensors"
    save_file({k: torch.zeros(1) for k in ("audio_patch_embedding.weight", "blocks.0.audio_ffn.0.weight",
                                           "patch_embedding.weight", "head.head.weight", "blocks.0.self_attn.q.weight")},
              str(transformer))
    wan_vae = tmp_path / "wan_2.1_vae.safetensors"
    save_file({k: torch.zeros(1) for k in ("encoder.conv1.weight", "encoder.downsamples.0.weight", "decoder.conv1.weight")},
              str(wan_vae))
    cases = [
        (mmaudio_vae, vocoder_dir, "the MMAudio audio VAE", "AudioLDM2's HiFi-GAN vocoder"),
        (vae_dir, bigvgan, "AudioLDM2's VAE", "a BigVGAN vocoder"),
        (wan_vae, vocoder_dir, "the Wan2.1 video VAE", "AudioLDM2's HiFi-GAN vocoder"),
        (vae_dir, transformer, "AudioLDM2's VAE", "a JavisDiT++ transformer"),
    ]
    for vae_path, vocoder_path, vae_is, vocoder_is in cases:
        with pytest.raises(ValueError) as err:
            load_audio_codec(str(vae_path), str(vocoder_path))
        message = str(err.value)
        assert "\n" not in message and f"is {vae_is}" in message and f"is {vocoder_is}" in message, message


def test_a_foreign_config_beside_the_file_is_refused(release, tmp_path):
    vae_dir, vocoder_dir = release
    folder = tmp_path / "vae"
    folder.mkdir()
    (folder / "diffusion_pytorch_model.safetensors").write_bytes((vae_dir / "diffusion_pytorch_model.safetensors").read_bytes())
    (folder / "config.json").write_text('{"_class_name": "UNet2DConditionModel"}')
    with pytest.raises(ValueError, match="UNet2DConditionModel, not AudioLDM2's vae"):
        load_audio_codec(str(folder), str(vocoder_dir))


def test_latent_checks_and_lengths(release):
    codec = load_audio_codec(str(release[0]), str(release[1]))
    with pytest.raises(ValueError, match=r"\[B,C,F,T\] = \[B,8,16,T\]"):
        codec.decode(torch.zeros(1, 8, 5))
    assert codec.decode(torch.zeros(8, 16, 2)).shape == (1, 1, 1280)  # batch axis added
    # JavisDiT++ lengths (facts, section 1.6): 65 frames at 16 fps -> 408 mel -> 102 latent frames.
    assert codec.latent_frames(65 / 16) == 102 and codec.latent_frames(81 / 16) == 128
    stereo = torch.stack([syllables(0.5)[0], torch.zeros(8000)])
    assert codec.encode(stereo, 16_000).shape == (1, 8, 16, codec.latent_frames(0.5))
