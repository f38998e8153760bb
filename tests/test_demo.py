"""The CPU demo: its text encoder, the shipped checkpoint, and the `demo` verb's MP4."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import torch

from jova_core.text import format_prompt
from jova_core.text.demo import DemoTextEncoder, syllables

CAPTION = "A woman astronaut talking to the camera."


def test_text_encoder_is_deterministic_and_reads_syllable_order():
    enc = DemoTextEncoder(48, 32)
    a = enc(format_prompt(CAPTION, "A voice.", "bama da"))
    assert torch.equal(a, DemoTextEncoder(48, 32)(format_prompt(CAPTION, "A voice.", "bama da")))
    assert a.shape == (1, 32, 48)
    tokens = enc.tokenize(format_prompt(CAPTION, "A voice.", "bama da"))
    assert [t[3] for t in tokens if t[0] == 2] == ["ba", "ma", "da"]
    assert [t[2] for t in tokens if t[0] == 2] == [True, False, True]  # word starts
    # Same syllables in another order give different features (positions are encoded) ...
    b = enc(format_prompt(CAPTION, "A voice.", "da ma ba"))
    assert not torch.equal(a, b)
    # ... and the n-th transcript syllable's position part does not depend on the captions.
    longer = enc(format_prompt(CAPTION + " She smiles.", "A voice.", "bama da"))
    n_a, n_long = len(tokens), len(enc.tokenize(format_prompt(CAPTION + " She smiles.", "A voice.", "bama da")))
    torch.testing.assert_close(a[0, n_a - 3 : n_a], longer[0, n_long - 3 : n_long])
    # Padding rows and the empty prompt are zeros (the caption-dropout "no prompt").
    assert a[0, n_a:].abs().sum() == 0 and enc("").abs().sum() == 0


def test_text_encoder_errors_and_syllable_split():
    assert syllables("bamako") == ["ba", "ma", "ko"]
    assert syllables("pst") == ["pst"]
    with pytest.raises(ValueError, match="shorten"):
        DemoTextEncoder(48, 4)(format_prompt(CAPTION))
    with pytest.raises(ValueError, match="too small"):
        DemoTextEncoder(8, 4)


demo = pytest.importorskip("jova_core.demo")
needs_checkpoint = pytest.mark.skipif(not os.path.exists(demo.DEMO_CHECKPOINT), reason="demo checkpoint not built yet")


@needs_checkpoint
def test_shipped_checkpoint_is_small_and_describes_its_generation():
    assert os.path.getsize(demo.DEMO_CHECKPOINT) < 30 * 2**20
    settings = demo.load_demo_settings()
    model = demo.load_demo_model()
    assert model.config.text_attention == "joint"
    from jova_core.codecs.demo import DemoVideoCodec

    assert (settings.num_frames - 1) % 4 == 0 and settings.height % 16 == 0
    shape = DemoVideoCodec().latent_shape(settings.num_frames, settings.height, settings.width)
    assert shape[0] == model.config.video_in_channels
    prompt = demo.demo_prompt("ba ma da", settings)
    assert "<Transcript>: ba ma da" in prompt and "3 short syllables" in prompt
    with pytest.raises(ValueError, match="syllables"):
        demo.demo_prompt(" ".join(["ba"] * (settings.max_syllables + 1)), settings)


@needs_checkpoint
def test_demo_is_deterministic_per_seed():
    model = demo.load_demo_model()
    a = demo.generate_demo("ba ma", seed=3, steps=2, model=model)
    b = demo.generate_demo("ba ma", seed=3, steps=2, model=model)
    c = demo.generate_demo("ba ma", seed=4, steps=2, model=model)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.waveform, b.waveform)
    assert not torch.equal(a.frames, c.frames)
    settings = demo.load_demo_settings()
    assert a.frames.shape == (settings.num_frames, settings.height, settings.width, 3)
    assert 0 <= a.frames.min() and a.frames.max() <= 1


@needs_checkpoint
def test_demo_cli_writes_an_mp4_with_video_and_audio(tmp_path):
    import imageio_ffmpeg

    from jova_core.cli import main

    out = tmp_path / "demo.mp4"
    assert main(["demo", "--out", str(out), "--transcript", "ba ma da", "--seed", "1", "--steps", "2"]) == 0
    # ffmpeg itself (an independent reader) lists the streams.
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True)
    streams = re.findall(r"Stream #\d+:\d+.*?: (Video|Audio): (\w+)", probe.stderr)
    kinds = {kind for kind, _ in streams}
    assert kinds == {"Video", "Audio"}, probe.stderr
    settings = demo.load_demo_settings()
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", probe.stderr)
    seconds = int(duration.group(2)) * 60 + float(duration.group(3))
    assert abs(seconds - settings.num_frames / settings.fps) < 0.15
    # Never overwrites without being asked.
    assert main(["demo", "--out", str(out), "--steps", "2"]) == 1


def test_shipped_reference_frame_is_the_synthetic_one():
    """The demo reads its reference frame from a file so that it runs without scikit-image
    or mediapipe; the file must be exactly what the generator makes for those settings."""
    from jova_core import demo

    settings = demo.load_demo_settings()
    shipped = demo.reference_frame(settings)
    # Made with OpenCV 4 and mediapipe 0.10.21, where it is bit-exact. OpenCV 5 rounds some
    # resampled pixels differently (0.9 % of the values, by at most 2/255, with the same
    # landmarks), and newer mediapipe's landmarks (the shipped face model, within 0.002
    # pixel) move a few values by 1/255; another frame (other settings) differs far more.
    difference = (shipped - demo.synthetic_reference_frame(settings)).abs() * 255
    assert difference.max() <= 2 + 1e-4 and (difference > 0.5).float().mean() < 0.02


@needs_checkpoint
def test_audio_driven_pass_regenerates_the_video_to_the_generated_sound(monkeypatch):
    import dataclasses

    from jova_core.codecs.demo import DemoAudioCodec, DemoVideoCodec

    model = demo.load_demo_model()
    settings = dataclasses.replace(demo.load_demo_settings(), audio_driven_pass=True)
    monkeypatch.setattr(demo, "load_demo_settings", lambda checkpoint=None: settings)
    seen = []
    two_pass = demo.generate_demo("ba ma", seed=5, steps=2, model=model, callback=lambda info: seen.append((info.step, info.total)))
    joint = demo.generate_demo("ba ma", seed=5, steps=2, model=model, joint_only=True)
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4)] and settings.sampling_steps(2) == 4
    # Same sound; the video is the a2v pass on that sound, not the joint pass's video.
    assert torch.equal(two_pass.waveform, joint.waveform)
    assert not torch.equal(two_pass.frames, joint.frames)
    video_codec, audio_codec = DemoVideoCodec(), DemoAudioCodec()
    from jova_core.sampling import sample
    from jova_core.text.demo import DemoTextEncoder

    encoder = DemoTextEncoder(model.config.text_dim, model.config.text_len)
    common = dict(
        text=encoder(two_pass.prompt), negative_video=encoder(""), steps=2, sampler=settings.sampler, shift=settings.shift,
        cfg_video=settings.cfg_video, cfg_audio=settings.cfg_audio, seed=5, fps=settings.fps,
        reference=video_codec.encode(demo.reference_frame(settings)[None, None]),
        video_shape=(1, *video_codec.latent_shape(settings.num_frames, settings.height, settings.width)),
    )
    with torch.no_grad():
        _, audio = sample(model, mode="i2va", audio_shape=(1, audio_codec.latent_channels, settings.audio_latent_frames), **common)
        video, _ = sample(model, mode="a2v", audio_latents=audio, **common)
    torch.testing.assert_close(two_pass.frames, video_codec.decode(video)[0])
