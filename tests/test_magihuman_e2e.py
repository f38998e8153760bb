"""daVinci-MagiHuman run through the pack's sampler and nodes, on tiny random weights in the
released layouts: a sharded DiT (safetensors shards + model.safetensors.index.json), the
Stable Audio Open VAE (stable-audio-tools layout) and the Wan2.2 VAE -> Model Loader ->
Empty Latent -> T5Gemma Text Encoder (a tiny random T5Gemma in google/t5gemma-9b-9b-ul2's
folder layout, tests/test_text_t5gemma.py) -> Text Encode -> Sampler (MagiHuman's own settings) -> Decode -> Mux ->
an MP4 with a STEREO 44.1 kHz track as long as the clip.

Also the hosted-model interface (jova_core.model.hosted) as the sampler uses it: its video
guidance schedule (5, then 2 at t <= 500) against a restatement of the Euler sum, image
conditioning as a CLEAN first latent frame, a2v with the audio held, the modes it refuses,
block swap over `block.layers` and fp8 storage through the loader.
"""

from __future__ import annotations

import json
import math
import shutil
import sys

import pytest
import torch
from comfy_stubs import harness
from safetensors.torch import save_file
from test_codecs_stable_audio import sat_state_dict, tiny_reference
from test_codecs_wan22 import tiny_wan22
from test_magihuman import released_state_dict, tiny_model
from test_text_t5gemma import folder  # noqa: F401  (fixture)

from jova_core.defaults import GuidanceSchedule
from jova_core.io.ffmpeg import probe_media
from jova_core.io.read import read_audio
from jova_core.model.hosted import HostedModel
from jova_core.model.magihuman import MAGIHUMAN_DEFAULTS, MagiHumanConfig
from jova_core.offload import BlockSwap
from jova_core.sampling import sample, sampling_sigmas
from jova_core.sampling.schedule import integer_timestep

# Wan2.2 (48 channels) and Stable Audio Open (64) latents, the tiny T5Gemma's text width (32).
TINY = MagiHumanConfig(
    hidden_size=64, num_layers=4, head_dim=16, num_kv_heads=2, mm_layers=(0, 3), gelu7_layers=(0, 1),
    video_latent_channels=48, audio_in_channels=64, text_dim=32,
)
# 9 frames at MagiHuman's 25 fps (0.36 s), 64 x 64 pixels: 3 x 4 x 4 video latents, 9 audio tokens.
WIDTH = HEIGHT = 64
FPS, FRAMES = 25.0, 9
SECONDS = FRAMES / FPS
STEPS = 4  # MagiHuman uses 32; a few show the same path on a CPU


def test_magihuman_is_a_hosted_model_with_its_own_settings():
    model = tiny_model(TINY)
    hosting = model.hosting
    assert isinstance(model, HostedModel) and hosting.timesteps == "none" and hosting.reference == "clean-first-frame"
    assert hosting.modes == ("t2va", "i2va", "a2v") and not hosting.separate_audio_text
    assert hosting.geometry.pixel_multiple == 32 and hosting.geometry.video.channels == 48
    assert model.swappable_blocks() is model.block.layers
    d = MAGIHUMAN_DEFAULTS
    assert (d.steps, d.sampler, d.shift, d.fps, d.cfg_video, d.cfg_audio) == (32, "unipc", 5.0, 25.0, 5.0, 5.0)
    # 4 s at 448 x 256: 101 frames -> 26 x 16 x 28 latents and 101 audio tokens (the facts' example).
    assert hosting.geometry.video.latent_shape(d.frames, d.height, d.width) == (48, 26, 16, 28)
    assert d.audio_latent_frames(d.seconds, hosting.geometry.audio.latent_rate) == 101
    schedule = d.video_guidance()
    # Compared against the truncated integer timestep: 1000 sigma = 500.5 is t = 500 -> the late scale.
    assert [schedule.at(integer_timestep(s)) for s in (0.999, 0.5012, 0.5005, 0.5, 0.01)] == [5.0, 5.0, 2.0, 2.0, 2.0]


