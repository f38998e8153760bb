"""extend for the other hosted families, on tiny random weights in the real layouts: a
converted JavisDiT++ (2-D AudioLDM2 latents [B, 8, 16, T], audio patched 2 x 2) and
daVinci-MagiHuman (no timestep input, so only the "noised" context applies; Wan2.2 48-channel
video and Stable Audio 64-channel audio latents at 25 Hz). Each through jova_core and through
the JoVA Extend node (ComfyUI stand-ins). The demo JoVA model is tests/test_extend.py's."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from comfy_stubs import harness
from convert_fixtures import tiny_javisdit_state_dict
from safetensors.torch import save_file
from test_magihuman import tiny_model
from test_magihuman_e2e import TINY

from jova_core.checkpoint import convert_checkpoint, load_transformer
from jova_core.latent import JoVALatent
from jova_core.sampling import sampling_sigmas
from jova_core.sampling.extend import extend, plan_extension

STEPS = 2
SETTINGS = dict(steps=STEPS, sampler="euler", shift=3.0, seed=5)


class Recorder(torch.nn.Module):
    """The hosted model, recording what each call is shown."""

    def __init__(self, model):
        super().__init__()
        self.model, self.hosting, self.config = model, model.hosting, model.config
        self.calls = []

    def forward(self, **inputs):
        self.calls.append({k: inputs[k].clone() if torch.is_tensor(inputs[k]) else inputs[k]
                           for k in ("video", "audio", "t_video", "t_audio")})
        return self.model(**inputs)


def restated_lengths(seconds, fps, audio_rate, audio_patch):
    """Wan's 4x temporal stride and the audio of those pixel frames' seconds, cut to whole patches."""
    latents = (round(seconds * fps) - 1) // 4 + 1
    frames = (latents - 1) * 4 + 1
    return latents, frames, math.floor(frames / fps * audio_rate) // audio_patch * audio_patch


def check_chunks_aligned(geometry, clip, seconds, overlap, chunk_frames, calls, per_chunk):
    """Each chunk's held audio starts, on a whole patch, within half a patch of its held video."""
    chunks = plan_extension(geometry, clip, seconds, overlap, chunk_frames)
    patch = geometry.audio_patch[1]
    assert len(chunks) >= 2 and len(calls) == len(chunks) * per_chunk
    for chunk in chunks:
        video_seconds = chunk.video_start * geometry.video.temporal_stride / clip.fps
        assert chunk.audio_start % patch == 0 and chunk.audio_frames % patch == 0
        assert abs(chunk.audio_start / geometry.audio.latent_rate - video_seconds) <= patch / 2 / geometry.audio.latent_rate
    return chunks


# ---------------------------------------------------------------- JavisDiT++ (converted)


@pytest.fixture(scope="module")
def javisdit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("javisdit")
    save_file(tiny_javisdit_state_dict(), str(folder / "javisdit.safetensors"))
    convert_checkpoint(str(folder / "javisdit.safetensors"), str(folder / "jova.safetensors"), "javisdit")
    model = load_transformer(str(folder / "jova.safetensors")).eval()
    gen = torch.Generator().manual_seed(0)
    # 17 frames at 16 fps, 64 x 64: JavisDiT++'s own audio length (106 mel frames -> 128 -> 32 latent frames).
    clip = JoVALatent(torch.randn(1, 16, 5, 8, 8, generator=gen), torch.randn(1, 8, 16, 32, generator=gen), 16.0,
                      17, 64, 64, audio_sampled=True)
    text = torch.randn(1, 6, model.config.text_dim, generator=gen)
    return model, clip, text


