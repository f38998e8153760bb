"""Held context: per-latent-frame timesteps in the model, context frames in the sampler."""

from __future__ import annotations

import pytest
import torch

from jova_core.config import preset_config
from jova_core.model import JoVATransformer
from jova_core.sampling import add_noise, sample

TEXT_DIM = 16


def random_model(**overrides) -> JoVATransformer:
    torch.manual_seed(0)
    model = JoVATransformer(preset_config("tiny", **overrides)).eval()
    with torch.no_grad():  # the head is zero-initialised; randomise to get a real field
        for p in model.parameters():
            p.normal_(std=0.2)
    return model


def inputs(batch=2):
    g = torch.Generator().manual_seed(1)
    return dict(
        video=torch.randn(batch, 16, 3, 4, 4, generator=g),
        audio=torch.randn(batch, 20, 6, generator=g),
        text=torch.randn(batch, 5, TEXT_DIM, generator=g),
    )


TEXT_MODES = [
    dict(),  # tiny: joint text, one dual-stream block
    dict(text_attention="cross", dual_stream_layers=0, text_len=8),
]


@pytest.mark.parametrize("overrides", TEXT_MODES)
def test_per_frame_timesteps_equal_to_a_scalar_match_the_scalar_path(overrides):
    model, x = random_model(**overrides), inputs()
    with torch.no_grad():
        v, a = model(**x, t_video=700.0, t_audio=250.0)
        v_pf, a_pf = model(**x, t_video=torch.full((1, 3), 700.0), t_audio=torch.full((2, 6), 250.0))
    torch.testing.assert_close(v_pf, v, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a_pf, a, rtol=1e-5, atol=1e-5)


def test_without_blocks_each_frame_is_modulated_by_its_own_timestep():
    """With no blocks a token's output is the head of its own patch at its own time: the
    output of frame j under per-frame times equals the scalar path's at t_j."""
    model, x = random_model(dual_stream_layers=0, single_stream_layers=0), inputs()
    times = [900.0, 0.0, 400.0]
    audio_times = torch.tensor([[0.0, 0.0, 300.0, 300.0, 800.0, 50.0]])
    with torch.no_grad():
        v, a = model(**x, t_video=torch.tensor([times]), t_audio=audio_times)
        for j, t in enumerate(times):
            v_j, _ = model(**x, t_video=t, t_audio=0.0)
            torch.testing.assert_close(v[:, :, j], v_j[:, :, j])
        for j, t in enumerate(audio_times[0].tolist()):
            _, a_j = model(**x, t_video=0.0, t_audio=t)
            torch.testing.assert_close(a[..., j], a_j[..., j])


def test_per_frame_timesteps_change_the_output_and_are_checked():
    model, x = random_model(), inputs()
    with torch.no_grad():
        v, _ = model(**x, t_video=700.0, t_audio=250.0)
        v_mixed, _ = model(**x, t_video=torch.tensor([[0.0, 700.0, 700.0]]), t_audio=250.0)
    assert (v_mixed - v).abs().max() > 1e-3
    with pytest.raises(ValueError, match=r"t_video per latent frame must be \[B, 3\]"):
        model(**x, t_video=torch.zeros(1, 4), t_audio=250.0)


def texts():
    g = torch.Generator().manual_seed(2)
    return torch.randn(1, 5, TEXT_DIM, generator=g), torch.randn(1, 3, TEXT_DIM, generator=g)


@pytest.mark.parametrize("how", ["clean", "noised"])
def test_held_context_frames_stay_exactly_the_context(how):
    model = random_model()
    text, negative = texts()
    g = torch.Generator().manual_seed(3)
    video_ctx, audio_ctx = torch.randn(1, 16, 2, 4, 4, generator=g), torch.randn(1, 20, 3, generator=g)
    seen = []
    video, audio = sample(
        model, text=text, negative_video=negative, mode="t2va", video_shape=(1, 16, 4, 4, 4), audio_shape=(1, 20, 8),
        steps=3, sampler="unipc", seed=5, video_context=video_ctx, audio_context=audio_ctx, context=how,
        callback=lambda info: seen.append(info.step),
    )
    assert seen == [0, 1, 2]
    assert torch.equal(video[:, :, :2], video_ctx) and torch.equal(audio[..., :3], audio_ctx)
    free_v, free_a = sample(model, text=text, negative_video=negative, mode="t2va", video_shape=(1, 16, 4, 4, 4),
                            audio_shape=(1, 20, 8), steps=3, sampler="unipc", seed=5)
    assert (video[:, :, 2:] - free_v[:, :, 2:]).abs().max() > 1e-3, "the context must steer the generated frames"
    assert (audio[..., 3:] - free_a[..., 3:]).abs().max() > 1e-3


def test_context_modes_feed_the_model_what_they_promise():
    """clean: context frames exactly, t = 0 on them and t elsewhere; noised: the context
    noised to the step's sigma with the sampler's own noise, one scalar t."""
    config = preset_config("tiny")
    ctx = torch.randn(1, 20, 2, generator=torch.Generator().manual_seed(4))
    for how in ("clean", "noised"):
        calls = []

        def model(**kw):
            calls.append({k: v.clone() if torch.is_tensor(v) else v for k, v in kw.items()})
            return None, torch.zeros_like(kw["audio"])

        model.config = config
        with torch.device("meta"):
            model.hosting = JoVATransformer(config).hosting
        sample(model, text=torch.zeros(1, 2, TEXT_DIM), mode="t2a", audio_shape=(1, 20, 5), steps=2, sampler="euler",
               cfg_audio=1.0, seed=7, audio_context=ctx, context=how)
        first = calls[0]
        if how == "clean":
            assert torch.equal(first["audio"][..., :2], ctx)
            t = first["t_audio"]
            assert t.shape == (1, 5) and torch.equal(t[0, :2], torch.zeros(2)) and (t[0, 2:] == 1000.0).all()
        else:
            noise = torch.randn((1, 20, 5), generator=torch.Generator().manual_seed(7))
            second = calls[1]
            sigma = second["t_audio"].item() / 1000
            torch.testing.assert_close(second["audio"][..., :2], add_noise(ctx, noise[..., :2], sigma))
            assert second["t_audio"].dim() == 0


def test_context_is_refused_where_it_cannot_be_held():
    model = random_model()
    text, negative = texts()
    common = dict(text=text, negative_video=negative, steps=1)
    with pytest.raises(ValueError, match="audio_context holds the start of a generated audio"):
        sample(model, mode="t2v", video_shape=(1, 16, 3, 4, 4), audio_context=torch.zeros(1, 20, 2), **common)
    with pytest.raises(ValueError, match=r"video_context must be the first k < 3 latent frames"):
        sample(model, mode="t2v", video_shape=(1, 16, 3, 4, 4), video_context=torch.zeros(1, 16, 3, 4, 4), **common)
    with pytest.raises(ValueError, match="context must be one of"):
        sample(model, mode="t2v", video_shape=(1, 16, 3, 4, 4), video_context=torch.zeros(1, 16, 1, 4, 4),
               context="frozen", **common)
