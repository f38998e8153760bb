"""Bad inputs tried as a new user would: each gets a one-line message (no traceback), loses
nothing and never silently does the wrong thing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from jova_core.cli import main


def one_error_line(capsys) -> str:
    """The CLI's stderr, checked to be one line and no traceback."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# -- seeds ------------------------------------------------------------------------------


def _mt19937_init_by_array(key: list[int]) -> np.ndarray:
    """The reference seeding of mt19937ar.c (Matsumoto & Nishimura), restated in Python."""
    mask = 0xFFFFFFFF
    mt = [19650218]
    for i in range(1, 624):
        mt.append((1812433253 * (mt[-1] ^ (mt[-1] >> 30)) + i) & mask)
    i, j = 1, 0
    for _ in range(max(624, len(key))):
        mt[i] = ((mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525)) + key[j] + j) & mask
        i, j = i + 1, j + 1
        if i >= 624:
            mt[0], i = mt[623], 1
        if j >= len(key):
            j = 0
    for _ in range(623):
        mt[i] = ((mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941)) - i) & mask
        i += 1
        if i >= 624:
            mt[0], i = mt[623], 1
    mt[0] = 0x80000000
    return np.array(mt, dtype=np.uint64)


def _state_words(generator: torch.Generator) -> np.ndarray:
    return np.frombuffer(generator.get_state().numpy().tobytes()[24 : 24 + 624 * 8], dtype="<u8")


def test_seeds_below_2_32_keep_their_noise_and_every_64_bit_seed_is_its_own():
    from jova_core.sampling import seeded_generator

    for seed in (0, 7, 2**32 - 1):
        ours = torch.randn(64, generator=seeded_generator(seed))
        assert torch.equal(ours, torch.randn(64, generator=torch.Generator().manual_seed(seed)))
    # torch alone gives seeds 2**32 apart the same noise; ours differ.
    assert torch.equal(torch.randn(8, generator=torch.Generator().manual_seed(5)),
                       torch.randn(8, generator=torch.Generator().manual_seed(5 + 2**32)))
    draws = {seed: torch.randn(64, generator=seeded_generator(seed)) for seed in (5, 5 + 2**32, 5 + 2**33, 2**64 - 1)}
    for a in draws:
        for b in draws:
            assert a == b or not torch.equal(draws[a], draws[b]), (a, b)
    assert torch.equal(draws[2**64 - 1], torch.randn(64, generator=seeded_generator(2**64 - 1)))  # reproducible
    # Above 2**32 the twister's state is the reference init_by_array of the two halves.
    seed = 0x1234_5678_9ABC_DEF0
    assert np.array_equal(_state_words(seeded_generator(seed)), _mt19937_init_by_array([0x9ABC_DEF0, 0x1234_5678]))
    # ... written where torch keeps it: torch's own seeding read back the same way is init_genrand.
    words = [12345]
    for i in range(1, 624):
        words.append((1812433253 * (words[-1] ^ (words[-1] >> 30)) + i) & 0xFFFFFFFF)
    assert np.array_equal(_state_words(torch.Generator().manual_seed(12345)), np.array(words, dtype=np.uint64))


@pytest.mark.parametrize("seed", [2**64, -1, 1.5, True])
def test_seeds_outside_0_to_2_64_are_refused(seed):
    from jova_core.sampling import seeded_generator

    with pytest.raises(ValueError, match="seed must be"):
        seeded_generator(seed)


def test_sample_gives_seeds_2_32_apart_different_noise():
    from jova_core.config import preset_config
    from jova_core.model import JoVATransformer
    from jova_core.sampling import sample

    with torch.device("meta"):
        tiny = JoVATransformer(preset_config("tiny"))

    class Still:  # velocity 0: the result is the starting noise
        config = tiny.config
        hosting = tiny.hosting

        def __call__(self, video, audio, **_):
            return torch.zeros_like(video), torch.zeros_like(audio)

    run = lambda seed: sample(Still(), text=torch.zeros(1, 3, 16), mode="t2va", video_shape=(1, 16, 2, 4, 4),  # noqa: E731
                              audio_shape=(1, 20, 8), steps=1, sampler="euler", cfg_video=1, cfg_audio=1, seed=seed)
    video, audio = run(3)
    generator = torch.Generator().manual_seed(3)
    assert torch.equal(video, torch.randn(1, 16, 2, 4, 4, generator=generator))
    assert torch.equal(audio, torch.randn(1, 20, 8, generator=generator))
    far_video, far_audio = run(3 + 2**32)
    assert not torch.equal(video, far_video) and not torch.equal(audio, far_audio)
    run(2**64 - 1)
    with pytest.raises(ValueError, match="2\\^64"):
        run(2**64)


