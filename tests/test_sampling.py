"""The sampler: schedule vs diffusers, solver parity, seeds, CFG routing, modes, callback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from jova_core.config import preset_config
from jova_core.model import JoVATransformer
from jova_core.sampling import (
    add_noise,
    predicted_x0,
    sample,
    sampling_sigmas,
    shift_sigma,
    velocity_target,
)

VIDEO = (1, 16, 2, 4, 4)
AUDIO = (1, 20, 8)
TEXT_DIM = 16


class Recorder:
    """A stand-in model: records every call's inputs and answers with `answer(**inputs)`."""

    def __init__(self, answer):
        self.config = getattr(answer, "config", preset_config("tiny"))
        # What a JoVA transformer of that config tells the sampler (jova_core.model.hosted).
        with torch.device("meta"):
            self.hosting = getattr(answer, "hosting", None) or JoVATransformer(self.config).hosting
        self.answer = answer
        self.calls: list[dict] = []

    def __call__(self, **inputs):
        self.calls.append({k: v.clone() if torch.is_tensor(v) else v for k, v in inputs.items()})
        return self.answer(**inputs)


def random_tiny(**overrides) -> JoVATransformer:
    torch.manual_seed(0)
    model = JoVATransformer(preset_config("tiny", **overrides))
    # The head is zero-initialised (velocity 0 everywhere); randomise to get a real field.
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return model


def texts():
    g = torch.Generator().manual_seed(1)
    pos, neg_v, neg_a = (torch.randn(1, n, TEXT_DIM, generator=g) for n in (5, 3, 4))
    return pos, neg_v, neg_a


def noise(shape, seed, skip=()):
    """The sampler's noise: one CPU generator, draws in order (video, then audio)."""
    g = torch.Generator().manual_seed(seed)
    for s in skip:
        torch.randn(s, generator=g)
    return torch.randn(shape, generator=g)


# -- schedule ---------------------------------------------------------------------------


def test_shift_and_noising_match_diffusers():
    base = np.linspace(1.0, 0.0, 9)[:-1]
    euler = FlowMatchEulerDiscreteScheduler(shift=5.0)
    euler.set_timesteps(sigmas=base)
    torch.testing.assert_close(sampling_sigmas(8, 5.0).float(), euler.sigmas[:-1], rtol=0, atol=1e-7)
    assert shift_sigma(0.5, 3.0) == pytest.approx(0.75)

    x0, n = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    sigma = torch.tensor([0.25, 0.8])
    x_t = add_noise(x0, n, sigma)
    unshifted = FlowMatchEulerDiscreteScheduler(shift=1.0)
    for b in range(2):  # diffusers' forward process, one sample at a time
        unshifted.set_timesteps(sigmas=[float(sigma[b])])
        expected = unshifted.scale_noise(x0[b : b + 1], unshifted.timesteps[:1], n[b : b + 1])
        torch.testing.assert_close(x_t[b : b + 1], expected)
    torch.testing.assert_close(predicted_x0(x_t, velocity_target(x0, n), sigma), x0, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="sigma must be"):
        add_noise(x0, n, torch.ones(3))


# -- solvers ----------------------------------------------------------------------------


def nonlinear_audio_field(**inputs):
    x, t = inputs["audio"], inputs["t_audio"]
    return None, torch.tanh(1.5 * x) * (0.5 + t / 1000) + 0.1 * x.flip(-1)


@pytest.mark.parametrize("name", ["euler", "unipc"])
def test_solver_matches_a_plain_diffusers_loop(name):
    steps, shift, seed = 7, 3.0, 11
    model = Recorder(nonlinear_audio_field)
    _, ours = sample(model, text=texts()[0], mode="t2a", audio_shape=AUDIO, steps=steps, sampler=name,
                     shift=shift, cfg_audio=1.0, seed=seed)

    # The oracle: diffusers does its own shift; a Wan-pipeline-style loop.
    if name == "euler":
        ref = FlowMatchEulerDiscreteScheduler(shift=shift)
    else:
        ref = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift)
    ref.set_timesteps(sigmas=np.linspace(1.0, 0.0, steps + 1)[:-1])
    x = noise(AUDIO, seed)
    for i, t in enumerate(ref.timesteps):
        sigma = float(ref.sigmas[i])
        torch.testing.assert_close(model.calls[i]["t_audio"], torch.tensor(1000 * sigma))
        _, v = nonlinear_audio_field(audio=x, t_audio=torch.tensor(1000 * sigma))
        x = ref.step(v, t, x).prev_sample
    torch.testing.assert_close(ours, x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["euler", "unipc"])