def test_schedule_starts_where_upstreams_does_and_jovas_is_unchanged():
    # Restated from the facts: sigmas = shift(linspace(0.999, 0, N + 1)[:-1]), shift(s) = 5s / (1 + 4s);
    # timesteps int(1000 sigma). First sigma 0.9998.
    d = MAGIHUMAN_DEFAULTS
    restated = [5 * s / (1 + 4 * s) for s in (0.999 * (1 - i / 32) for i in range(32))]
    ours = sampling_sigmas(d.steps, d.shift, d.sigma_max)
    assert ours.tolist() == pytest.approx(restated, abs=1e-12) and round(ours[0].item(), 4) == 0.9998
    assert [integer_timestep(s) for s in ours[:3].tolist()] == [int(1000 * s) for s in restated[:3]]
    # JoVA's own schedule still starts at pure noise.
    assert sampling_sigmas(8, 5.0)[0].item() == 1.0
    # What the sampler actually steps (UniPC and renoise), seen through its callback.
    for sampler in ("unipc", "renoise"):
        seen = []
        sample(Field(), text=torch.ones(1, 3, 32), mode="t2va", video_shape=(1, 48, 1, 2, 2), audio_shape=(1, 64, 3),
               steps=8, sampler=sampler, shift=5.0, sigma_max=d.sigma_max, cfg_video=1, cfg_audio=1,
               callback=lambda info: seen.append(info.sigma))
        assert seen == pytest.approx(sampling_sigmas(8, 5.0, 0.999).tolist(), abs=1e-6)


class Field(torch.nn.Module):
    """A stand-in hosted model (MagiHuman's hosting): velocity 1 for the prompt, 0 for the
    negative (told apart by the text's sign), recording the video it is shown."""

    def __init__(self):
        super().__init__()
        self.hosting = tiny_model(TINY).hosting
        self.seen = []

    def forward(self, video, audio, text, **ignored):
        self.seen.append(None if video is None else video.clone())
        self.heard = getattr(self, "heard", []) + [None if audio is None else audio.clone()]
        value = (text[:, :1, :1] > 0).float()  # [B, 1, 1]
        return (None if video is None else torch.ones_like(video) * value[..., None, None],
                None if audio is None else torch.ones_like(audio) * value)


def test_video_guidance_schedule_against_the_euler_sum():
    model = Field()
    text, negative = torch.ones(1, 3, 32), -torch.ones(1, 3, 32)
    video, audio = sample(model, text=text, negative_video=negative, mode="t2va", video_shape=(1, 48, 1, 2, 2),
                          audio_shape=(1, 64, 3), steps=6, sampler="euler", shift=5.0,
                          cfg_video=GuidanceSchedule(5.0, 2.0, 500.0), cfg_audio=3.0, seed=1)
    sigmas = sampling_sigmas(6, 5.0).tolist() + [0.0]
    # Euler: x_end = noise + sum (sigma_{i+1} - sigma_i) * guided velocity; guided = scale * (1 - 0).
    video_drift = sum((b - a) * (5.0 if int(1000 * a) > 500 else 2.0) for a, b in zip(sigmas, sigmas[1:]))
    audio_drift = sum((b - a) * 3.0 for a, b in zip(sigmas, sigmas[1:]))
    noise_video, noise_audio = model.seen[0][:1], model.heard[0][:1]  # the first call sees the initial noise
    assert {1000 * s > 500 for s in sigmas[:-1]} == {True, False}  # both scales are used
    torch.testing.assert_close(video, noise_video + video_drift, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(audio, noise_audio + audio_drift, rtol=1e-5, atol=1e-5)
    assert abs(video_drift - audio_drift * 5 / 3) > 0.1  # the schedule made a difference


def test_reference_image_is_a_clean_first_frame_and_a2v_holds_the_audio():
    model = Field()
    text, negative = torch.ones(1, 3, 32), -torch.ones(1, 3, 32)
    reference = torch.randn(1, 48, 1, 2, 2)
    video, _ = sample(model, text=text, negative_video=negative, mode="i2va", video_shape=(1, 48, 3, 2, 2),
                      audio_shape=(1, 64, 9), reference=reference, steps=3, seed=2)
    assert all(torch.equal(seen[:, :, :1], reference.expand(len(seen), -1, -1, -1, -1))
               for seen in model.seen)  # clean before every call
    assert torch.equal(video[:, :, :1], reference) and not torch.equal(video[:, :, 1:2], model.seen[0][:1, :, 1:2])
    given = torch.randn(1, 64, 9)
    _, audio = sample(Field(), text=text, negative_video=negative, mode="a2v", video_shape=(1, 48, 3, 2, 2),
                      audio_latents=given, steps=2, seed=3)
    assert torch.equal(audio, given)


def test_modes_and_texts_it_does_not_take_are_refused_in_one_line():
    model, text = Field(), torch.ones(1, 3, 32)
    for mode in ("t2v", "v2a", "t2a"):
        with pytest.raises(ValueError, match=f"runs modes.*not '{mode}'.*video and sound together") as info:
            sample(model, text=text, mode=mode, video_shape=(1, 48, 1, 2, 2), audio_shape=(1, 64, 3),
                   cfg_video=1, cfg_audio=1)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="one text for video and audio"):
        sample(model, text=text, negative_video=-text, negative_audio=-2 * text, mode="t2va",
               video_shape=(1, 48, 1, 2, 2), audio_shape=(1, 64, 3))
    with pytest.raises(ValueError, match="Wan2.2 VAE"):  # 16-channel (Wan2.1) latents
        sample(model, text=text, mode="t2va", video_shape=(1, 16, 1, 2, 2), audio_shape=(1, 64, 3),
               cfg_video=1, cfg_audio=1)


