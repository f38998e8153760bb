"""Trainer: clean-context samples (the start of a clip held clean, the rest generated), as extend asks."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from jova_core.config import preset_config
from jova_core.latent import JoVALatent
from jova_core.model import JoVATransformer
from jova_core.mouth.loss import mouth_weighted_flow_loss
from jova_core.sampling.extend import extend, plan_chunks, plan_extension
from jova_core.sampling.schedule import add_noise, timesteps_from_sigma, velocity_target
from jova_core.train.config import TrainConfig
from jova_core.train.data import CachedClips
from jova_core.train.loss import context_masks, draw_noise, flow_losses
from jova_core.train.trainer import build_model, train

from test_train import TINY, recipe, write_random_cache

FPS = 8.0
FRAMES, AUDIO = 4, 50  # 13 pixel frames at 8 fps = 1.625 s; 31.25 audio latent frames/s -> 50


def clips(batch=3, seed=0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, FRAMES, 4, 4)
    mask[:, :, 2:, 1:3] = 1.0
    return {"video": torch.randn(batch, 16, FRAMES, 4, 4, generator=g), "audio": torch.randn(batch, 20, AUDIO, generator=g),
            "text": torch.randn(batch, 4, 8, generator=g), "mouth_mask": mask, "fps": torch.full((batch,), FPS)}


def audio_frames_of_seconds(video_latent_frames: int, fps: float, rate: float = 31.25, stride: int = 4) -> int:
    """The audio latent frames inside the seconds the first video latent frames show:
    1 + (k - 1) * stride pixel frames of 1 / fps s each, whole audio frames of 1 / rate s."""
    return max(1, int((1 + (video_latent_frames - 1) * stride) / fps * rate + 1e-9))


class Recording:
    """A model that remembers what each call was given."""

    def __init__(self, model):
        self.model, self.config, self.calls = model, model.config, []

    def __call__(self, **kwargs):
        self.calls.append({k: v.detach().clone() if torch.is_tensor(v) else v for k, v in kwargs.items()})
        return self.model(**kwargs)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = build_model(TrainConfig(preset="tiny", model_overrides=TINY))
    with torch.no_grad():  # the heads are zero-initialised; randomise to get a real field
        for p in model.parameters():
            p.normal_(std=0.2)
    return model


def context_noise(batch, seeds=(5, 6, 7), frames=2):
    noise = draw_noise(batch, list(seeds), shift=3.0)
    return dataclasses.replace(noise, context_frames=torch.tensor([frames, 0, frames])[: len(seeds)])


def test_held_frames_go_in_exactly_clean_at_t_zero_and_the_rest_noised(model):
    batch, recording = clips(), Recording(model)
    noise = context_noise(batch)
    with torch.no_grad():
        flow_losses(recording, batch, noise, mouth_weight=5.0)
    (call,) = recording.calls
    held_audio = audio_frames_of_seconds(2, FPS)
    assert held_audio == 19  # 5 pixel frames at 8 fps = 0.625 s of 31.25 Hz audio latents
    t_video, t_audio = call["t_video"], call["t_audio"]
    assert t_video.shape == (3, FRAMES) and t_audio.shape == (3, AUDIO)
    for b in range(3):
        k, ka = (2, held_audio) if b != 1 else (0, 0)
        sv, sa = noise.sigma_video[b].item(), noise.sigma_audio[b].item()
        assert torch.all(t_video[b, :k] == 0) and torch.all(t_video[b, k:] == timesteps_from_sigma(sv))
        assert torch.all(t_audio[b, :ka] == 0) and torch.all(t_audio[b, ka:] == timesteps_from_sigma(sa))
        assert torch.equal(call["video"][b, :, :k], batch["video"][b, :, :k])
        assert torch.equal(call["audio"][b, :, :ka], batch["audio"][b, :, :ka])
        torch.testing.assert_close(call["video"][b, :, k:], (1 - sv) * batch["video"][b, :, k:] + sv * noise.video[b, :, k:])
        torch.testing.assert_close(call["audio"][b, :, ka:], (1 - sa) * batch["audio"][b, :, ka:] + sa * noise.audio[b, :, ka:])
        assert sv > 0.01 and sa > 0.01  # the generated part really is noised


def test_held_frames_add_no_loss(model):
    batch = clips()
    noise = context_noise(batch)
    with torch.no_grad():
        loss_v, loss_a = flow_losses(model, batch, noise, mouth_weight=5.0)
        # Other noise on the held frames changes only their (unused) targets, not the inputs.
        other = dataclasses.replace(noise, video=noise.video.clone(), audio=noise.audio.clone())
        other.video[[0, 2], :, :2] += 3.0
        other.audio[[0, 2], :, :19] -= 3.0
        again_v, again_a = flow_losses(model, batch, other, mouth_weight=5.0)
        # Independent restatement: squared errors of the generated frames only, over all elements.
        recording = Recording(model)
        flow_losses(recording, batch, noise, mouth_weight=5.0)
        pred_v, pred_a = model(**recording.calls[0])
    assert torch.equal(again_v, loss_v) and torch.equal(again_a, loss_a)
    keep_v = torch.ones(3, 1, FRAMES, 1, 1)
    keep_v[[0, 2], :, :2] = 0
    keep_a = torch.ones(3, 1, AUDIO)
    keep_a[[0, 2], :, :19] = 0
    weights = 1 + 5.0 * batch["mouth_mask"][:, None]
    error_v = weights * (pred_v - (noise.video - batch["video"])) ** 2 * keep_v
    error_a = (pred_a - (noise.audio - batch["audio"])) ** 2 * keep_a
    torch.testing.assert_close(loss_v, error_v.sum() / error_v.numel(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(loss_a, error_a.sum() / error_a.numel(), rtol=1e-5, atol=1e-7)
    # ...and the held frames would have counted: with them kept the losses differ.
    assert (weights * (pred_v - (noise.video - batch["video"])) ** 2).mean() - loss_v > 1e-3
    assert ((pred_a - (noise.audio - batch["audio"])) ** 2).mean() - loss_a > 1e-3


def test_probability_zero_leaves_the_draws_and_the_loss_bit_identical(model):
    batch = clips(batch=4)
    seeds = [11, 12, 13, 14]
    settings = dict(shift=3.0, caption_dropout=0.25, clean_audio_probability=0.5, clean_video_probability=0.25)
    today = draw_noise(batch, seeds, **settings)
    zero = draw_noise(batch, seeds, **settings, clean_context_probability=0.0, clean_context_frames=2)
    for f in dataclasses.fields(today):
        assert torch.equal(getattr(zero, f.name), getattr(today, f.name)), f.name
    assert not zero.context_frames.any()
    zero = dataclasses.replace(zero, drop_text=torch.zeros(4, dtype=torch.bool))
    with torch.no_grad():
        got = flow_losses(model, batch, zero, mouth_weight=5.0)
        # Today's objective restated: every frame at its sample's sigma, a scalar t per sample.
        sv, sa = zero.sigma_video, zero.sigma_audio
        pred_v, pred_a = model(video=add_noise(batch["video"], zero.video, sv), audio=add_noise(batch["audio"], zero.audio, sa),
                               t_video=timesteps_from_sigma(sv), t_audio=timesteps_from_sigma(sa), text=batch["text"],
                               reference=None, fps=FPS)
    keep_v = (~zero.clean_video).view(-1, 1, 1, 1, 1).float()
    keep_a = (~zero.clean_audio).view(-1, 1, 1).float()
    want_v = mouth_weighted_flow_loss(pred_v * keep_v, velocity_target(batch["video"], zero.video) * keep_v,
                                      batch["mouth_mask"], 5.0)
    want_a = torch.nn.functional.mse_loss(pred_a * keep_a, velocity_target(batch["audio"], zero.audio) * keep_a)
    assert torch.equal(got[0], want_v) and torch.equal(got[1], want_a)


def test_context_draws_take_their_own_share_and_leave_the_others_alone():
    many = {"video": torch.zeros(200, 1, 1, 1, 1), "audio": torch.zeros(200, 1, 1)}
    seeds = list(range(200))
    without = draw_noise(many, seeds, 3.0, clean_audio_probability=0.3, clean_video_probability=0.2)
    drawn = draw_noise(many, seeds, 3.0, clean_audio_probability=0.3, clean_video_probability=0.2,
                       clean_context_probability=0.4, clean_context_frames=3)
    held = drawn.context_frames > 0
    assert set(drawn.context_frames.tolist()) == {0, 3}
    assert 60 <= int(held.sum()) <= 100  # 0.4 of 200, within ~3 standard deviations
    assert (held & drawn.clean_audio).any() and (held & ~drawn.clean_audio & ~drawn.clean_video).any()
    for f in dataclasses.fields(drawn):
        if f.name != "context_frames":
            assert torch.equal(getattr(drawn, f.name), getattr(without, f.name)), f.name
    always = draw_noise(many, seeds[:5], 3.0, clean_context_probability=1.0, clean_context_frames=2)
    assert torch.equal(always.context_frames, torch.full((5,), 2))


def test_trainer_and_extend_hold_the_same_frames_and_the_same_audio_span():
    """extend (context "clean") continues a 13-latent-frame 24 fps clip with a 2-frame
    overlap; every model call holds what a training sample of the chunk's shape holds."""
    config = preset_config("tiny", default_fps=24.0)
    calls = []

    def fake(**kw):
        calls.append((kw["t_video"].clone(), kw["t_audio"].clone(), kw["video"].shape[2], kw["audio"].shape[-1]))
        return torch.zeros_like(kw["video"]), torch.zeros_like(kw["audio"])

    fake.config, fake.hosting = config, JoVATransformer(config).hosting
    g = torch.Generator().manual_seed(0)
    latent = JoVALatent(torch.randn(1, 16, 13, 2, 2, generator=g), torch.randn(1, 20, 63, generator=g), 24.0, 49, 32, 32,
                        audio_sampled=True)
    extend(fake, latent, 6.0, text=torch.zeros(1, 3, 16), cfg_video=1.0, cfg_audio=1.0, steps=2, overlap=2,
           context="clean", sampler="euler")
    assert len(calls) == 2 * len(plan_extension(config.geometry, latent, 6.0, overlap=2)) == 2 * 3  # a short last chunk
    for t_video, t_audio, video_frames, audio_frames in calls:
        held_v, held_a = context_masks(fake, torch.tensor([2]), video_frames, audio_frames, 24.0)
        assert torch.equal(t_video[0] == 0, held_v[0]) and torch.equal(t_audio[0] == 0, held_a[0])
    assert int(held_a.sum()) == audio_frames_of_seconds(2, 24.0) == 6

    # extend's audio-driven pass (a2v: all audio clean, the video context held) is a
    # clean-audio sample holding context.
    calls.clear()
    extend(fake, latent, 2.5, text=torch.zeros(1, 3, 16), cfg_video=1.0, cfg_audio=1.0, steps=1, overlap=2,
           context="clean", sampler="euler", audio_driven_pass=True)
    (_, _, video_frames, _), (t_video, t_audio, _, _) = calls
    assert torch.equal(t_video[0] == 0, context_masks(fake, torch.tensor([2]), video_frames, 63, 24.0)[0][0])
    assert torch.all(t_audio == 0)
    batch = {"video": torch.randn(1, 16, video_frames, 2, 2), "audio": torch.randn(1, 20, 63),
             "text": torch.zeros(1, 3, 16), "fps": torch.tensor([24.0])}
    noise = draw_noise(batch, [0], 3.0, clean_audio_probability=1.0, clean_context_probability=1.0,
                       clean_context_frames=2)
    recording = Recording(fake)
    flow_losses(recording, batch, noise, mouth_weight=0.0)
    trained = recording.calls[0]
    assert torch.equal(trained["t_video"] == 0, t_video == 0) and torch.all(trained["t_audio"] == 0)
    assert torch.equal(trained["audio"], batch["audio"])

    # Over many chunks and overlaps: the same video frames; the same audio to within the one
    # latent frame by which extend rounds a chunk's audio start to the nearest frame.
    for overlap in range(1, 6):
        chunks = plan_chunks(13, 63, 13 * 8, 24.0, 4, 31.25, 1, 13, overlap)
        want = context_masks(fake, torch.tensor([overlap]), 13, 63, 24.0)[1].sum().item()
        assert want == audio_frames_of_seconds(overlap, 24.0)
        assert all(c.video_held == overlap for c in chunks)
        assert all(abs(c.audio_held - want) <= 1 for c in chunks), [c.audio_held for c in chunks]
        # The span extend holds starts within half an audio frame of the held video's start.
        for c in chunks:
            assert abs(c.audio_start / 31.25 - c.video_start * 4 / 24.0) <= 0.5 / 31.25 + 1e-9


