"""The mouth-mask, sync-score and make-demo-data verbs, run through the CLI dispatcher."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mediapipe")
skimage_data = pytest.importorskip("skimage.data")
iio = pytest.importorskip("imageio.v3")

from jova_core.cli import main  # noqa: E402

ASTRONAUT_MOUTH_CENTRE = (224, 146)  # hand-labelled, as in test_mouth.py


def test_mouth_mask_on_an_image(tmp_path, capsys):
    source = tmp_path / "astronaut.png"
    iio.imwrite(source, skimage_data.astronaut())
    out = tmp_path / "preview.png"
    assert main(["mouth-mask", str(source), "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["frames"] == 1 and report["missing_frames"] == []
    (x0, y0, x1, y1), = report["boxes"][0]
    assert x0 < ASTRONAUT_MOUTH_CENTRE[0] < x1 and y0 < ASTRONAUT_MOUTH_CENTRE[1] < y1
    assert report["latent_mask_shape"] == [1, 64, 64] and report["token_mask_shape"] == [1, 32, 32]
    preview = iio.imread(out)
    changed = np.abs(preview.astype(int) - skimage_data.astronaut().astype(int)).sum(-1) > 0
    rows, cols = np.nonzero(changed)
    assert rows.min() >= y0 - 3 and rows.max() <= y1 + 3 and cols.min() >= x0 - 3 and cols.max() <= x1 + 3
    # An existing preview is kept unless --overwrite is given.
    before = out.read_bytes()
    assert main(["mouth-mask", str(source), "--out", str(out)]) == 2
    assert out.read_bytes() == before
    assert "--overwrite" in capsys.readouterr().err
    assert main(["mouth-mask", str(source), "--out", str(tmp_path / "x.mp4")]) == 2  # an image gives a PNG


def test_demo_data_sync_score_and_video_mask(tmp_path, capsys):
    from jova_core.io import read_clip
    from jova_core.train.data import read_captions

    out = tmp_path / "demo"
    assert main(["make-demo-data", "--out", str(out), "--clips", "2", "--seconds", "1.5", "--seed", "5"]) == 0
    entries = read_captions(str(out / "captions.json"))
    assert [e.file for e in entries] == ["clip_00005.mp4", "clip_00006.mp4"]
    assert all(e.transcript and e.audio_caption and e.video_caption for e in entries)
    frames, waveform, fps, sample_rate = read_clip(str(out / entries[0].file))
    assert frames.shape[1:3] == (128, 128) and fps == pytest.approx(24)
    assert waveform.shape[-1] == pytest.approx(1.5 * sample_rate, rel=0.05)
    # Never overwrites: a second run into the same folder writes nothing.
    stamp = (out / "captions.json").stat().st_mtime_ns
    assert main(["make-demo-data", "--out", str(out), "--clips", "1", "--seed", "5"]) == 2
    assert (out / "captions.json").stat().st_mtime_ns == stamp
    capsys.readouterr()

    assert main(["sync-score", str(out / entries[0].file), "--max-offset", "6"]) == 0
    score = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert score["offset_frames"] == 0 and score["confidence"] > 0.3
    # The shipped model through the Tasks backend scores the clip the same way.
    assert main(["sync-score", str(out / entries[0].file), "--max-offset", "6", "--backend", "tasks"]) == 0
    tasks = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert tasks["offset_frames"] == 0 and tasks["confidence"] == pytest.approx(score["confidence"], abs=0.05)

    preview = tmp_path / "preview.mp4"
    assert main(["mouth-mask", str(out / entries[0].file), "--out", str(preview), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["frames"] == len(frames) and report["missing_frames"] == []
    assert len(read_clip(str(preview))[0]) == len(frames)


def test_face_model_option_names_what_is_wrong_in_one_line(tmp_path, capsys):
    source = tmp_path / "astronaut.png"
    iio.imwrite(source, skimage_data.astronaut())
    missing = tmp_path / "face_landmarker.task"
    for argv in (["mouth-mask", str(source), "--json"], ["sync-score", str(source)]):
        assert main([*argv, "--face-model", str(missing)]) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and f"not found at {str(missing)!r}" in error and "built-in" in error
    broken = tmp_path / "broken.task"
    broken.write_bytes(b"not a model" * 100)
    assert main(["mouth-mask", str(source), "--json", "--face-model", str(broken)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "could not load" in error
    # A face model of one's own (here a copy of the shipped one) finds the same mouth box.
    from jova_core.mouth.face_model import SHIPPED

    own = tmp_path / "own.task"
    own.write_bytes(SHIPPED.read_bytes())
    boxes = []
    for model in ("built-in", str(own)):
        assert main(["mouth-mask", str(source), "--json", "--backend", "tasks", "--face-model", model]) == 0
        boxes.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["boxes"])
    assert boxes[0] == boxes[1]
