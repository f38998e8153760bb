"""Weight-free demo codecs: same geometry as the real ones, transforms checked against scipy."""


import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from skimage import data
from skimage.transform import resize

from jova_core.codecs import AudioCodec, VideoCodec
from jova_core.codecs.demo import _AUDIO_MEAN, _AUDIO_SCALE, _MEL_MEAN, _MEL_STD, _VIDEO_SCALE, DemoAudioCodec, DemoVideoCodec
from jova_core.codecs.mel import MEL_16K, MelFrontEnd
from jova_core.codecs.signals import syllables


def astronaut(size=64):
    return torch.tensor(resize(data.astronaut(), (size, size), anti_aliasing=True), dtype=torch.float32)


def test_video_geometry_and_causality():
    codec = DemoVideoCodec()
    assert isinstance(codec, VideoCodec)
    assert (codec.latent_channels, codec.temporal_stride, codec.spatial_stride) == (16, 4, 8)
    frames = torch.rand(2, 9, 32, 48, 3)
    latents = codec.encode(frames)
    assert latents.shape == (2, 16, 3, 4, 6) and codec.latent_shape(9, 32, 48) == (16, 3, 4, 6)
    assert codec.decode(latents).shape == (2, 9, 32, 48, 3)
    # Latent k sees pixel frame 4k only.
    changed = frames.clone()
    changed[:, 1:4] = torch.rand(2, 3, 32, 48, 3)
    changed[:, 4] = torch.rand(2, 32, 48, 3)
    delta = (codec.encode(changed) - latents).abs().amax(dim=(0, 1, 3, 4))
    assert delta[0] == 0 and delta[1] > 0 and delta[2] == 0


def test_video_coefficients_match_scipy_dct():
    image = astronaut(32)
    latents = DemoVideoCodec().encode(image[None])[0, :, 0]  # [16, 4, 4]
    r, g, b = image.double().unbind(-1)
    planes = [0.299 * r + 0.587 * g + 0.114 * b - 0.5,
              -0.168736 * r - 0.331264 * g + 0.5 * b,
              0.5 * r - 0.418688 * g - 0.081312 * b]
    keep = [[(0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1), (3, 0)],
            [(0, 0), (0, 1), (1, 0)], [(0, 0), (0, 1), (1, 0)]]
    expected = np.zeros((16, 4, 4))
    for by in range(4):
        for bx in range(4):
            channel = 0
            for plane, coeffs in zip(planes, keep):
                block = scipy.fft.dctn(plane[8 * by : 8 * by + 8, 8 * bx : 8 * bx + 8].numpy(), norm="ortho")
                for u, v in coeffs:
                    expected[channel, by, bx] = block[u, v] / _VIDEO_SCALE[channel]
                    channel += 1
    np.testing.assert_allclose(latents.numpy(), expected, atol=1e-5)


def test_video_decode_inverts_kept_coefficients_and_interpolates():
    codec = DemoVideoCodec()
    image = astronaut(64)
    latents = codec.encode(image[None].expand(5, -1, -1, -1).clone())
    decoded = codec.decode(latents)[0]
    psnr = -10 * torch.log10(((decoded[0] - image) ** 2).mean())
    assert psnr > 20, psnr  # 16 of 192 coefficients per block: a soft but recognisable image
    # Decode is the exact inverse on the kept coefficients (while pixels stay inside 0..1).
    z = 0.2 * torch.randn(1, 16, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    frames = codec.decode(z)[0]
    assert 0 < frames.min() and frames.max() < 1
    torch.testing.assert_close(codec.encode(frames), z, atol=1e-4, rtol=0)
    # Between two latent frames the decode is their linear blend.
    mid = codec.decode(z[:, :, :1] * 0.5 + z[:, :, 1:] * 0.5)[0, 0]
    torch.testing.assert_close(frames[2], mid, atol=1e-5, rtol=0)


def test_audio_geometry_and_projection_matches_scipy():
    codec = DemoAudioCodec()
    assert isinstance(codec, AudioCodec)
    assert (codec.sample_rate, codec.latent_rate, codec.latent_channels) == (16_000, 31.25, 20)
    wave = syllables(2.0)
    latents = codec.encode(wave, 16_000)
    assert latents.shape == (1, 20, codec.latent_frames(2.0)) == (1, 20, 62)
    log_mel = (MelFrontEnd(MEL_16K)(wave) - _MEL_MEAN) / _MEL_STD
    pooled = F.avg_pool1d(log_mel, 2)[0].numpy()
    coeffs = scipy.fft.dct(pooled, type=2, norm="ortho", axis=0)[:20]
    expected = (coeffs - np.array(_AUDIO_MEAN)[:, None]) / np.array(_AUDIO_SCALE)[:, None]
    np.testing.assert_allclose(latents[0].numpy(), expected, atol=1e-4)
    # Stereo 44.1 kHz input is mixed down and resampled to nearly the same latents.
    stereo = torch.cat([wave, wave])
    resampled = codec.encode(AF.resample(stereo, 16_000, 44_100), 44_100)
    assert (resampled - latents).abs().mean() < 0.1


def test_audio_round_trip_keeps_syllables_in_time():
    codec = DemoAudioCodec()
    wave = syllables(2.0, seed=2)
    decoded = codec.decode(codec.encode(wave, 16_000))
    assert decoded.shape == (1, 1, codec.num_samples(62)) and decoded.abs().max() <= 1
    mel = MelFrontEnd(MEL_16K)
    original, rebuilt = mel(wave[:, : decoded.shape[-1]]), mel(decoded[:, 0])
    assert np.corrcoef(original.flatten(), rebuilt.flatten())[0, 1] > 0.85
    # The loudness envelope lines up best at zero lag: syllables stay where they were.
    a, b = original.mean(1)[0], rebuilt.mean(1)[0]
    scores = {lag: np.corrcoef(a[8:-8], torch.roll(b, lag)[8:-8])[0, 1] for lag in range(-3, 4)}
    assert max(scores, key=scores.get) == 0 and scores[0] > 0.85