def test_solver_reaches_the_endpoint_of_a_straight_flow(name):
    target = torch.randn(VIDEO, generator=torch.Generator().manual_seed(5))

    def straight_to_target(video, t_video, **_):
        return (video - target) / (t_video / 1000), None  # noise - x0 on the straight path

    video, audio = sample(Recorder(straight_to_target), text=texts()[0], mode="t2v", video_shape=VIDEO,
                          steps=5, sampler=name, cfg_video=1.0)
    assert audio is None
    torch.testing.assert_close(video, target, rtol=0, atol=1e-5)


# -- the real model ---------------------------------------------------------------------


def test_seed_reproducible_on_cpu_and_seeds_differ():
    model = random_tiny()
    pos, neg_v, neg_a = texts()
    run = lambda seed, sampler: sample(  # noqa: E731
        model, text=pos, negative_video=neg_v, negative_audio=neg_a, video_shape=VIDEO, audio_shape=AUDIO,
        steps=3, sampler=sampler, seed=seed,
    )
    for sampler in ("euler", "unipc"):
        v1, a1 = run(7, sampler)
        v2, a2 = run(7, sampler)
        assert torch.equal(v1, v2) and torch.equal(a1, a2)
        v3, a3 = run(8, sampler)
        assert (v1 - v3).abs().max() > 1e-2 and (a1 - a3).abs().max() > 1e-2
        assert torch.isfinite(v1).all() and torch.isfinite(a1).all()


def test_single_modality_modes_leave_the_other_out():
    model = Recorder(random_tiny())
    video, audio = sample(model, text=texts()[0], mode="t2v", video_shape=VIDEO, steps=2, cfg_video=1.0)
    assert audio is None and video.shape == VIDEO
    assert all(c["audio"] is None for c in model.calls)
    model.calls.clear()
    video, audio = sample(model, text=texts()[0], mode="t2a", audio_shape=AUDIO, steps=2, cfg_audio=1.0)
    assert video is None and audio.shape == AUDIO
    assert all(c["video"] is None for c in model.calls)


# -- guidance ---------------------------------------------------------------------------


def text_driven(video, audio, text, text_audio=None, **_):
    """Velocities that reveal which text each branch read (text_audio defaults to text)."""
    text_audio = text if text_audio is None else text_audio
    return (
        None if video is None else torch.full_like(video, float(text.mean())) + 0.5 * video,
        None if audio is None else torch.full_like(audio, float(text_audio.mean())) - 0.25 * audio,
    )


def test_cfg_combines_per_modality_with_separate_negatives():
    pos, neg_v, neg_a = texts()
    model = Recorder(text_driven)
    video, audio = sample(model, text=pos, negative_video=neg_v, negative_audio=neg_a, video_shape=VIDEO,
                          audio_shape=AUDIO, steps=1, sampler="euler", cfg_video=3.0, cfg_audio=2.0, seed=4)
    assert len(model.calls) == 2
    cond, uncond = model.calls
    assert torch.equal(cond["text"], pos) and cond["text_audio"] is None
    assert torch.equal(uncond["text"], neg_v) and torch.equal(uncond["text_audio"], neg_a)

    # By hand: one Euler step from sigma 1 to 0 is x - v.
    nv, na = noise(VIDEO, 4), noise(AUDIO, 4, skip=[VIDEO])
    v_c, a_c = text_driven(nv, na, pos)
    v_u, a_u = text_driven(nv, na, neg_v, neg_a)
    torch.testing.assert_close(video, nv - (v_u + 3.0 * (v_c - v_u)))
    torch.testing.assert_close(audio, na - (a_u + 2.0 * (a_c - a_u)))


def test_unconditional_pass_only_when_a_generated_modality_is_guided():
    pos, neg_v, _ = texts()
    model = Recorder(text_driven)
    sample(model, text=pos, video_shape=VIDEO, audio_shape=AUDIO, steps=3, cfg_video=1.0, cfg_audio=1.0)
    assert len(model.calls) == 3
    model.calls.clear()
    # Audio is given in a2v, so its cfg does not matter.
    sample(model, text=pos, mode="a2v", video_shape=VIDEO, audio_latents=torch.randn(AUDIO), steps=3,
           cfg_video=1.0, cfg_audio=4.0)
    assert len(model.calls) == 3
    model.calls.clear()
    # One negative serves both branches.
    sample(model, text=pos, negative_video=neg_v, video_shape=VIDEO, audio_shape=AUDIO, steps=2, cfg_video=1.0,
           cfg_audio=2.0)
    assert len(model.calls) == 4 and torch.equal(model.calls[1]["text_audio"], neg_v)
    with pytest.raises(ValueError, match="negative"):
        sample(model, text=pos, video_shape=VIDEO, audio_shape=AUDIO, steps=2)


