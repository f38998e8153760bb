"""Long clips: extend a JoVA latent chunk by chunk (the demo model), and the seam measures."""

from __future__ import annotations

import math

import pytest
import torch

from jova_core.codecs.demo import DemoAudioCodec, DemoVideoCodec
from jova_core.demo import load_demo_model, load_demo_settings, reference_frame
from jova_core.demo.seams import seam_positions, seam_ratios
from jova_core.fit import clip_geometry
from jova_core.latent import JoVALatent
from jova_core.sampling import sample
from jova_core.sampling.extend import extend, plan_extension
from jova_core.text.demo import DemoTextEncoder

STEPS = 3


@pytest.fixture(scope="module")
def demo():
    settings, model = load_demo_settings(), load_demo_model()
    encoder = DemoTextEncoder(model.config.text_dim, model.config.text_len)
    video_codec = DemoVideoCodec()
    common = dict(text=encoder("ba ma da"), negative_video=encoder(""), steps=STEPS, sampler=settings.sampler,
                  shift=settings.shift, cfg_video=settings.cfg_video, cfg_audio=settings.cfg_audio,
                  reference=video_codec.encode(reference_frame(settings)[None, None]))
    clip = clip_geometry(model.config.geometry, settings.width, settings.height, settings.num_frames / settings.fps,
                         settings.fps)
    video, audio = sample(model, mode="i2va", video_shape=clip.video_shape, audio_shape=clip.audio_shape, seed=0,
                          fps=clip.fps, **common)
    latent = JoVALatent(video, audio, clip.fps, clip.frames, clip.width, clip.height, audio_sampled=True)
    return model, latent, common


@pytest.fixture(scope="module")
def extended(demo):
    model, latent, common = demo
    steps = []
    out = extend(model, latent, 4.5, overlap=2, callback=lambda info: steps.append((info.step, info.total)), **common)
    return out, steps


def test_extended_clip_has_the_length_asked_for_with_sound_as_long(demo, extended):
    model, latent, _ = demo
    out, _ = extended
    expected = clip_geometry(model.config.geometry, latent.width, latent.height, 4.5, latent.fps)
    assert out.frames == expected.frames and out.video.shape == expected.video_shape
    assert out.audio.shape == expected.audio_shape, "the audio must end where a clip of this length's would"
    assert latent.video.shape[2] == 13 and latent.frames == 49, "the input latent is not changed"


def test_the_clip_given_is_kept_exactly_and_each_overlap_is_shared(demo, extended):
    model, latent, _ = demo
    out, _ = extended
    assert torch.equal(out.video[:, :, : latent.video.shape[2]], latent.video)
    assert torch.equal(out.audio[..., : latent.audio.shape[-1]], latent.audio)
    chunks = plan_extension(model.config.geometry, latent, 4.5, overlap=2)
    assert len(chunks) == 2
    for before, after in zip(chunks, chunks[1:]):  # each chunk continues the last one's end, without repeating it
        assert after.video_start + after.video_held == before.video_start + before.video_frames
        assert after.audio_start + after.audio_held == before.audio_start + before.audio_frames
    last = chunks[-1]
    assert out.video.shape[2] == last.video_start + last.video_frames
    assert out.audio.shape[-1] == last.audio_start + last.audio_frames


def test_held_audio_starts_where_the_held_video_does(demo):
    model, latent, _ = demo
    geometry = model.config.geometry
    for chunk in plan_extension(geometry, latent, 9.0, overlap=3):
        video_seconds = chunk.video_start * geometry.video.temporal_stride / latent.fps
        assert abs(chunk.audio_start / geometry.audio.latent_rate - video_seconds) <= 0.5 / geometry.audio.latent_rate


def test_one_progress_count_over_all_chunks(extended):
    _, steps = extended
    total = 2 * STEPS
    assert steps == [(i, total) for i in range(total)]