def test_block_swap_moves_magihuman_layers_and_changes_nothing():
    model = tiny_model(TINY).eval()
    torch.manual_seed(7)
    video, audio, text = torch.randn(1, 48, 2, 2, 2), torch.randn(1, 64, 5), torch.randn(1, 3, 32)
    with torch.no_grad():
        before = model(video, audio, text)
        swap = BlockSwap(model, 1, "cpu", "cpu")
        assert swap.blocks == list(model.block.layers)
        swap.attach()
        assert all(layer._forward_pre_hooks for layer in model.block.layers[1:]) and not model.block.layers[0]._forward_pre_hooks
        after = model(video, audio, text)
        swap.detach()
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert not any(layer._forward_pre_hooks for layer in model.block.layers)


# ---------------------------------------------------------------- through the nodes


@pytest.fixture(scope="module")
def env(tmp_path_factory, folder):  # noqa: F811  (the T5Gemma fixture)
    """models/ as a user fills it from the releases: GAIR/daVinci-MagiHuman base/ (two shards +
    index) in models/jova, stable-audio-open-1.0's model.safetensors in models/jova_audio, the
    Wan2.2 VAE in models/vae; all tiny and random in the real key layouts."""
    base = tmp_path_factory.mktemp("comfyui")
    root = base / "models"
    for sub in ("jova/magihuman_base", "jova_audio", "vae"):
        (root / sub).mkdir(parents=True)
    state = released_state_dict(tiny_model(TINY))
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    for name, names in shards.items():
        save_file({k: state[k].contiguous() for k in names}, str(root / "jova" / "magihuman_base" / name))
    index = {"metadata": {}, "weight_map": {k: name for name, names in shards.items() for k in names}}
    (root / "jova" / "magihuman_base" / "model.safetensors.index.json").write_text(json.dumps(index))
    save_file(sat_state_dict(tiny_reference()), str(root / "jova_audio" / "stable_audio_open.safetensors"))
    save_file(tiny_wan22()[0], str(root / "vae" / "wan2.2_vae.safetensors"))
    shutil.copytree(folder, root / "text_encoders" / "t5gemma-9b-9b-ul2")
    with harness.comfy_stubs(base) as stubs:
        stubs.pack = harness.load_pack()
        harness.node_list(stubs.pack)
        stubs.n = sys.modules[harness.PACK_NAME + ".nodes"]
        stubs.state = state
        yield stubs


def check_mp4(path):
    info = probe_media(str(path))
    (video,), (audio,) = info.of_kind("video"), info.of_kind("audio")
    assert (video.width, video.height, video.fps) == (WIDTH, HEIGHT, FPS)
    assert audio.codec == "aac" and audio.sample_rate == 44_100
    waveform, rate = read_audio(str(path))
    assert waveform.shape[0] == 2  # stereo
    assert abs(waveform.shape[-1] - round(SECONDS * rate)) <= 1024  # AAC frames of 1024 samples
    assert waveform.abs().max() > 1e-4


