"""AV I/O: MP4 round trip, stream facts probed with the ffmpeg binary imageio-ffmpeg ships."""

import math
import os
import subprocess
import wave

import numpy as np
import pytest
import torch

from jova_core.codecs.signals import syllables
from jova_core.io import probe_media, read_audio, read_clip, to_uint8_frames, write_mp4
from jova_core.io.ffmpeg import ffmpeg_exe
from jova_core.io.mp4 import write_wav

FPS = 12


def moving_clip(num_frames=25, height=47, width=63):
    """Smooth gradients with a bright square moving right: [T,H,W,3] in 0..1."""
    y = torch.linspace(0, 1, height).view(1, -1, 1)
    x = torch.linspace(0, 1, width).view(1, 1, -1)
    t = torch.arange(num_frames).view(-1, 1, 1) / num_frames
    frames = torch.stack([x.expand(num_frames, height, width), y.expand(num_frames, height, width),
                          (0.5 + 0.4 * torch.sin(2 * math.pi * (x + t))).expand(num_frames, height, width)], dim=-1)
    for i in range(num_frames):
        frames[i, 10:22, 2 * i : 2 * i + 12] = 0.95
    return frames


def test_round_trip_streams_and_durations(tmp_path):
    frames, audio = moving_clip(), syllables(3.0)  # audio longer than the 25/12 s video: trimmed
    path = write_mp4(str(tmp_path / "clip.mp4"), frames, FPS, audio, 16_000)
    info = probe_media(path)
    (video,), (sound,) = info.of_kind("video"), info.of_kind("audio")
    assert len(info.streams) == 2
    assert (video.codec, video.pix_fmt, video.width, video.height, video.fps) == ("h264", "yuv420p", 64, 48, FPS)
    assert (sound.codec, sound.sample_rate, sound.channels) == ("aac", 16_000, 1)
    duration = 25 / FPS
    assert abs(info.duration - duration) < 0.05

    clip = read_clip(path)
    got, waveform, fps, rate = clip
    assert (fps, rate) == (FPS, 16_000) and clip.frames is got and clip.waveform is waveform
    assert got.shape == (25, 48, 64, 3)
    # Odd sizes were padded by repeating the last row/column.
    padded = torch.cat([frames, frames[:, -1:]], 1)
    padded = torch.cat([padded, padded[:, :, -1:]], 2)
    assert (got - padded).abs().mean() < 0.03
    # Audio: the video's duration (AAC works in 1024-sample frames), and the same signal.
    assert abs(waveform.shape[1] - duration * 16_000) <= 1024
    n = min(waveform.shape[1], int(duration * 16_000))
    assert np.corrcoef(waveform[0, :n].numpy(), audio[0, :n].numpy())[0, 1] > 0.95


def test_short_audio_is_padded_and_stereo_kept(tmp_path):
    stereo = torch.stack([syllables(1.0)[0], -syllables(1.0, seed=1)[0]])
    path = write_mp4(str(tmp_path / "pad.mp4"), moving_clip(), FPS, stereo, 16_000)
    assert probe_media(path).of_kind("audio")[0].channels == 2
    _, waveform, _, _ = read_clip(path)
    assert waveform.shape[0] == 2 and abs(waveform.shape[1] - 25 / FPS * 16_000) <= 1024
    assert waveform[:, 17_000:32_000].abs().max() < 0.01  # the padding is silence
    assert waveform[:, :15_000].abs().max() > 0.2


def test_never_overwrites_unless_asked(tmp_path):
    path = str(tmp_path / "keep.mp4")
    write_mp4(path, moving_clip(5), FPS)
    before = open(path, "rb").read()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_mp4(path, moving_clip(9), FPS)
    assert open(path, "rb").read() == before
    write_mp4(path, moving_clip(9), FPS, overwrite=True)
    assert read_clip(path)[0].shape[0] == 9
    assert sorted(os.listdir(tmp_path)) == ["keep.mp4"]  # no partial files left behind


def test_fps_and_sample_rate_conversion(tmp_path):
    path = write_mp4(str(tmp_path / "c.mp4"), moving_clip(), FPS, syllables(3.0), 16_000)
    frames, waveform, fps, rate = read_clip(path, fps=6, sample_rate=8_000)
    assert (fps, rate) == (6, 8_000)
    assert abs(frames.shape[0] - 25 / FPS * 6) <= 1
    assert abs(waveform.shape[1] - 25 / FPS * 8_000) <= 512
    window, _, _, _ = read_clip(path, start=1.0, duration=0.5)
    assert window.shape[0] == 6