def test_clean_context_training_runs_and_settings_are_checked(tmp_path):
    paths = write_random_cache(str(tmp_path / "cache"))  # video 2 latent frames, audio 6 at 8 fps
    result = train(recipe(tmp_path, clean_context_probability=1.0, clean_context_frames=1), CachedClips(paths),
                   show_progress=False)
    assert all(math.isfinite(row["loss"]) for row in result.history) and len(result.history) == 3
    batch = CachedClips(paths).batch([0, 1])
    noise = dataclasses.replace(draw_noise(batch, [1, 2], 3.0), context_frames=torch.tensor([2, 0]))
    with pytest.raises(ValueError, match="clean_context_frames 2 leaves no video latent frame to generate in clips of 2"):
        flow_losses(build_model(recipe(tmp_path)), batch, noise, mouth_weight=0.0)
    TrainConfig(clean_audio_probability=0.6, clean_context_probability=1.0)  # drawn on its own
    bad = [(dict(clean_context_probability=1.5), r"clean_context_probability must be in \[0, 1\], got 1.5"),
           (dict(clean_context_probability=-0.1), r"clean_context_probability must be in \[0, 1\]"),
           (dict(clean_context_frames=0), "clean_context_frames must be >= 1"),
           (dict(clean_context_frames=1.5), "'clean_context_frames' must be a whole number"),
           (dict(clean_context_probability="0.5"), "'clean_context_probability' must be a number")]
    for settings, message in bad:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**settings)
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"clean_context_frame": 2}))
    with pytest.raises(ValueError, match="did you mean 'clean_context_frames'"):
        TrainConfig.from_file(str(path))