@pytest.mark.parametrize("weight_dtype, offload", [("fp32", "whole model"), ("fp8_e4m3fn", "block swap")])
def test_end_to_end_through_the_nodes(env, weight_dtype, offload):
    run, n = harness.run_node, env.n
    listed = n.paths.list_files(n.paths.MODEL_FOLDERS)
    assert "magihuman_base/model-00002-of-00002.safetensors" in listed  # any shard stands for the release
    model = run(n.JoVAModelLoader, model_name="magihuman_base/model-00002-of-00002.safetensors",
                weight_dtype=weight_dtype, attention="sdpa", offload=offload, blocks_on_gpu=1)[0]
    assert model.source.endswith("model.safetensors.index.json") and model.defaults.to_json() == MAGIHUMAN_DEFAULTS.to_json()
    assert type(model.transformer).__name__ == "MagiHumanTransformer" and repr(model.transformer.config) == repr(TINY)
    if weight_dtype == "fp32":
        assert all(torch.equal(model.transformer.state_dict()[k].float(), v.float()) for k, v in env.state.items())
    else:
        assert model.transformer.block.layers[1].mlp.down_proj.weight.dtype == torch.float8_e4m3fn
        # Upstream's recipe: only block linears go low precision; embedders, norms, heads stay fp32.
        low = {k for k, v in model.transformer.state_dict().items() if v.dtype != torch.float32}
        assert low == {k for k in env.state if k.startswith("block.") and "norm" not in k}
    width, height, seconds, fps, steps, shift, cfg_video, cfg_audio, negative_prompt, info = run(
        n.JoVAModelDefaults, model=model).args
    assert (width, height, fps, steps, shift, cfg_video) == (448, 256, 25.0, 32, 5.0, 5.0) and "then 2" in info
    latent = run(n.JoVAEmptyLatent, model=model, width=WIDTH, height=HEIGHT, seconds=SECONDS, fps=fps, batch_size=1)[0]
    assert tuple(latent["samples"].shape) == (1, 48, 3, 4, 4) and tuple(latent["jova_audio"].shape) == (1, 64, 9)
    encoder = run(n.JoVAT5GemmaLoader, folder="t5gemma-9b-9b-ul2")[0]
    positive, prompt = run(n.JoVATextEncode, text_encoder=encoder, video_caption="w1 w2 w3 w4",
                           audio_caption="w5 w6", transcript="w7 w8 w9").args
    negative, negative_text = run(n.JoVATextEncode, text_encoder=encoder, video_caption=negative_prompt,
                                  audio_caption="", transcript="").args
    # MagiHuman's inference feeds T5Gemma plain text (no JoVA section tags); the negative as it is.
    assert prompt == 'w1 w2 w3 w4 w5 w6 "w7 w8 w9"' and negative_text == negative_prompt
    assert torch.equal(positive[0][0][0], encoder.encode_with_length(prompt)[0])
    # T5Gemma's states come padded to 640 rows with the real token count; MagiHuman reads only those rows.
    length = positive[0][1][n.text.TEXT_LENGTH_KEY]
    assert positive[0][0].shape == (1, 640, 32) and 9 < length < 640 and not positive[0][0][0, length:].any()
    trimmed = n.sampler.conditioning_tensor(positive, "positive", model.hosting.trims_text)
    assert model.hosting.trims_text and torch.equal(trimmed, positive[0][0][:, :length])
    sampled = run(n.JoVASampler, model=model, positive=positive, negative=negative, latent=latent, seed=42,
                  steps=STEPS, sampler="unipc", shift=shift, cfg_video=cfg_video, cfg_audio=cfg_audio, mode="t2va")[0]
    assert torch.isfinite(sampled["samples"]).all() and sampled["jova_audio"].abs().sum() > 0
    audio_codec = run(n.JoVAAudioCodecLoader, vae_name="stable_audio_open.safetensors",
                      vocoder_name=n.loaders.NO_VOCODER)[0]
    video_codec = run(n.JoVAVideoCodecLoader, codec_name="wan2.2_vae.safetensors")[0]
    images, audio, out_fps = run(n.JoVADecode, latent=sampled, audio_codec=audio_codec, video_codec=video_codec,
                                 tiled=False).args
    assert images.shape == (FRAMES, HEIGHT, WIDTH, 3) and audio["waveform"].shape == (1, 2, round(SECONDS * 44_100))
    prefix = f"JoVA/magihuman_{weight_dtype}"
    out = run(n.JoVAMux, images=images, fps=out_fps, audio=audio, save_mp4=True, filename_prefix=prefix)
    check_mp4(env.base_dir / "output" / "JoVA" / out.ui.values[0]["filename"])


