"""Trainer: multi-process equivalence, resume, LoRA, mouth weighting, cache resumability."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from jova_core.checkpoint import load_native
from jova_core.train.config import TrainConfig
from jova_core.train.data import CachedClips, ClipEntry, preprocess, write_index
from jova_core.train.loss import FlowNoise, draw_noise, flow_losses
from jova_core.train.trainer import build_model, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(dim=16, num_heads=2, ffn_dim=32, freq_dim=16, text_dim=8, text_len=4)


def write_random_cache(cache_dir: str, n: int = 4, seed: int = 0) -> list[str]:
    """Cached clips as the preprocessing writes them: video [16,2,4,4], audio [20,6]."""
    os.makedirs(cache_dir, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    paths = []
    for i in range(n):
        mask = torch.zeros(2, 4, 4)
        mask[:, 2:, 1:3] = 1.0
        tensors = {
            "video": torch.randn(16, 2, 4, 4, generator=g),
            "audio": torch.randn(20, 6, generator=g),
            "text": torch.randn(4, 8, generator=g),
            "mouth_mask": mask,
            "fps": torch.tensor([8.0]),
        }
        paths.append(os.path.join(cache_dir, f"clip{i}.safetensors"))
        save_file(tensors, paths[-1])
    write_index(cache_dir, paths)
    return paths


def recipe(tmp_path, **overrides) -> TrainConfig:
    base = dict(
        cache_dir=str(tmp_path / "cache"), output_dir=str(tmp_path / "out"), preset="tiny", model_overrides=TINY,
        steps=3, batch_size=2, learning_rate=1e-2, save_every=0, seed=3, shift=3.0,
    )
    return TrainConfig(**{**base, **overrides})


def test_two_gloo_processes_match_one_process_with_the_combined_batch(tmp_path):
    paths = write_random_cache(str(tmp_path / "cache"))
    cfg = recipe(tmp_path, output_dir=str(tmp_path / "single"))
    single = train(cfg, CachedClips(paths), show_progress=False).history

    config_file = tmp_path / "recipe.json"
    data = json.loads(recipe(tmp_path, output_dir=str(tmp_path / "ddp")).to_json())
    config_file.write_text(json.dumps(data))
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "jova_core", "train", str(config_file), "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((tmp_path / "ddp" / "checkpoint-000003" / "state.json").read_text())
    ddp = state["history"]
    assert [r["step"] for r in ddp] == [1, 2, 3]
    for a, b in zip(single, ddp):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
        assert a["video"] == pytest.approx(b["video"], rel=1e-4, abs=1e-6)
    # The loss moved (the comparison is not between two constant trajectories).
    assert single[0]["loss"] != pytest.approx(single[-1]["loss"], rel=1e-3)
    w1 = load_native(str(tmp_path / "single" / "transformer.safetensors")).state_dict()
    w2 = load_native(str(tmp_path / "ddp" / "transformer.safetensors")).state_dict()
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-4


def test_resume_continues_the_same_trajectory(tmp_path):
    paths = write_random_cache(str(tmp_path / "cache"))
    straight = train(recipe(tmp_path, steps=4, output_dir=str(tmp_path / "a")), CachedClips(paths), show_progress=False)
    # Stop after 2 steps (as an interruption would), then run the same recipe to 4.
    first = train(recipe(tmp_path, steps=2, output_dir=str(tmp_path / "b")), CachedClips(paths), show_progress=False)
    os.remove(first.final_path)  # only the checkpoint folder should matter for resuming
    second = train(recipe(tmp_path, steps=4, output_dir=str(tmp_path / "b")), CachedClips(paths), show_progress=False)
    assert [r["step"] for r in second.history] == [3, 4]
    for a, b in zip(straight.history[2:], second.history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    wa = load_native(straight.final_path).state_dict()
    wb = load_native(second.final_path).state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_refuses_to_overwrite_a_finished_run_without_resume(tmp_path):
    paths = write_random_cache(str(tmp_path / "cache"))
    train(recipe(tmp_path, steps=1), CachedClips(paths), show_progress=False)
    shutil.rmtree(tmp_path / "out" / "checkpoint-000001")
    with pytest.raises(FileExistsError, match="resume"):
        train(recipe(tmp_path, steps=1, resume=False), CachedClips(paths), show_progress=False)


def pretrained_file(tmp_path) -> str:
    """A 'pretrained' start: fresh weights but non-zero heads (Wan's init zeroes them,
    which would leave the blocks, where LoRA sits, without gradient)."""
    from jova_core.checkpoint import save_transformer

    model = build_model(recipe(tmp_path))
    for ends in (model.video, model.audio):
        torch.nn.init.normal_(ends.head.head.weight, std=0.1)
    path = str(tmp_path / "pretrained.safetensors")
    save_transformer(model, path)
    return path


def test_lora_trains_only_adapter_weights_and_exports_a_merged_model(tmp_path):
    paths = write_random_cache(str(tmp_path / "cache"))
    cfg = recipe(tmp_path, lora_rank=2, steps=3, init_checkpoint=pretrained_file(tmp_path))
    before = {k: v.clone() for k, v in build_model(cfg).state_dict().items()}
    result = train(cfg, CachedClips(paths), show_progress=False)
    from safetensors.torch import load_file

    adapters = load_file(os.path.join(result.last_checkpoint, "lora.safetensors"))
    assert adapters and all("lora_" in k for k in adapters)
    # lora_B starts at zero; training moved it.
    assert any("lora_B" in k and v.abs().max() > 0 for k, v in adapters.items())
    merged = load_native(result.final_path).state_dict()
    base = {k.replace(".base_layer.", "."): v for k, v in before.items() if "lora_" not in k}
    assert set(merged) == set(base)
    changed = {k for k in merged if not torch.equal(merged[k], base[k])}
    # Only linears inside blocks (where the adapters are) differ; the branch ends are untouched.
    assert changed and all(k.startswith("blocks.") and k.endswith(".weight") for k in changed)
    assert not any(k.startswith(("video.", "audio.")) for k in changed)
    # The merged weight is base + B @ A * alpha / r.
    key = "blocks.0.video.self_attn.q"
    a, b = adapters[f"{key}.lora_A.default.weight"], adapters[f"{key}.lora_B.default.weight"]
    torch.testing.assert_close(merged[f"{key}.weight"], base[f"{key}.weight"] + b @ a, rtol=1e-5, atol=1e-6)

    # The adapter alone, beside the merged file: applied to the base model at strength 1
    # it computes what the merged file computes.
    from jova_core.lora import apply_lora

    base_model, merged_model = load_native(cfg.init_checkpoint), load_native(result.final_path)
    inputs = dict(video=torch.randn(1, 16, 2, 4, 4), audio=torch.randn(1, 20, 6), t_video=torch.tensor([500.0]),
                  t_audio=torch.tensor([300.0]), text=torch.randn(1, 4, base_model.config.text_dim))
    apply_lora(base_model, os.path.join(cfg.output_dir, "lora.safetensors"))
    with torch.no_grad():
        for got, want in zip(base_model(**inputs), merged_model(**inputs)):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_lora_model_has_only_adapter_parameters_trainable(tmp_path):
    model = build_model(recipe(tmp_path, lora_rank=2))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)
    assert sum(p.numel() for n, p in model.named_parameters() if p.requires_grad) < 0.5 * sum(p.numel() for p in model.parameters())


def test_mouth_weight_zero_is_the_plain_flow_loss_and_weight_raises_mouth_errors(tmp_path):
    paths = write_random_cache(str(tmp_path / "cache"))
    data = CachedClips(paths)
    batch = data.batch([0, 1])
    model = build_model(recipe(tmp_path))
    torch.nn.init.normal_(model.video.head.head.weight, std=0.1)  # non-zero predictions
    noise = draw_noise(batch, [11, 12], shift=3.0)
    with torch.no_grad():
        loss0, audio0 = flow_losses(model, batch, noise, mouth_weight=0.0)
        loss5, audio5 = flow_losses(model, batch, noise, mouth_weight=5.0)
        # Independent oracle: noise by hand, then plain MSE against noise - x0.
        sv = noise.sigma_video.view(-1, 1, 1, 1, 1)
        x_t = (1 - sv) * batch["video"] + sv * noise.video
        sa = noise.sigma_audio.view(-1, 1, 1)
        a_t = (1 - sa) * batch["audio"] + sa * noise.audio
        pv, pa = model(video=x_t, audio=a_t, t_video=noise.sigma_video * 1000, t_audio=noise.sigma_audio * 1000,
                       text=batch["text"], fps=8.0)
        plain = F.mse_loss(pv, noise.video - batch["video"])
        weights = 1 + 5.0 * batch["mouth_mask"][:, None]
        weighted = (weights * (pv - (noise.video - batch["video"])) ** 2).mean()
    torch.testing.assert_close(loss0, plain, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(loss5, weighted, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(audio0, F.mse_loss(pa, noise.audio - batch["audio"]), rtol=1e-5, atol=1e-7)
    assert loss5 > loss0
    no_mask = {k: v for k, v in batch.items() if k != "mouth_mask"}
    with pytest.raises(ValueError, match="mouth masks"):
        flow_losses(model, no_mask, noise, mouth_weight=5.0)


def test_noise_levels_are_independent_per_modality_and_shifted():
    batch = {"video": torch.zeros(64, 1, 1, 1, 1), "audio": torch.zeros(64, 1, 1)}
    noise = draw_noise(batch, list(range(64)), shift=3.0)
    assert not torch.allclose(noise.sigma_video, noise.sigma_audio)
    # shift 3 pushes sigmas up: the median of shift(u) is shift(0.5) = 0.75.
    assert 0.6 < noise.sigma_video.median() < 0.9
    again = draw_noise(batch, list(range(64)), shift=3.0)
    assert torch.equal(again.video, noise.video) and torch.equal(again.sigma_audio, noise.sigma_audio)
    assert isinstance(noise, FlowNoise)


class CountingEncoder:
    fingerprint = "counting-v1"

    def __init__(self):
        self.calls = []

    def encode(self, clip_path, entry):
        self.calls.append(os.path.basename(clip_path))
        return {"video": torch.full((16, 1, 2, 2), float(len(self.calls))), "fps": torch.tensor([8.0])}


def test_cache_is_resumable_and_redoes_only_changed_or_broken_items(tmp_path):
    data_dir = tmp_path / "clips"
    data_dir.mkdir()
    entries = []
    for i in range(3):
        (data_dir / f"c{i}.mp4").write_bytes(b"x" * (10 + i))
        entries.append(ClipEntry(f"c{i}.mp4", f"clip {i}"))
    cache = str(tmp_path / "cache")
    enc = CountingEncoder()

    def stop_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        preprocess(entries, str(data_dir), cache, enc, progress=stop_after_two, show_progress=False)
    assert enc.calls == ["c0.mp4", "c1.mp4"]
    paths, encoded = preprocess(entries, str(data_dir), cache, enc, show_progress=False)
    assert encoded == 1 and enc.calls[-1] == "c2.mp4"
    paths, encoded = preprocess(entries, str(data_dir), cache, enc, show_progress=False)
    assert encoded == 0 and len(enc.calls) == 3
    # A changed caption, a truncated cache file and a new encoder are redone.
    entries[0] = ClipEntry("c0.mp4", "a different caption")
    with open(paths[1], "r+b") as f:
        f.truncate(20)
    _, encoded = preprocess(entries, str(data_dir), cache, enc, show_progress=False)
    assert encoded == 2 and enc.calls[-2:] == ["c0.mp4", "c1.mp4"]
    enc.fingerprint = "counting-v2"
    _, encoded = preprocess(entries, str(data_dir), cache, enc, show_progress=False)
    assert encoded == 3
    assert len(CachedClips(paths)) == 3


def test_gradient_checkpointing_gives_the_same_steps_and_bf16_autocast_runs(tmp_path):
    paths = write_random_cache(str(tmp_path / "cache"))
    plain = train(recipe(tmp_path, output_dir=str(tmp_path / "plain")), CachedClips(paths), show_progress=False)
    ckpt = train(recipe(tmp_path, output_dir=str(tmp_path / "ckpt"), gradient_checkpointing=True), CachedClips(paths), show_progress=False)
    for a, b in zip(plain.history, ckpt.history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    bf16 = train(recipe(tmp_path, output_dir=str(tmp_path / "bf16"), mixed_precision="bf16"), CachedClips(paths), show_progress=False)
    # bf16 matmuls: close to float32 but not identical (step 1 is not: the zero-initialised
    # heads predict exactly 0 in any precision).
    assert bf16.history[-1]["loss"] == pytest.approx(plain.history[-1]["loss"], rel=0.05)
    assert bf16.history[-1]["loss"] != plain.history[-1]["loss"]
    assert load_native(bf16.final_path).video.head.head.weight.dtype == torch.float32


def test_reference_training_feeds_each_sample_its_own_first_frame(tmp_path):
    from jova_core.sampling.modes import reference_condition

    paths = write_random_cache(str(tmp_path / "cache"))
    batch = CachedClips(paths).batch([0, 1])
    model = build_model(recipe(tmp_path, model_overrides={**TINY, "video_condition_channels": 20}))
    torch.nn.init.normal_(model.video.head.head.weight, std=0.1)
    noise = draw_noise(batch, [1, 2], shift=3.0, reference_probability=1.0)
    assert noise.use_reference.all()
    half = dataclasses.replace(noise, use_reference=torch.tensor([True, False]))
    with torch.no_grad():
        loss_ref, _ = flow_losses(model, batch, noise, mouth_weight=0.0)
        loss_half, _ = flow_losses(model, batch, half, mouth_weight=0.0)
        sv = noise.sigma_video.view(-1, 1, 1, 1, 1)
        x_t = (1 - sv) * batch["video"] + sv * noise.video
        a_t = (1 - noise.sigma_audio.view(-1, 1, 1)) * batch["audio"] + noise.sigma_audio.view(-1, 1, 1) * noise.audio
        cond = reference_condition(batch["video"][:, :, :1], tuple(batch["video"].shape), 20)
        pv, _ = model(video=x_t, audio=a_t, t_video=noise.sigma_video * 1000, t_audio=noise.sigma_audio * 1000,
                      text=batch["text"], reference=cond, fps=8.0)
        cond[1] = 0  # the second sample trains without a reference
        pv_half, _ = model(video=x_t, audio=a_t, t_video=noise.sigma_video * 1000, t_audio=noise.sigma_audio * 1000,
                           text=batch["text"], reference=cond, fps=8.0)
    torch.testing.assert_close(loss_ref, F.mse_loss(pv, noise.video - batch["video"]), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(loss_half, F.mse_loss(pv_half, noise.video - batch["video"]), rtol=1e-5, atol=1e-7)
    assert loss_ref != loss_half
    plain = build_model(recipe(tmp_path))
    with pytest.raises(ValueError, match="video_condition_channels"):
        flow_losses(plain, batch, noise, mouth_weight=0.0)


def test_clean_modality_samples_are_held_at_sigma_zero_and_add_no_loss(tmp_path):
    paths = write_random_cache(str(tmp_path / "cache"))
    batch = CachedClips(paths).batch([0, 1, 2, 3])
    model = build_model(recipe(tmp_path))
    torch.nn.init.normal_(model.audio.head.head.weight, std=0.1)
    torch.nn.init.normal_(model.video.head.head.weight, std=0.1)
    noise = draw_noise(batch, list(range(40, 44)), shift=3.0)
    assert not noise.clean_audio.any() and not noise.clean_video.any()
    audio_clean = dataclasses.replace(noise, clean_audio=torch.tensor([True, False, True, False]),
                                      sigma_audio=torch.where(torch.tensor([True, False, True, False]), 0.0, noise.sigma_audio))
    with torch.no_grad():
        _, loss_a = flow_losses(model, batch, audio_clean, mouth_weight=0.0)
        _, pred_a = model(video=(1 - audio_clean.sigma_video.view(-1, 1, 1, 1, 1)) * batch["video"]
                          + audio_clean.sigma_video.view(-1, 1, 1, 1, 1) * audio_clean.video,
                          audio=(1 - audio_clean.sigma_audio.view(-1, 1, 1)) * batch["audio"]
                          + audio_clean.sigma_audio.view(-1, 1, 1) * audio_clean.audio,
                          t_video=audio_clean.sigma_video * 1000, t_audio=audio_clean.sigma_audio * 1000,
                          text=batch["text"], fps=8.0)
    per_sample = ((pred_a - (audio_clean.audio - batch["audio"])) ** 2).mean(dim=(1, 2))
    # Only the noised samples count, but the mean stays over the whole batch.
    torch.testing.assert_close(loss_a, per_sample[[1, 3]].sum() / 4)

    many = {k: batch[k][[0] * 64] for k in ("video", "audio")}
    drawn = draw_noise(many, list(range(64)), shift=3.0, clean_audio_probability=0.5, clean_video_probability=0.25)
    assert not (drawn.clean_audio & drawn.clean_video).any()
    assert torch.all(drawn.sigma_audio[drawn.clean_audio] == 0) and torch.all(drawn.sigma_video[drawn.clean_video] == 0)
    assert torch.all(drawn.sigma_audio[~drawn.clean_audio] > 0) and torch.all(drawn.sigma_video[~drawn.clean_video] > 0)
    assert 20 <= int(drawn.clean_audio.sum()) <= 44 and 6 <= int(drawn.clean_video.sum()) <= 26
    with pytest.raises(ValueError, match="sum to <= 1"):
        TrainConfig(clean_audio_probability=0.7, clean_video_probability=0.5)