def test_video_without_audio_and_audio_files(tmp_path):
    path = write_mp4(str(tmp_path / "silent.mp4"), moving_clip(5), FPS)
    assert [s.kind for s in probe_media(path).streams] == ["video"]
    assert read_clip(path)[1] is None
    wav = str(tmp_path / "a.wav")
    write_wav(wav, syllables(0.5).numpy().T, 16_000)
    waveform, rate = read_audio(wav, sample_rate=22_050)
    assert rate == 22_050 and abs(waveform.shape[1] - 11_025) <= 1
    with pytest.raises(ValueError, match="read_audio"):
        read_clip(wav)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="sample_rate"):
        write_mp4(str(tmp_path / "x.mp4"), moving_clip(5), FPS, syllables(0.5))
    with pytest.raises(ValueError, match=r"\[T,H,W,3\]"):
        write_mp4(str(tmp_path / "x.mp4"), torch.rand(5, 8, 8), FPS)
    with pytest.raises(FileNotFoundError):
        read_clip(str(tmp_path / "missing.mp4"))


def test_written_file_has_normal_permissions_and_a_bitrate_aac_can_carry(tmp_path, capfd):
    from jova_core.io.mp4 import MAX_AUDIO_BITRATE, aac_bitrate

    umask = os.umask(0o022)
    try:
        path = write_mp4(str(tmp_path / "clip.mp4"), moving_clip(9, 32, 32), FPS, syllables(1.0), 16_000)
    finally:
        os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert "Too many bits" not in capfd.readouterr().err
    # AAC's ceiling is 6144 bits per channel per 1024-sample frame
    for rate, channels in ((16_000, 1), (44_100, 2), (8_000, 1)):
        assert aac_bitrate(rate, channels) <= min(MAX_AUDIO_BITRATE, 6144 * rate * channels / 1024)


def test_to_uint8_frames_reads_every_frame_layout():
    image = torch.tensor([[[0.0, 0.5, 1.2], [-0.1, 0.002, 0.998]]])  # one float image [H=1, W=2, 3]
    expected = np.array([[[[0, 128, 255], [0, 1, 254]]]], dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8_frames(image), expected)
    np.testing.assert_array_equal(to_uint8_frames(image.numpy()[None, None]), expected)  # [1, T, H, W, 3]
    rgba = torch.cat([image, torch.ones(1, 2, 1)], dim=-1)
    np.testing.assert_array_equal(to_uint8_frames(rgba), expected)
    pixels = torch.from_numpy(expected)
    assert to_uint8_frames(pixels).dtype == np.uint8 and np.array_equal(to_uint8_frames(pixels), expected)
    with pytest.raises(ValueError, match=r"\[T,H,W,3\]"):
        to_uint8_frames(torch.zeros(2, 4, 4, 2))


@pytest.mark.parametrize("channels, layout", [(1, "mono"), (2, "stereo"), (6, "5.1")])
def test_saving_states_the_channel_layout(tmp_path, capfd, channels, layout):
    """ffmpeg reads the WAV write_mp4 hands it without guessing its layout (it printed
    "Guessed Channel Layout" on every save before), and the samples arrive unchanged."""
    rng = np.random.default_rng(channels)
    samples = rng.uniform(-0.9, 0.9, (4000, channels)).astype(np.float32)
    wav = str(tmp_path / "a.wav")
    write_wav(wav, samples, 16_000)
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", wav, "-f", "s16le", "-"], capture_output=True)
    stderr = result.stderr.decode()
    assert result.returncode == 0 and "Guessed Channel Layout" not in stderr
    assert f"16000 Hz, {layout}," in stderr
    decoded = np.frombuffer(result.stdout, "<i2").reshape(-1, channels)
    np.testing.assert_array_equal(decoded, (samples * 32767.0).round().astype(np.int16))
    # The check can fail: a plain PCM WAV of the same samples leaves the layout to ffmpeg's guess.
    with wave.open(str(tmp_path / "plain.wav"), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(16_000)
        f.writeframes(decoded.tobytes())
    plain = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(tmp_path / "plain.wav"), "-f", "null", "-"],
                           capture_output=True)
    assert "Guessed Channel Layout" in plain.stderr.decode()
    # A save says nothing about layouts on ffmpeg's stderr (write_mp4's ffmpeg inherits it).
    capfd.readouterr()
    path = write_mp4(str(tmp_path / "c.mp4"), moving_clip(6), FPS, torch.from_numpy(samples.T), 16_000)
    assert "Guessed Channel Layout" not in capfd.readouterr().err
    assert probe_media(path).of_kind("audio")[0].channels == channels