def test_distilled_settings_and_the_renoise_step_against_a_restatement(tmp_path):
    from jova_core.checkpoint import generation_defaults
    from jova_core.model.magihuman import MAGIHUMAN_DISTILL_DEFAULTS

    d = MAGIHUMAN_DISTILL_DEFAULTS
    assert (d.steps, d.sampler, d.cfg_video, d.cfg_audio, d.cfg_video_late) == (8, "renoise", 1.0, 1.0, None)
    # The facts' distill sigmas (3 decimals, the first 4): the same schedule from 0.999 at 8 steps.
    expected = [0.9998, 0.972, 0.937, 0.893, 0.833, 0.750, 0.625, 0.416]
    assert sampling_sigmas(8, d.shift, d.sigma_max).tolist() == pytest.approx(expected, abs=5e-4)
    for release, wanted in (("distill", d), ("base", MAGIHUMAN_DEFAULTS)):
        (tmp_path / release).mkdir()
        save_file({k: v.contiguous() for k, v in released_state_dict(tiny_model(TINY)).items()},
                  str(tmp_path / release / "model.safetensors"))
        assert generation_defaults(str(tmp_path / release)) == wanted

    # x0 = x - sigma v, then x_next = (1 - sigma_next) x0 + sigma_next * fresh noise, noise from the seed.
    model = Field()
    text = torch.ones(1, 3, 32)
    video, audio = sample(model, text=text, mode="t2va", video_shape=(1, 48, 1, 2, 2), audio_shape=(1, 64, 3),
                          steps=3, sampler="renoise", shift=5.0, cfg_video=1, cfg_audio=1, seed=5)
    generator = torch.Generator().manual_seed(5)
    x_video, x_audio = torch.randn(1, 48, 1, 2, 2, generator=generator), torch.randn(1, 64, 3, generator=generator)
    sigmas = sampling_sigmas(3, 5.0).tolist() + [0.0]
    for i, (sigma, after) in enumerate(zip(sigmas, sigmas[1:])):
        torch.testing.assert_close(model.seen[i], x_video)
        x0_video, x0_audio = x_video - sigma, x_audio - sigma  # velocity 1 everywhere
        if after == 0:
            x_video, x_audio = x0_video, x0_audio
        else:
            x_video = (1 - after) * x0_video + after * torch.randn(x_video.shape, generator=generator)
            x_audio = (1 - after) * x0_audio + after * torch.randn(x_audio.shape, generator=generator)
    torch.testing.assert_close(video, x_video)
    torch.testing.assert_close(audio, x_audio)


class Curved(torch.nn.Module):
    """A stand-in hosted model (MagiHuman's hosting) whose velocity bends with the latents,
    so a multistep solver's history and corrector change the result."""

    def __init__(self):
        super().__init__()
        self.hosting = tiny_model(TINY).hosting

    @staticmethod
    def velocity(x):
        return 0.3 * x + torch.sin(2 * x) - 0.5

    def forward(self, video, audio, **ignored):
        return self.velocity(video), self.velocity(audio)


def unipc_bh2_restated(x, sigmas, velocity):
    """UniPC (Zhao et al. 2023) as daVinci-MagiHuman's FlowUniPCMultistepScheduler runs it, written
    from the maths: x0-prediction m = x - sigma v, alpha = 1 - sigma, lambda = log(alpha / sigma),
    B(h) = e^-h - 1 ("bh2"), order 2 with order 1 on the first and the last step, and the UniC
    corrector (order of the step it corrects) applied before every step but the first."""
    lam = lambda s: math.log((1 - s) / s)  # noqa: E731
    m = [None] * len(sigmas)  # the x0 predictions at each sigma
    last, order_last = None, None
    steps = len(sigmas) - 1
    for i in range(steps):
        s0 = sigmas[i]
        m[i] = x - s0 * velocity(x)
        if i > 0:  # UniC: redo the step i-1 -> i with the new model output m[i]
            sp, sc = sigmas[i - 1], s0
            h = lam(sc) - lam(sp)
            phi1 = math.expm1(-h)
            if order_last == 1:
                rhos = [0.5]
                corr = 0
            else:  # order 2: solve [[1, 1], [r, 1]] rho = [b1, b2], r = (lambda_{i-2} - lambda_{i-1}) / h
                r = (lam(sigmas[i - 2]) - lam(sp)) / h
                phik = phi1 / -h - 1
                b1 = phik / phi1
                b2 = (phik / -h - 0.5) * 2 / phi1
                rho1 = (b1 - b2) / (1 - r)
                rhos = [rho1, b1 - rho1]
                corr = rhos[0] * (m[i - 2] - m[i - 1]) / r
            x = sc / sp * last - (1 - sc) * phi1 * m[i - 1] - (1 - sc) * phi1 * (corr + rhos[-1] * (m[i] - m[i - 1]))
        order = min(2, steps - i, i + 1)
        last = x
        s1 = sigmas[i + 1]
        if s1 == 0:
            x = m[i]  # alpha = 1, sigma = 0: the step lands on the clean prediction
        else:
            h = lam(s1) - lam(s0)
            phi1 = math.expm1(-h)
            x_new = s1 / s0 * x - (1 - s1) * phi1 * m[i]
            if order == 2:
                r = (lam(sigmas[i - 1]) - lam(s0)) / h
                x_new = x_new - (1 - s1) * phi1 * 0.5 * (m[i - 1] - m[i]) / r
            x = x_new
        order_last = order
    return x


