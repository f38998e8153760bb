"""Stable Audio Open VAE (MagiHuman's audio codec): every key of the real file at full size,
stable-audio-tools names renamed for diffusers' AutoencoderOobleck, MagiHuman's 51.2 kHz
in / 44.1 kHz out handling against diffusers + torchaudio, and torchaudio's resampler
against scipy's FFT resampler (what MagiHuman uses)."""

import re

import numpy as np
import pytest
import scipy.signal
import torch
import torchaudio.functional as AF
from diffusers import AutoencoderOobleck
from safetensors.torch import save_file

from manifests import manifest, manifest_state_dict

from jova_core.codecs import load_audio_codec
from jova_core.codecs.signals import syllables
from jova_core.codecs.stable_audio import StableAudioCodec, stable_audio_vae_from_state_dict
from jova_core.geometry import STABLE_AUDIO_OPEN

SAT = "pretransform.model."
# Small widths, Stable Audio Open's strides (2048 samples per latent) and channels (64 latents, stereo).
TINY = dict(encoder_hidden_size=128, downsampling_ratios=[2, 4, 4, 8, 8], channel_multiples=[1, 1, 1, 1, 1],
            decoder_channels=8, decoder_input_channels=64, audio_channels=2)


def to_stable_audio_tools(name: str, blocks: int = 5) -> str:
    """diffusers name -> stable-audio-tools name (restated from its Oobleck layout: layers.0 conv,
    layers.1..5 blocks, then snake and conv; residual units are (snake, conv, snake, conv))."""
    unit = {"snake1": 0, "conv1": 1, "snake2": 2, "conv2": 3}
    m = re.match(r"(encoder|decoder)\.(conv1|snake1|conv2)\.(.+)$", name)
    if m:
        part, layer, leaf = m.groups()
        return f"{part}.layers.{ {'conv1': 0, 'snake1': blocks + 1, 'conv2': blocks + 2}[layer]}.{leaf}"
    part, block, inner, leaf = re.match(r"(encoder|decoder)\.block\.(\d)\.(\w+)\.(.+)$", name).groups()
    head = f"{part}.layers.{int(block) + 1}.layers"
    m = re.match(r"res_unit(\d)\.(\w+)\.(.+)$", f"{inner}.{leaf}")
    if m:
        index = int(m.group(1)) - 1 + (0 if part == "encoder" else 2)
        return f"{head}.{index}.layers.{unit[m.group(2)]}.{m.group(3)}"
    index = {"encoder": {"snake1": 3, "conv1": 4}, "decoder": {"snake1": 0, "conv_t1": 1}}[part][inner]
    return f"{head}.{index}.{leaf}"


def sat_state_dict(model: AutoencoderOobleck) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith((".alpha", ".beta")):
            v = v.view(-1)  # stable-audio-tools stores snake parameters as [C]
        out[SAT + to_stable_audio_tools(k)] = v.contiguous()
    return out


def tiny_reference(seed=0):
    torch.manual_seed(seed)
    model = AutoencoderOobleck(**TINY).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # non-trivial snakes (zero log-alpha/beta would be the same in every channel)
        for name, p in model.named_parameters():
            if name.endswith((".alpha", ".beta")):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return model