def test_javisdit_extends_with_its_2d_audio_held_on_every_bin_and_aligned(javisdit):
    model, clip, text = javisdit
    recorder = Recorder(model)
    out = extend(recorder, clip, 2.5, text=text, overlap=2, chunk_frames=5, context="clean", cfg_video=1.0,
                 cfg_audio=1.0, **SETTINGS)
    latents, frames, audio_frames = restated_lengths(2.5, 16.0, 25.0, 2)
    assert (latents, frames, audio_frames) == (10, 37, 56)
    assert out.video.shape == (1, 16, latents, 8, 8) and out.frames == frames
    assert out.audio.shape == (1, 8, 16, audio_frames), "the audio ends where the video does, on every bin"
    assert torch.equal(out.video[:, :, :5], clip.video) and torch.equal(out.audio[..., :32], clip.audio)
    chunks = check_chunks_aligned(model.hosting.geometry, clip, 2.5, 2, 5, recorder.calls, STEPS)
    so_far_video, so_far_audio = out.video, out.audio
    for i, chunk in enumerate(chunks):
        for call in recorder.calls[i * STEPS : (i + 1) * STEPS]:
            held_video = so_far_video[:, :, chunk.video_start : chunk.video_start + chunk.video_held]
            held_audio = so_far_audio[..., chunk.audio_start : chunk.audio_start + chunk.audio_held]
            assert call["audio"].shape[-1] == chunk.audio_frames and call["video"].shape[2] == chunk.video_frames
            # Held clean on all 16 frequency bins, at t = 0 on exactly the held latent frames.
            assert torch.equal(call["audio"][..., : chunk.audio_held], held_audio)
            assert torch.equal(call["video"][:, :, : chunk.video_held], held_video)
            assert torch.equal(call["t_audio"][0] == 0, torch.arange(chunk.audio_frames) < chunk.audio_held)
            assert torch.equal(call["t_video"][0] == 0, torch.arange(chunk.video_frames) < chunk.video_held)


def test_javisdit_extends_with_the_noised_fallback_too(javisdit):
    model, clip, text = javisdit
    out = extend(model, clip, 1.6, text=text, negative_video=-text, overlap=1, chunk_frames=3, context="noised",
                 **SETTINGS)
    latents, _, audio_frames = restated_lengths(1.6, 16.0, 25.0, 2)
    assert out.video.shape[2] == latents and out.audio.shape == (1, 8, 16, audio_frames)
    assert torch.equal(out.video[:, :, :5], clip.video) and torch.equal(out.audio[..., :32], clip.audio)
    assert torch.isfinite(out.video).all() and torch.isfinite(out.audio).all()


# ---------------------------------------------------------------- daVinci-MagiHuman


@pytest.fixture(scope="module")
def magihuman():
    model = tiny_model(TINY).eval()
    gen = torch.Generator().manual_seed(1)
    # 9 frames at 25 fps, 64 x 64: 3 x 4 x 4 Wan2.2 latents and 9 Stable Audio latent frames.
    clip = JoVALatent(torch.randn(1, 48, 3, 4, 4, generator=gen), torch.randn(1, 64, 9, generator=gen), 25.0, 9,
                      64, 64, audio_sampled=True)
    return model, clip, torch.randn(1, 5, 32, generator=gen)


def test_magihuman_extends_with_the_context_noised_at_every_step(magihuman):
    model, clip, text = magihuman
    recorder = Recorder(model)
    out = extend(recorder, clip, 1.1, text=text, overlap=1, chunk_frames=3, context="noised", cfg_video=1.0,
                 cfg_audio=1.0, **SETTINGS)
    latents, frames, audio_frames = restated_lengths(1.1, 25.0, 25.0, 1)
    assert (latents, frames, audio_frames) == (7, 25, 25)
    assert out.video.shape == (1, 48, latents, 4, 4) and out.frames == frames and out.audio.shape == (1, 64, 25)
    assert torch.equal(out.video[:, :, :3], clip.video) and torch.equal(out.audio[..., :9], clip.audio)
    chunks = check_chunks_aligned(model.hosting.geometry, clip, 1.1, 1, 3, recorder.calls, STEPS)
    sigmas = sampling_sigmas(STEPS, SETTINGS["shift"]).tolist()
    assert sigmas[0] == 1.0  # the first call shows the held frames' own noise
    for i, chunk in enumerate(chunks):
        calls = recorder.calls[i * STEPS : (i + 1) * STEPS]
        for key, dim, start, held in (("video", 2, chunk.video_start, chunk.video_held),
                                      ("audio", -1, chunk.audio_start, chunk.audio_held)):
            context = (out.video if key == "video" else out.audio).narrow(dim, start, held)
            noise = calls[0][key].narrow(dim, 0, held)
            for call, sigma in zip(calls, sigmas):  # x_sigma = (1 - sigma) context + sigma noise, one noise
                assert call[f"t_{key}"].dim() == 0  # one time for all frames: the model reads none
                torch.testing.assert_close(call[key].narrow(dim, 0, held), (1 - sigma) * context + sigma * noise)