@pytest.mark.parametrize("text_attention", ["joint", "cross"])
def test_batched_guidance_is_one_forward_equal_to_two_passes(text_attention):
    model = random_tiny(text_attention=text_attention, dual_stream_layers=0 if text_attention == "cross" else 1)
    g = torch.Generator().manual_seed(3)
    # Joint text batches prompts of one length; cross-attention text also pads a shorter one.
    lengths = (5, 5, 5) if text_attention == "joint" else (5, 3, 4)
    pos, neg_v, neg_a = (torch.randn(1, n, TEXT_DIM, generator=g) for n in lengths)
    video_shape, audio_shape = (2, *VIDEO[1:]), (2, *AUDIO[1:])
    outputs = {}
    for batched in (True, False):
        recorder = Recorder(model)
        outputs[batched] = sample(recorder, text=pos, negative_video=neg_v, negative_audio=neg_a, video_shape=video_shape,
                                  audio_shape=audio_shape, steps=3, sampler="unipc", cfg_video=3.0, cfg_audio=2.0,
                                  seed=5, batch_guidance=batched)
        assert len(recorder.calls) == (3 if batched else 6)
        assert recorder.calls[0]["video"].shape[0] == (4 if batched else 2)
    for got, want in zip(outputs[True], outputs[False]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_batched_guidance_falls_back_to_two_passes():
    pos, neg_v, neg_a = texts()  # joint text of different lengths: not stackable
    model = random_tiny()
    recorder = Recorder(model)
    sample(recorder, text=pos, negative_video=neg_v, negative_audio=neg_a, video_shape=VIDEO, audio_shape=AUDIO,
           steps=2, cfg_video=3.0)
    assert len(recorder.calls) == 4

    def small_memory(**inputs):
        if inputs["video"].shape[0] > VIDEO[0]:
            raise torch.OutOfMemoryError("doubled batch")
        return model(**inputs)

    neg = torch.randn(pos.shape)
    recorder = Recorder(small_memory)
    got = sample(recorder, text=pos, negative_video=neg, video_shape=VIDEO, audio_shape=AUDIO, steps=3, cfg_video=3.0, seed=2)
    want = sample(model, text=pos, negative_video=neg, video_shape=VIDEO, audio_shape=AUDIO, steps=3, cfg_video=3.0, seed=2,
                  batch_guidance=False)
    assert [c["video"].shape[0] for c in recorder.calls] == [2, 1, 1, 1, 1, 1, 1]  # tried once, then two passes
    assert all(torch.equal(a, b) for a, b in zip(got, want))


# -- modes ------------------------------------------------------------------------------


def test_a2v_holds_the_audio_clean_and_v2a_the_video():
    pos, neg_v, neg_a = texts()
    given_audio = torch.randn(AUDIO)
    model = Recorder(random_tiny())
    video, audio = sample(model, text=pos, negative_video=neg_v, negative_audio=neg_a, mode="a2v",
                          video_shape=VIDEO, audio_latents=given_audio, steps=3)
    assert torch.equal(audio, given_audio) and video.shape == VIDEO
    assert len(model.calls) == 6
    for call in model.calls:
        assert torch.equal(call["audio"], given_audio) and float(call["t_audio"]) == 0.0
        assert float(call["t_video"]) > 0

    given_video = torch.randn(VIDEO)
    model.calls.clear()
    video, audio = sample(model, text=pos, negative_video=neg_v, mode="v2a", audio_shape=AUDIO,
                          video_latents=given_video, steps=2)
    assert torch.equal(video, given_video) and audio.shape == AUDIO
    assert all(torch.equal(c["video"], given_video) and float(c["t_video"]) == 0.0 for c in model.calls)


def test_i2va_with_condition_channels_feeds_first_frame_and_mask():
    pos, neg_v, _ = texts()
    first = torch.randn(1, 16, 1, 4, 4)
    model = Recorder(random_tiny(video_condition_channels=20))
    video, audio = sample(model, text=pos, negative_video=neg_v, mode="i2va", video_shape=VIDEO,
                          audio_shape=AUDIO, reference=first, steps=2)
    assert video.shape == VIDEO and audio.shape == AUDIO
    assert len(model.calls) == 4
    for call in model.calls:  # cond and uncond passes alike
        ref = call["reference"]
        assert ref.shape == (1, 20, 2, 4, 4)
        assert torch.equal(ref[:, :16, :1], first) and not ref[:, :16, 1:].any()
        assert torch.equal(ref[:, 16:, :1], torch.ones(1, 4, 1, 4, 4)) and not ref[:, 16:, 1:].any()


def test_reference_on_every_frame_when_the_model_was_trained_so():
    pos, neg_v, _ = texts()
    first = torch.randn(1, 16, 1, 4, 4)
    model = Recorder(random_tiny(video_condition_channels=20, reference_frames="every"))
    sample(model, text=pos, negative_video=neg_v, mode="a2v", video_shape=VIDEO, audio_latents=torch.randn(AUDIO),
           reference=first, steps=1)
    ref = model.calls[0]["reference"]
    assert torch.equal(ref[:, :16], first.expand(-1, -1, 2, -1, -1))
    assert torch.equal(ref[:, 16:, :1], torch.ones(1, 4, 1, 4, 4)) and not ref[:, 16:, 1:].any()
    with pytest.raises(ValueError, match="reference_frames"):
        random_tiny(video_condition_channels=20, reference_frames="last")


def test_i2va_without_condition_channels_holds_the_first_frame():
    pos, neg_v, _ = texts()
    first = torch.randn(1, 16, 4, 4)  # the 4D form is accepted too
    model = Recorder(random_tiny())
    video, _ = sample(model, text=pos, negative_video=neg_v, mode="i2va", video_shape=VIDEO, audio_shape=AUDIO,
                      reference=first, steps=3, sampler="unipc", seed=2)
    assert torch.equal(video[:, :, 0], first)
    frame0_noise = noise(VIDEO, 2)[:, :, :1]
    for call in model.calls:
        assert call["reference"] is None
        sigma = float(call["t_video"]) / 1000
        torch.testing.assert_close(call["video"][:, :, :1], (1 - sigma) * first[:, :, None] + sigma * frame0_noise)


def test_callback_reports_each_step_and_raising_interrupts():
    pos = texts()[0]
    model = Recorder(text_driven)
    seen = []
    sample(model, text=pos, video_shape=VIDEO, audio_shape=AUDIO, steps=4, cfg_video=1, cfg_audio=1,
           callback=lambda info: seen.append((info.step, info.total, info.sigma, info.video_x0.shape,
                                              info.audio.shape)))
    assert [s[:2] for s in seen] == [(i, 4) for i in range(4)]
    assert seen[0][2] > seen[-1][2] > 0 and seen[0][3] == VIDEO and seen[0][4] == AUDIO

    class Stop(Exception):
        pass

    def stop_at_two(info):
        if info.step == 1:
            raise Stop

    model.calls.clear()
    with pytest.raises(Stop):
        sample(model, text=pos, video_shape=VIDEO, audio_shape=AUDIO, steps=10, cfg_video=1, cfg_audio=1,
               callback=stop_at_two)
    assert len(model.calls) == 2


def test_bad_inputs_say_what_to_do():
    pos = texts()[0]
    model = Recorder(text_driven)
    cases = [
        (dict(mode="t2va", video_shape=VIDEO, audio_shape=AUDIO, reference=torch.zeros(1, 16, 4, 4)), "i2va"),
        (dict(mode="a2v", video_shape=VIDEO), "audio_latents"),
        (dict(mode="i2va", video_shape=VIDEO, audio_shape=AUDIO), "reference"),
        (dict(mode="t2v", video_shape=VIDEO, audio_shape=AUDIO), "no audio"),
        (dict(mode="t2va", video_shape=VIDEO), "audio_shape"),
        (dict(mode="x2y", video_shape=VIDEO), "unknown mode"),
        (dict(mode="t2v", video_shape=VIDEO, sampler="dpm"), "unknown sampler"),
        (dict(mode="i2v", video_shape=VIDEO, reference=torch.zeros(1, 16, 1, 8, 8)), "reference must be"),
        (dict(mode="t2va", video_shape=VIDEO, audio_shape=(2, 20, 8)), "batch"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            sample(model, text=pos, cfg_video=1, cfg_audio=1, steps=1, **kwargs)