# -- the demo -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "--steps must be at least 1"),
        (["--steps", "-3"], "--steps must be at least 1"),
        (["--seed", str(2**64)], "seed must be from 0"),
        (["--seed", "-1"], "seed must be from 0"),
        (["--transcript", "你好"], "cannot say"),
        (["--transcript", "ba 🙂 ma"], "cannot say '🙂'"),
        (["--transcript", " ... "], "no syllables"),
        (["--out", "{tmp}/clip.wav"], "must end in .mp4"),
        (["--lip-sync-seeds", "0"], "--lip-sync-seeds must be at least 1"),
    ],
)
def test_demo_refuses_bad_arguments_before_generating(tmp_path, capsys, monkeypatch, args, message):
    from jova_core.demo import settings

    def no_model(*_, **__):
        raise AssertionError("the model was loaded for arguments that are refused")

    monkeypatch.setattr(settings, "load_demo_model", no_model)
    monkeypatch.setattr("jova_core.demo.generate.load_demo_model", no_model)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "clip.mp4")]
    assert main(["demo", *args]) == 1
    assert message in one_error_line(capsys)
    assert os.listdir(tmp_path) == []


def test_demo_transcript_check_keeps_what_the_demo_reads():
    from jova_core.text.demo import DemoTextEncoder, unreadable

    assert DemoTextEncoder.transcript_syllables("Ba, ma-da! pa?") == ["ba", "ma", "da", "pa"]
    assert unreadable("ba café 你 🙂 你") == ["é", "你", "🙂"]
    encoder = DemoTextEncoder(48, 64)
    encoder("<Video Caption>: a face <Audio Caption>: a voice <Transcript>: ba ma")  # readable: fine
    with pytest.raises(ValueError, match="cannot say"):
        encoder("<Video Caption>: a face <Audio Caption>: a voice <Transcript>: 你好")


def test_write_mp4_refuses_a_name_that_is_not_mp4(tmp_path):
    from jova_core.io import write_mp4

    with pytest.raises(ValueError, match="must end in .mp4"):
        write_mp4(str(tmp_path / "clip.wav"), np.zeros((2, 8, 8, 3), np.uint8), 24.0)
    assert os.listdir(tmp_path) == []


# -- damaged and too-short clips: sync-score, mouth-mask ----------------------------------


def _clip_file(path, seconds: float, fps: float = 25.0) -> str:
    """A clip of noise frames and a tone, written as the pack writes MP4s."""
    from jova_core.io import write_mp4

    frames = np.random.default_rng(0).integers(0, 255, (round(seconds * fps), 48, 48, 3), dtype=np.uint8)
    tone = torch.sin(torch.arange(round(seconds * 16000)) * 0.1)[None] * 0.3
    return write_mp4(str(path), frames, fps, tone, 16000)


@pytest.fixture(scope="module")
def truncated_clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    full = _clip_file(folder / "full.mp4", 1.96)
    data = open(full, "rb").read()
    cut = folder / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])  # the index (moov) is at the front: it still opens
    return full, str(cut)


def test_read_clip_refuses_a_truncated_file(truncated_clip):
    from jova_core.io import read_clip

    full, cut = truncated_clip
    assert len(read_clip(full).frames) == 49
    assert len(read_clip(full, start=0.5, duration=0.4).frames) in (10, 11)  # a window is not a truncation
    with pytest.raises(ValueError, match="truncated or damaged: only 0.[0-9]+ s of its 1.96 s"):
        read_clip(cut)


def test_an_mp4_cut_before_its_index_says_so(tmp_path):
    from jova_core.io import probe_media
    from jova_core.io.ffmpeg import run_ffmpeg

    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=32x32:rate=10:duration=1", "-c:v", "libx264",
                str(tmp_path / "x.mp4")], "writing a test clip")  # no faststart: the index comes last
    data = (tmp_path / "x.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or unfinished MP4"):
        probe_media(str(tmp_path / "cut.mp4"))


@pytest.mark.parametrize("verb", ["sync-score", "mouth-mask"])
def test_cli_refuses_a_truncated_clip(truncated_clip, tmp_path, capsys, verb):
    _, cut = truncated_clip
    extra = ["--out", str(tmp_path / "preview.mp4")] if verb == "mouth-mask" else []
    assert main([verb, cut, *extra]) == 2
    assert "truncated or damaged" in one_error_line(capsys)
    assert os.listdir(tmp_path) == []


def test_sync_score_refuses_a_clip_too_short_for_its_offset_search(tmp_path, capsys):
    short = _clip_file(tmp_path / "short.mp4", 0.2)
    assert main(["sync-score", short]) == 2
    err = one_error_line(capsys)
    assert "5 frames (0.20 s at 25 fps; at least 1.24 s)" in err and "+-15 frames" in err
    assert main(["sync-score", short, "--max-offset", "-1"]) == 2
    assert ">= 0" in one_error_line(capsys)