def test_interruption_stops_the_loop(demo):
    model, latent, common = demo
    seen = []

    def stop(info):
        seen.append(info.step)
        if info.step == STEPS + 1:
            raise InterruptedError("stop")

    with pytest.raises(InterruptedError):
        extend(model, latent, 6.0, overlap=1, callback=stop, **common)
    assert seen == list(range(STEPS + 2))


def test_bad_extensions_get_one_line_errors(demo):
    model, latent, common = demo
    with pytest.raises(ValueError, match="overlap must be 1 .. 12"):
        extend(model, latent, 4.0, overlap=13, **common)
    silent = JoVALatent(latent.video, latent.audio, latent.fps, latent.frames, latent.width, latent.height)
    with pytest.raises(ValueError, match="both video and sound"):
        extend(model, silent, 4.0, **common)


def test_seam_measures_see_a_cut_and_not_a_smooth_join():
    """Oracle: a clip that drifts smoothly scores ~1 at any 'seam'; one that jumps there scores high."""
    t = torch.arange(97, dtype=torch.float32)
    smooth = (t / 97)[:, None, None, None].expand(-1, 8, 8, 3).clone()
    cut = smooth.clone()
    cut[48:] += 0.3
    sr, per_latent = 16_000, 512
    n = torch.arange(sr * 4, dtype=torch.float32)
    swell = 1 + 0.5 * torch.sin(2 * math.pi * 3 * n / sr)  # syllable-like loudness changes
    tone = 0.3 * swell * torch.cos(2 * math.pi * 220 * n / sr)  # at a peak at the seam
    clicked = tone.clone()
    clicked[sr * 2 :] *= -1  # a phase flip: a click
    ratios = seam_ratios(smooth, tone, [48], [sr * 2], 4, per_latent)
    assert 0.9 < ratios["video_ratio"] < 1.1 and ratios["flux_ratio"] < 1.5 and ratios["jump_ratio"] <= 1.0
    broken = seam_ratios(cut, clicked, [48], [sr * 2], 4, per_latent)
    assert broken["video_ratio"] > 5 and broken["flux_ratio"] > 3 and broken["jump_ratio"] > 1.5


def test_demo_seams_look_like_the_rest_of_the_clip(demo, extended):
    model, _, _ = demo
    out, _ = extended
    video_codec, audio_codec = DemoVideoCodec(), DemoAudioCodec()
    chunks = plan_extension(model.config.geometry, demo[1], 4.5, overlap=2)
    video_seams, audio_seams = seam_positions(chunks, video_codec.temporal_stride, audio_codec.samples_per_latent)
    ratios = seam_ratios(video_codec.decode(out.video)[0], audio_codec.decode(out.audio)[0, 0], video_seams,
                         audio_seams, video_codec.temporal_stride, audio_codec.samples_per_latent)
    assert ratios["video_ratio"] <= 2.0 and ratios["flux_ratio"] <= 2.0 and ratios["jump_ratio"] <= 1.0, ratios


def test_demo_cli_makes_a_longer_clip_in_one_progress_count(tmp_path, capsys):
    from jova_core.cli import main
    from jova_core.demo import generate_demo
    from jova_core.io.read import read_clip

    out = tmp_path / "long.mp4"
    assert main(["demo", "--out", str(out), "--seconds", "3.5", "--steps", "2"]) == 0
    clip = read_clip(str(out))
    settings = load_demo_settings()
    assert clip.frames.shape[0] == 81 and abs(clip.waveform.shape[-1] / clip.sample_rate - 81 / settings.fps) < 0.1
    passes = settings.sampling_steps(2)
    counts = []
    generate_demo(steps=2, seconds=3.5, callback=lambda info: counts.append((info.step, info.total)))
    assert counts == [(i, 2 * passes) for i in range(2 * passes)]  # the first clip and one chunk
    assert main(["demo", "--out", str(tmp_path / "x.mp4"), "--seconds", "-1"]) == 1
    assert "error: --seconds must be more than 0" in capsys.readouterr().err