def test_two_dimensional_audio_is_held_in_whole_time_patches():
    """AudioLDM2-style audio [B, C, bins, T] at 25 latent frames/s, patched 2 x 2 in
    (bins, time): the held audio is whole time patches, on every bin."""
    overrides = dict(audio_in_channels=8, audio_out_channels=8, audio_frequency_bins=4, audio_patch_size=(2, 2),
                     audio_latent_rate=25.0)
    torch.manual_seed(0)
    model = build_model(TrainConfig(preset="tiny", model_overrides={**TINY, **overrides}))
    g = torch.Generator().manual_seed(3)
    batch = {"video": torch.randn(2, 16, 4, 4, 4, generator=g), "audio": torch.randn(2, 8, 4, 40, generator=g),
             "text": torch.randn(2, 4, 8, generator=g), "fps": torch.full((2,), FPS)}
    noise = dataclasses.replace(draw_noise(batch, [1, 2], 3.0), context_frames=torch.tensor([3, 0]))
    recording = Recording(model)
    with torch.no_grad():
        loss_v, loss_a = flow_losses(recording, batch, noise, mouth_weight=0.0)
    call = recording.calls[0]
    held = int(((1 + 2 * 4) / FPS * 25.0) // 2 * 2)  # 9 pixel frames = 1.125 s -> 28.1 -> 28 audio latent frames
    assert held == 28
    assert torch.all(call["t_audio"][0, :held] == 0) and torch.all(call["t_audio"][0, held:] > 0)
    assert torch.equal(call["audio"][0, ..., :held], batch["audio"][0, ..., :held])
    assert not torch.equal(call["audio"][0, ..., held:], batch["audio"][0, ..., held:])
    assert torch.all(call["t_audio"][1] > 0) and math.isfinite(loss_v.item()) and math.isfinite(loss_a.item())