def test_sync_score_function_refuses_short_input_instead_of_narrowing_its_search():
    from jova_core.lipsync import sync_score

    t = np.arange(12, dtype=float)
    with pytest.raises(ValueError, match="needs at least 31"):
        sync_score(np.sin(t), np.sin(t), max_offset=15)
    assert len(sync_score(np.sin(t), np.sin(t), max_offset=5).correlations) == 11


@pytest.mark.parametrize("flag, value, message", [("--margin", "-0.5", "margin must be >= 0"),
                                                  ("--smooth", "-1", "smoothing must be >= 0"),
                                                  ("--margin", "nan", "margin must be >= 0")])
def test_mouth_mask_refuses_negative_margin_and_smoothing(tmp_path, capsys, flag, value, message):
    clip = _clip_file(tmp_path / "c.mp4", 0.4)
    assert main(["mouth-mask", clip, "--out", str(tmp_path / "p.mp4"), flag, value]) == 2
    assert message in one_error_line(capsys)
    assert sorted(os.listdir(tmp_path)) == ["c.mp4"]


def test_mouth_region_settings_are_checked_before_the_landmarks(monkeypatch):
    from jova_core import mouth
    from jova_core.mouth import extract

    def no_landmarks(*_, **__):
        raise AssertionError("landmarks were detected for settings that are refused")

    monkeypatch.setattr(extract, "detect_face_landmarks", no_landmarks)
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        mouth.extract_mouth_masks(frames, margin=-0.1)
    with pytest.raises(ValueError, match="smoothing must be >= 0"):
        mouth.extract_mouth_masks(frames, smooth_sigma=-2.0)
    track = mouth.FaceTrack(track_id=0, points=np.zeros((3, 478, 2), np.float32))
    with pytest.raises(ValueError, match="margin must be >= 0"):
        mouth.mouth_regions(track, margin=-1.0)


# -- training: recipes, data, steps --------------------------------------------------------

TINY = dict(dim=16, num_heads=2, ffn_dim=32, freq_dim=16, text_dim=8, text_len=4)


def _write_cache(cache_dir, frames_per_clip: list[int], fps: list[float] | None = None, size: int = 4) -> list[str]:
    """Cached clips as the preprocessing writes them; clip i has frames_per_clip[i] latent
    frames (audio: 3 latent frames per video latent frame)."""
    from safetensors.torch import save_file

    from jova_core.train.data import write_index

    os.makedirs(cache_dir, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    paths = []
    for i, frames in enumerate(frames_per_clip):
        mask = torch.zeros(frames, size, size)
        mask[:, size // 2:, 1:3] = 1.0
        tensors = {"video": torch.randn(16, frames, size, size, generator=g), "audio": torch.randn(20, 3 * frames, generator=g),
                   "text": torch.randn(4, 8, generator=g), "mouth_mask": mask,
                   "fps": torch.tensor([fps[i] if fps else 8.0])}
        paths.append(os.path.join(cache_dir, f"clip{i}.safetensors"))
        save_file(tensors, paths[-1])
    write_index(str(cache_dir), paths)
    return paths


def _recipe(path, **settings) -> str:
    import json

    base = dict(cache_dir="cache", output_dir="out", preset="tiny", model_overrides=TINY, steps=2, batch_size=2,
                learning_rate=1e-2, save_every=0, seed=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**base, **settings}))
    return str(path)


