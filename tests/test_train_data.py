"""The trainer's data path end to end: captions files, synthetic clips -> cache -> `train` verb."""

from __future__ import annotations

import json

import pytest

from jova_core.cli import main
from jova_core.checkpoint import load_native, read_metadata
from jova_core.train.config import TrainConfig
from jova_core.train.data import read_captions
from jova_core.train.encode import cached_dataset

TINY = {"dim": 16, "num_heads": 2, "ffn_dim": 32, "freq_dim": 16, "text_dim": 16, "text_len": 64}
SYNTHETIC = {"clips": 2, "seconds": 0.21, "fps": 24.0, "size": 64}


def test_captions_json_list_object_and_csv_read_the_same(tmp_path):
    rows = [{"file": "a.mp4", "video_caption": "a face", "audio_caption": "speech", "transcript": "ba ma"},
            {"file": "b.mp4", "video_caption": "a dog", "audio_caption": "barking", "transcript": ""}]
    (tmp_path / "list.json").write_text(json.dumps(rows))
    (tmp_path / "obj.json").write_text(json.dumps({r["file"]: {k: v for k, v in r.items() if k != "file"} for r in rows}))
    (tmp_path / "c.csv").write_text("file,video_caption,audio_caption,transcript\n"
                                    + "\n".join(",".join(r.values()) for r in rows))
    entries = [read_captions(str(tmp_path / n)) for n in ("list.json", "obj.json", "c.csv")]
    assert entries[0] == entries[1] == entries[2]
    assert entries[0][0].prompt == "<Video Caption>: a face <Audio Caption>: speech <Transcript>: ba ma"
    assert "<Transcript>" not in entries[0][1].prompt
    (tmp_path / "bad.json").write_text(json.dumps([{"file": "x.mp4"}]))
    with pytest.raises(ValueError, match="video_caption"):
        read_captions(str(tmp_path / "bad.json"))


def test_synthetic_recipe_caches_once_and_trains_through_the_cli(tmp_path, capsys):
    recipe = {"synthetic": SYNTHETIC, "cache_dir": "cache", "output_dir": "out", "preset": "tiny",
              "model_overrides": TINY, "steps": 2, "batch_size": 2, "save_every": 0, "caption_dropout": 0.5,
              "metadata": {"jova_demo": {"fps": 24.0}}}
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    cfg = TrainConfig.from_file(str(path))
    dataset = cached_dataset(cfg, show_progress=False)
    batch = dataset.batch([0, 1])
    assert batch["video"].shape == (2, 16, 2, 8, 8) and batch["audio"].shape[:2] == (2, 20)
    # The mouth box found by the landmark detector covers some but not all latent cells.
    assert 0 < batch["mouth_mask"].mean() < 0.5
    assert batch["text"].abs().sum() > 0
    stamps = {p: (tmp_path / "cache" / p).stat().st_mtime_ns for p in ("synthetic_000000.safetensors", "synthetic_000001.safetensors")}

    assert main(["train", str(path), "--no-progress"]) == 0
    assert "wrote" in capsys.readouterr().out
    # The second preprocessing (inside `train`) found every clip cached.
    assert stamps == {p: (tmp_path / "cache" / p).stat().st_mtime_ns for p in stamps}
    final = tmp_path / "out" / "transformer.safetensors"
    assert load_native(str(final)).config.text_dim == 16
    meta = read_metadata(str(final))
    assert json.loads(meta["jova_demo"]) == {"fps": 24.0} and meta["trained_steps"] == "2"


def test_a_folder_of_mp4_clips_caches_like_the_clips_in_memory(tmp_path):
    from jova_core.codecs.demo import DemoVideoCodec
    from jova_core.io import write_mp4
    from jova_core.train.synthetic import make_talking_clip

    clips = [make_talking_clip(seed, seconds=0.21, fps=24.0, size=64) for seed in (5, 6)]
    data = tmp_path / "clips"
    data.mkdir()
    captions = []
    for i, clip in enumerate(clips):
        write_mp4(str(data / f"c{i}.mp4"), clip.frames, clip.fps, clip.waveform, clip.sample_rate)
        captions.append({"file": f"c{i}.mp4", "video_caption": clip.video_caption,
                         "audio_caption": clip.audio_caption, "transcript": clip.transcript})
    (data / "captions.json").write_text(json.dumps(captions))
    cfg = TrainConfig(data_dir=str(data), cache_dir=str(tmp_path / "cache"), preset="tiny", model_overrides=TINY)
    batch = cached_dataset(cfg, show_progress=False).batch([0, 1])
    codec = DemoVideoCodec()
    direct = [codec.encode(c.frames[None])[0] for c in clips]
    assert batch["video"][0].shape == direct[0].shape
    # Only the MP4's lossy compression (4:2:0 chroma, CRF 18) separates them: each cached
    # clip is far closer to its own in-memory encoding than to the other clip's.
    for i in range(2):
        own = (batch["video"][i] - direct[i]).abs().mean()
        other = (batch["video"][i] - direct[1 - i]).abs().mean()
        assert own < 0.15 * direct[i].abs().mean() and own < 0.5 * other
    assert batch["fps"][0].item() == pytest.approx(24.0)
    assert batch["mouth_mask"][0].sum() > 0
