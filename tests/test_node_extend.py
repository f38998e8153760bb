"""JoVA Extend, run through its V3 ``execute`` with the ComfyUI stand-ins, against jova_core's extend."""

from __future__ import annotations

import sys

import pytest
import torch
from comfy_stubs import harness

run_node = harness.run_node
SETTINGS = dict(seed=3, steps=2, sampler="euler", shift=3.0, cfg_video=2.0, cfg_audio=1.5)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with harness.comfy_stubs(tmp_path_factory.mktemp("comfyui")) as stubs:
        harness.node_list(harness.load_pack())
        stubs.n = sys.modules[harness.PACK_NAME + ".nodes"]
        stubs.core = lambda name: sys.modules[f"{harness.PACK_NAME}.jova_core.{name}"]
        config = stubs.core("config").preset_config("tiny")
        torch.manual_seed(0)
        model = stubs.core("model.transformer").JoVATransformer(config).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, 0.05)
        stubs.handle = stubs.n.model_handle.JoVAModelHandle(model, "tiny test model")
        encoder = stubs.core("text.demo").DemoTextEncoder(config.text_dim, config.text_len)
        stubs.cond = run_node(stubs.n.JoVATextEncode, text_encoder=encoder, video_caption="a face",
                              audio_caption="a voice", transcript="ba")[0]
        empty = run_node(stubs.n.JoVAEmptyLatent, model=stubs.handle, width=32, height=32, seconds=1.0, fps=8.0,
                         batch_size=1)[0]
        stubs.latent = run_node(stubs.n.JoVASampler, model=stubs.handle, positive=stubs.cond, negative=stubs.cond,
                                latent=empty, mode="t2va", **SETTINGS)[0]
        yield stubs


def extend_node(env, latent, **kw):
    args = dict(model=env.handle, positive=env.cond, negative=env.cond, latent=latent, seconds=1.5, overlap=1,
                chunk_seconds=1.125, context="noised", audio_driven_pass=False, **SETTINGS)
    return run_node(env.n.JoVAExtend, **{**args, **kw})[0]


def test_extend_node_matches_jova_core_and_counts_all_chunks(env):
    env.comfy.utils.progress.clear()
    out = extend_node(env, env.latent)
    clip = env.core("latent").JoVALatent.from_dict(env.latent)
    direct = env.core("sampling.extend").extend(
        env.handle.transformer, clip, clip.seconds + 1.5, overlap=1, chunk_frames=3, text=env.cond[0][0],
        negative_video=env.cond[0][0], context="noised", **SETTINGS)
    assert torch.equal(out["samples"], direct.video) and torch.equal(out["jova_audio"], direct.audio)
    assert out["jova_frames"] == direct.frames > env.latent["jova_frames"]
    assert torch.equal(out["samples"][:, :, : env.latent["samples"].shape[2]], env.latent["samples"])
    chunks = len(env.core("sampling.extend").plan_extension(env.handle.transformer.config.geometry, clip,
                                                            clip.seconds + 1.5, 1, 3))
    progress = [(done, total) for done, total, _ in env.comfy.utils.progress]
    assert chunks >= 2 and progress == [(i + 1, 2 * chunks) for i in range(2 * chunks)]


def test_extend_node_chains(env):
    once = extend_node(env, env.latent, seconds=1.0)
    twice = extend_node(env, once, seconds=1.0)
    assert twice["jova_frames"] > once["jova_frames"] > env.latent["jova_frames"]
    assert torch.equal(twice["samples"][:, :, : once["samples"].shape[2]], once["samples"])
    assert torch.equal(twice["jova_audio"][..., : once["jova_audio"].shape[-1]], once["jova_audio"])


def test_extend_node_stops_when_comfyui_cancels(env):
    env.comfy.utils.progress.clear()
    env.comfy.model_management.interrupt_current_processing(True)
    try:
        with pytest.raises(env.comfy.model_management.InterruptProcessingException):
            extend_node(env, env.latent)
    finally:
        env.comfy.model_management.interrupt_processing = False
    assert env.comfy.utils.progress == []


def test_extend_node_refuses_what_it_cannot_continue(env):
    empty = run_node(env.n.JoVAEmptyLatent, model=env.handle, width=32, height=32, seconds=1.0, fps=8.0,
                     batch_size=1)[0]
    with pytest.raises(ValueError, match="both video and sound"):
        extend_node(env, empty)
    with pytest.raises(ValueError, match="not a JoVA latent"):
        extend_node(env, {"samples": torch.zeros(1, 4, 8, 8)})