def test_unipc_is_upstreams_bh2_order_2_x0_solver_on_its_schedule():
    d = MAGIHUMAN_DEFAULTS
    steps = 7
    video, audio = sample(Curved(), text=torch.ones(1, 3, 32), mode="t2va", video_shape=(1, 48, 1, 2, 2),
                          audio_shape=(1, 64, 3), steps=steps, sampler=d.sampler, shift=d.shift, sigma_max=d.sigma_max,
                          cfg_video=1, cfg_audio=1, seed=3)
    generator = torch.Generator().manual_seed(3)
    noise_video = torch.randn(1, 48, 1, 2, 2, generator=generator).double()
    noise_audio = torch.randn(1, 64, 3, generator=generator).double()
    sigmas = sampling_sigmas(steps, d.shift, d.sigma_max).tolist() + [0.0]
    want_video = unipc_bh2_restated(noise_video, sigmas, Curved.velocity)
    want_audio = unipc_bh2_restated(noise_audio, sigmas, Curved.velocity)
    torch.testing.assert_close(video.double(), want_video, rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(audio.double(), want_audio, rtol=2e-5, atol=2e-5)
    # Not Euler / first order: the restatement tells the solvers apart.
    euler = sample(Curved(), text=torch.ones(1, 3, 32), mode="t2va", video_shape=(1, 48, 1, 2, 2),
                   audio_shape=(1, 64, 3), steps=steps, sampler="euler", shift=d.shift, sigma_max=d.sigma_max,
                   cfg_video=1, cfg_audio=1, seed=3)[0]
    assert (euler.double() - want_video).abs().max() > 1e-2


@pytest.mark.parametrize("where", ["540p_sr/model.safetensors", "1080p_sr/model.safetensors", "1080p_sr"])
def test_super_resolution_dit_is_named_not_run_as_a_base_model(tmp_path, where):
    """The super-resolution DiTs share the base DiT's keys; run as a base model they would
    silently make a wrong clip, so their release folder (or file name) gets them refused."""
    from jova_core.checkpoint import load_transformer

    file = tmp_path / (where if where.endswith(".safetensors") else where + "/model.safetensors")
    file.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in released_state_dict(tiny_model(TINY)).items()}, str(file))
    with pytest.raises(ValueError, match=r"is daVinci-MagiHuman's (540p|1080p) super-resolution DiT.*pick one of those$"):
        load_transformer(str(tmp_path / where))
    base = tmp_path / "base" / "model.safetensors"
    base.parent.mkdir()
    shutil.copy(file, base)
    assert type(load_transformer(str(base))).__name__ == "MagiHumanTransformer"


def test_turbo_vae_is_named_in_the_video_and_model_loaders(tmp_path):
    """MagiHuman's optional Turbo VAE decoder (turbo_vae/checkpoint-340000.ckpt, a training
    checkpoint) is named before any unpickling, wherever it is picked."""
    from jova_core.checkpoint import load_transformer
    from jova_core.codecs import load_video_codec

    path = tmp_path / "turbo_vae" / "checkpoint-340000.ckpt"
    path.parent.mkdir()
    path.write_bytes(b"not read")
    for load in (load_video_codec, load_transformer):
        with pytest.raises(ValueError, match=r"is daVinci-MagiHuman's optional Turbo VAE decoder.*wan2\.2_vae\.safetensors"):
            load(str(path))