def test_magihuman_refuses_clean_context_in_one_line(magihuman):
    model, clip, text = magihuman
    with pytest.raises(ValueError, match='daVinci-MagiHuman takes no timesteps.*context "noised"') as info:
        extend(model, clip, 1.1, text=text, negative_video=-text, overlap=1, chunk_frames=3, context="clean",
               **SETTINGS)
    assert "\n" not in str(info.value)
    short = JoVALatent(clip.video, clip.audio[..., :2], clip.fps, clip.frames, clip.width, clip.height,
                       audio_sampled=True)  # sound ending 0.08 s in, before the held video (0.32 s)
    with pytest.raises(ValueError, match=r"the audio \(2 latent frames\) does not cover the clip's video"):
        extend(model, short, 1.1, text=text, overlap=1, chunk_frames=3, **SETTINGS)


# ---------------------------------------------------------------- the JoVA Extend node


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    with harness.comfy_stubs(tmp_path_factory.mktemp("comfyui")) as stubs:
        harness.node_list(harness.load_pack())
        stubs.n = sys.modules[harness.PACK_NAME + ".nodes"]
        stubs.core = lambda name: sys.modules[f"{harness.PACK_NAME}.jova_core.{name}"]
        yield stubs


def extend_node(nodes, handle, positive, clip, **kw):
    args = dict(model=handle, positive=positive, negative=positive, latent=clip.to_dict(), overlap=1,
                cfg_video=5.0, cfg_audio=2.0, audio_driven_pass=False, context="noised", **SETTINGS)
    return harness.run_node(nodes.n.JoVAExtend, **{**args, **kw})[0]


def test_extend_node_runs_javisdit(nodes, javisdit):
    model, clip, text = javisdit
    handle = nodes.n.model_handle.JoVAModelHandle(model, "tiny JavisDiT++")
    out = extend_node(nodes, handle, [[text, {}]], clip, seconds=0.5, chunk_seconds=0.5625)  # 9 frames: 3 latent
    direct = extend(model, clip, clip.seconds + 0.5, text=text, negative_video=text, overlap=1, chunk_frames=3,
                    cfg_video=5.0, cfg_audio=2.0, context="noised", **SETTINGS)
    assert torch.equal(out["samples"], direct.video) and torch.equal(out["jova_audio"], direct.audio)
    assert out["jova_audio"].shape[:3] == (1, 8, 16) and out["jova_frames"] == direct.frames > clip.frames


def test_extend_node_runs_magihuman_with_its_trimmed_prompt_and_schedules(nodes, magihuman):
    model, clip, text = magihuman
    defaults = nodes.core("model.magihuman").MAGIHUMAN_DEFAULTS  # the pack's own classes, as the loader gives them
    handle = nodes.n.model_handle.JoVAModelHandle(model, "tiny daVinci-MagiHuman", defaults=defaults)
    padded = torch.cat([text, torch.zeros(1, 7, 32)], dim=1)  # as T5Gemma pads, with the real length alongside
    positive = [[padded, {nodes.n.text.TEXT_LENGTH_KEY: text.shape[1]}]]
    settings = {**SETTINGS, "steps": 5}  # sigmas down to 0.43: the schedule's late scale is used
    negative = [[-padded, {nodes.n.text.TEXT_LENGTH_KEY: text.shape[1]}]]  # unlike the prompt: guidance acts
    out = extend_node(nodes, handle, positive, clip, seconds=0.5, chunk_seconds=0.36, negative=negative, **settings)
    direct = nodes.core("sampling.extend").extend(
        model, clip, clip.seconds + 0.5, text=text, negative_video=-text, overlap=1, chunk_frames=3,
        cfg_video=defaults.video_guidance(5.0), sigma_max=defaults.sigma_max, cfg_audio=2.0, context="noised",
        **settings)
    assert direct.video.shape[2] > 3 and isinstance(defaults.video_guidance(5.0), nodes.core("defaults").GuidanceSchedule)
    assert defaults.sigma_max < 1  # its schedule starts below pure noise, as the node must too
    assert torch.equal(out["samples"], direct.video) and torch.equal(out["jova_audio"], direct.audio)
    assert torch.equal(out["samples"][:, :, :3], clip.video) and out["jova_frames"] == direct.frames > clip.frames
    with pytest.raises(ValueError, match="takes no timesteps"):
        extend_node(nodes, handle, positive, clip, seconds=0.5, chunk_seconds=0.36, context="clean")