def test_real_keys_all_load_at_full_size_on_meta():
    data = manifest("stable_audio_open_vae")
    real = {SAT + k: v for k, v in manifest_state_dict("stable_audio_open_vae", keep_dtype=False).items()}
    real["model.model.transformer.layers.0.weight"] = torch.empty(3, device="meta")  # the DiT beside it is skipped
    vae = stable_audio_vae_from_state_dict({k: v for k, v in real.items() if k.startswith(SAT)}, "manifest", device="meta")
    assert sum(v.numel() for v in vae.state_dict().values()) == data["n_params"] == 156_112_514
    assert vae.config.downsampling_ratios == [2, 4, 4, 8, 8] and vae.config.channel_multiples == [1, 2, 4, 8, 16]
    assert (vae.config.encoder_hidden_size, vae.config.decoder_input_channels, vae.config.audio_channels) == (128, 64, 2)
    # Our test renaming agrees with the real file's names, key for key.
    with torch.device("meta"):
        default = AutoencoderOobleck()
    assert {to_stable_audio_tools(k) for k in default.state_dict()} == set(data["keys"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    reference = tiny_reference()
    folder = tmp_path_factory.mktemp("sao")
    sat = folder / "model.safetensors"
    save_file({**sat_state_dict(reference), "model.model.other.weight": torch.zeros(2)}, str(sat))
    diffusers_file = folder / "diffusion_pytorch_model.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(diffusers_file))
    return reference, str(sat), str(diffusers_file)


def test_tiny_file_matches_diffusers_with_the_51_2_khz_trick(tiny):
    reference, sat_path, diffusers_path = tiny
    codec = load_audio_codec(sat_path)
    assert isinstance(codec, StableAudioCodec) and codec.geometry == STABLE_AUDIO_OPEN
    assert (codec.sample_rate, codec.latent_rate, codec.decoded_sample_rate) == (51_200, 25.0, 44_100)
    assert isinstance(load_audio_codec(diffusers_path), StableAudioCodec)
    stereo_16k = torch.stack([syllables(0.2)[0], 0.5 * syllables(0.2, seed=1)[0]])  # [2, 3200] at 16 kHz
    codec.sample_posterior = False
    latents = codec.encode(stereo_16k, 16_000)
    assert latents.shape == (1, 64, 5) == (1, *STABLE_AUDIO_OPEN.latent_shape(codec.latent_frames(0.2)))
    with torch.no_grad():
        mono_51k = AF.resample(stereo_16k.mean(0, keepdim=True), 16_000, 51_200).clamp(-1, 1)
        posterior = reference.encode(mono_51k.expand(2, -1)[None]).latent_dist
        scale = posterior.mean.abs().max()
        assert (latents - posterior.mean).abs().max() <= 1e-4 * scale
        decoded = codec.decode(latents)
        expected = AF.resample(reference.decode(latents).sample, 512, 441)
    assert decoded.shape == (1, 2, codec.num_samples(5)) == (1, 2, 5 * 1764)
    assert (decoded - expected).abs().max() <= 1e-4 * expected.abs().max()
    # The posterior sample is MagiHuman's default: mean + (softplus(scale) + 1e-4) * noise, repeatable with a generator.
    codec.sample_posterior = True
    first = codec.encode(stereo_16k, 16_000, generator=torch.Generator().manual_seed(3))
    again = codec.encode(stereo_16k, 16_000, generator=torch.Generator().manual_seed(3))
    noise = torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    assert (first - (posterior.mean + posterior.std * noise)).abs().max() <= 1e-4 * scale


def test_torchaudio_resampling_against_scipy_fft_resample():
    """MagiHuman resamples the decoded 51.2 kHz audio with scipy.signal.resample (FFT, whole clip);
    we use torchaudio's windowed sinc. Speech-band content agrees closely away from the ends."""
    rate_in, seconds = 51_200, 2.0
    t = np.arange(int(rate_in * seconds)) / rate_in
    speechlike = AF.resample(syllables(seconds, 16_000), 16_000, rate_in)[0].numpy().astype(np.float64)
    for signal in (0.5 * np.sin(2 * np.pi * 440 * t) * np.hanning(t.size), speechlike):
        ours = AF.resample(torch.from_numpy(signal)[None], 512, 441)[0].numpy()
        theirs = scipy.signal.resample(signal, round(signal.size * 441 / 512))
        assert ours.shape == theirs.shape == (88_200,)
        inner = slice(441, -441)  # 10 ms from each end (FFT resampling wraps the clip around)
        error = np.abs(ours - theirs)[inner].max() / np.abs(theirs).max()
        assert error < 1e-2, error


def test_wrong_files_are_named(tiny, tmp_path):
    _, sat_path, _ = tiny
    mmaudio_like = tmp_path / "v1-16.safetensors"
    save_file({"encoder.conv_in.weight": torch.zeros(4, 80, 3)}, str(mmaudio_like))
    with pytest.raises(ValueError, match="not the Stable Audio Open VAE.*vocoder"):
        load_audio_codec(str(mmaudio_like))
    with pytest.raises(ValueError, match="pick no vocoder"):
        load_audio_codec(sat_path, str(mmaudio_like))
    mono = {k: v for k, v in AutoencoderOobleck(**{**TINY, "audio_channels": 1}).state_dict().items()}
    with pytest.raises(ValueError, match="1 audio channels.*Stable Audio Open"):
        StableAudioCodec(stable_audio_vae_from_state_dict(mono, "mono"))


def test_both_namings_are_identified_as_stable_audio_open():
    from jova_core.identify import identify

    with torch.device("meta"):
        diffusers_keys = list(AutoencoderOobleck().state_dict())
    assert identify(diffusers_keys).name == identify(list(manifest("stable_audio_open_vae")["keys"])).name == "sao-vae"


def test_moving_the_codec_keeps_diffusers_quiet_and_casts_only_when_asked(tiny, caplog):
    """diffusers logs a float32-modules warning whenever .to() gets a dtype keyword, even
    None: ComfyUI printed it on every codec move. A dtype is passed only when one is asked."""
    codec = load_audio_codec(tiny[1])
    with caplog.at_level("WARNING"):
        codec.to("cpu")
    assert not [r for r in caplog.records if "float32" in r.getMessage()]
    assert codec.to("cpu", torch.float64).dtype == torch.float64 and codec.to("cpu").dtype == torch.float64