def test_clips_of_unequal_length_train_in_batches_cut_to_the_shortest_and_resume(tmp_path, capsys):
    from jova_core.checkpoint import load_native
    from jova_core.train.data import CachedClips
    from jova_core.train.trainer import global_batch_indices

    paths = _write_cache(tmp_path / "cache", [2, 3, 2, 3])
    clips = CachedClips(paths)
    batch = clips.batch([0, 1])
    assert batch["video"].shape == (2, 16, 2, 4, 4) and batch["audio"].shape == (2, 20, 6)
    assert batch["mouth_mask"].shape == (2, 2, 4, 4)
    assert torch.equal(batch["video"][1], clips[1]["video"][:, :2]) and torch.equal(batch["audio"][1], clips[1]["audio"][:, :6])
    # A process's part of a batch is cut to the whole batch's shortest (so DDP == one process).
    part = clips.batch([1], global_batch=[0, 1])
    assert all(torch.equal(part[k][0], batch[k][1]) for k in batch)
    assert clips.batch([1])["video"].shape[2] == 3
    assert "each batch is cut to its shortest clip" in clips.check_batchable()
    # The recipe's batches mix lengths from the first step on.
    mixed = [step for step in range(4) if len({p % 2 for p in global_batch_indices(step, 2, 4, 3)}) > 1]
    assert mixed

    recipe = _recipe(tmp_path / "recipe.json", steps=4)
    assert main(["train", recipe, "--no-progress"]) == 0
    assert "cut to its shortest clip" in capsys.readouterr().err
    # Stopped at 2 and resumed to 4: the same weights.
    resumed = _recipe(tmp_path / "resumed.json", steps=4, output_dir="out2")
    assert main(["train", resumed, "--no-progress", "--steps", "2"]) == 0
    os.remove(tmp_path / "out2" / "transformer.safetensors")
    assert main(["train", resumed, "--no-progress"]) == 0
    a = load_native(str(tmp_path / "out" / "transformer.safetensors")).state_dict()
    b = load_native(str(tmp_path / "out2" / "transformer.safetensors")).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("frames, fps, size, message", [
    ([2, 2], [8.0, 12.0], 4, "frame rate"),
    ([2, 2], None, None, "(length aside)"),
])
def test_clips_that_cannot_share_a_batch_are_refused_before_training(tmp_path, capsys, frames, fps, size, message):
    from jova_core.train.data import CachedClips

    paths = _write_cache(tmp_path / "cache", frames, fps)
    if size is None:  # a second clip of another frame size
        _write_cache(tmp_path / "other", [2], size=8)
        os.replace(tmp_path / "other" / "clip0.safetensors", paths[1])
    with pytest.raises(ValueError, match=message):
        CachedClips(paths).check_batchable()
    assert main(["train", _recipe(tmp_path / "recipe.json"), "--no-progress"]) == 1
    assert message in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_train_steps_below_the_step_reached_are_refused(tmp_path, capsys):
    _write_cache(tmp_path / "cache", [2, 2])
    recipe = _recipe(tmp_path / "recipe.json", steps=3)
    assert main(["train", recipe, "--no-progress"]) == 0
    final = tmp_path / "out" / "transformer.safetensors"
    before = final.read_bytes()
    capsys.readouterr()
    assert main(["train", recipe, "--no-progress", "--steps", "1"]) == 1
    assert "already holds step 3" in one_error_line(capsys)
    assert main(["train", recipe, "--no-progress"]) == 0  # the same steps: nothing to do, and says so
    out = capsys.readouterr().out
    assert "already trained to step 3" in out and "wrote" not in out
    assert final.read_bytes() == before


def test_recipe_default_folders_are_the_recipe_folders(tmp_path, monkeypatch):
    import json

    from jova_core.train.config import TrainConfig

    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "recipe.json").write_text(json.dumps({"data_dir": "clips"}))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = TrainConfig.from_file(os.path.join("..", "project", "recipe.json"))
    assert os.path.samefile(os.path.dirname(cfg.cache_dir), tmp_path / "project") and cfg.cache_dir.endswith("cache")
    assert os.path.samefile(os.path.dirname(cfg.output_dir), tmp_path / "project") and cfg.output_dir.endswith("output")


@pytest.mark.parametrize("text, message", [
    ("{steps: 3", "is not valid JSON"),
    ('[{"steps": 3}]', "holds a JSON list"),
    ('{"steps": "ten"}', "'steps' must be a whole number"),
    ('{"steps": 2.5}', "'steps' must be a whole number"),
    ('{"learning_rate": true}', "'learning_rate' must be a number"),
    ('{"data_dir": 5}', "'data_dir' must be a string"),
    ('{"model_overrides": []}', "'model_overrides' must be an object"),
    ('{"stepz": 3}', "unknown training setting 'stepz'; did you mean 'steps'?"),
    ('{"mixed_precision": "fp8"}', "mixed_precision must be"),
    ('{"cache_dir": "nothing"}', "index.json not found"),
    ('{"data_dir": "missing"}', "is not a folder"),
    ('{"synthetic": {"clips": "many"}}', "synthetic: clips must be a number"),
])
def test_recipe_and_data_errors_are_one_line(tmp_path, capsys, text, message):
    path = tmp_path / "recipe.json"
    path.write_text(text)
    assert main(["train", str(path), "--no-progress"]) == 1
    assert message in one_error_line(capsys)


@pytest.mark.parametrize("captions, message", [
    ("[{file: 1}]", "is not valid JSON"),
    ('["a.mp4"]', "expected a JSON list of clips"),
    ('[{"file": "a.mp4"}]', "has no video_caption"),
])
def test_caption_errors_are_one_line(tmp_path, capsys, captions, message):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "captions.json").write_text(captions)
    assert main(["train", _recipe(tmp_path / "recipe.json", data_dir="clips"), "--no-progress"]) == 1
    assert message in one_error_line(capsys)


def test_a_missing_recipe_is_one_line(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.json")]) == 1
    assert "recipe" in one_error_line(capsys)
