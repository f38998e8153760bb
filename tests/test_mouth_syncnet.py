"""SyncNet LSE-C / LSE-D: the MFCC front end against python_speech_features, the network's
key names and shapes against syncnet_python's SyncNetModel, strict weight loading, the
offset / LSE arithmetic on constructed embeddings, face crops, and the CLI option."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

psf = pytest.importorskip("python_speech_features")
pytest.importorskip("mediapipe")

from jova_core.lipsync import SyncNet, load_syncnet, lse_scores, speech_mfcc, syncnet_scores  # noqa: E402
from jova_core.mouth.landmarks import FaceTrack  # noqa: E402
from jova_core.lipsync.lse import offset_distances  # noqa: E402
from jova_core.lipsync.syncnet_input import face_boxes, face_crops, frames_at_syncnet_rate, syncnet_audio  # noqa: E402


# --- MFCC ---------------------------------------------------------------------------


@pytest.mark.parametrize("num_samples", [16_000, 12_345, 401, 400, 100])
def test_mfcc_matches_python_speech_features(num_samples):
    rng = np.random.default_rng(num_samples)
    t = np.arange(num_samples)
    pcm = (3000 * rng.standard_normal(num_samples) + 8000 * np.sin(0.05 * t) * (t % 3000 < 2000)).astype(np.int16)
    pcm[: min(600, num_samples // 3)] = 0  # a silent stretch: log(eps) paths
    expected = psf.mfcc(pcm, 16000).T  # [13, M], the call syncnet_python makes
    ours = speech_mfcc(torch.from_numpy(pcm.astype(np.float64)))
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-8)


def test_syncnet_audio_is_mono_16k_on_the_int16_scale():
    rate = 44_100
    t = torch.arange(rate) / rate
    tone = 0.5 * torch.sin(2 * torch.pi * 440 * t)
    stereo = torch.stack([tone, tone])
    audio = syncnet_audio(stereo, rate)
    assert audio.shape == (16_000,)
    assert torch.equal(audio, audio.round()) and audio.abs().max() <= 32768
    # The tone keeps its amplitude: 0.5 of full scale.
    assert audio[1000:-1000].abs().max() == pytest.approx(0.5 * 32768, rel=0.01)


# --- the network --------------------------------------------------------------------

# Key -> shape of syncnet_v2.model, read off joonson/syncnet_python's SyncNetModel.py (the
# class S that loadParameters fills): each conv stage is Conv, BatchNorm, ReLU [, MaxPool]
# inside one nn.Sequential, so parameters sit at indices 0/1, 4/5, 8/9, 11/12, 14/15, 18/19.
_CONVS = {
    "netcnnaud": [(0, [64, 1, 3, 3]), (4, [192, 64, 3, 3]), (8, [384, 192, 3, 3]),
                  (11, [256, 384, 3, 3]), (14, [256, 256, 3, 3]), (18, [512, 256, 5, 4])],
    "netcnnlip": [(0, [96, 3, 5, 7, 7]), (4, [256, 96, 1, 5, 5]), (8, [256, 256, 1, 3, 3]),
                  (11, [256, 256, 1, 3, 3]), (14, [256, 256, 1, 3, 3]), (18, [512, 256, 1, 6, 6])],
}
_HEADS = ("netfcaud", "netfclip")  # Linear(512, 512), BatchNorm1d(512), ReLU, Linear(512, 1024)


def _syncnet_v2_manifest() -> dict[str, list[int]]:
    manifest = {}
    for tower, convs in _CONVS.items():
        for index, shape in convs:
            manifest[f"{tower}.{index}.weight"] = shape
            manifest[f"{tower}.{index}.bias"] = shape[:1]
            for name in ("weight", "bias", "running_mean", "running_var"):
                manifest[f"{tower}.{index + 1}.{name}"] = shape[:1]
    for head in _HEADS:
        manifest.update({f"{head}.0.weight": [512, 512], f"{head}.0.bias": [512],
                         f"{head}.3.weight": [1024, 512], f"{head}.3.bias": [1024]})
        for name in ("weight", "bias", "running_mean", "running_var"):
            manifest[f"{head}.1.{name}"] = [512]
    return manifest


def test_state_dict_matches_syncnet_v2_manifest():
    state = SyncNet().state_dict()
    ours = {k: list(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert ours == _syncnet_v2_manifest()
    counters = sorted(k for k in state if k.endswith("num_batches_tracked"))
    assert len(counters) == 14  # one per BatchNorm: 6 + 1 per tower


def test_embedding_shapes():
    model = SyncNet().eval()
    with torch.no_grad():
        assert model.embed_audio(torch.randn(2, 1, 13, 20)).shape == (2, 1024)
        assert model.embed_lips(torch.rand(1, 3, 5, 224, 224) * 255).shape == (1, 1024)


@pytest.fixture(scope="module")
def random_syncnet():
    """A randomly initialised SyncNet with non-trivial BatchNorm statistics (eval mode)."""
    torch.manual_seed(0)
    model = SyncNet()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, random_syncnet):
    """Saved like the released syncnet_v2.model: a plain state dict without BatchNorm
    counters (syncnet_python copies it key by key, so it is a state dict), in torch's
    legacy non-zip format, as files from before torch 1.6 are (the prefixed file in the
    next test covers the zip format)."""
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    state = {k: v for k, v in random_syncnet.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return path


def test_weights_load_strictly_and_reproduce_the_model(weights_file, random_syncnet, tmp_path):
    loaded = load_syncnet(str(weights_file))
    assert not loaded.training
    mfcc, crops = torch.randn(3, 1, 13, 20), torch.rand(1, 3, 5, 224, 224) * 255
    with torch.no_grad():
        torch.testing.assert_close(loaded.embed_audio(mfcc), random_syncnet.embed_audio(mfcc))
        torch.testing.assert_close(loaded.embed_lips(crops), random_syncnet.embed_lips(crops))
    # A state dict saved from syncnet_python's SyncNetInstance carries the "__S__." prefix.
    prefixed = tmp_path / "instance.pt"
    torch.save({f"__S__.{k}": v for k, v in random_syncnet.state_dict().items()}, prefixed)
    reloaded = load_syncnet(str(prefixed))
    with torch.no_grad():
        torch.testing.assert_close(reloaded.embed_audio(mfcc), random_syncnet.embed_audio(mfcc))


def test_bad_weight_files_name_the_problem(weights_file, tmp_path):
    state = torch.load(weights_file, weights_only=True)
    renamed = dict(state)
    renamed["netcnnaud.18.kernel"] = renamed.pop("netcnnaud.18.weight")
    torch.save(renamed, tmp_path / "renamed.model")
    with pytest.raises(ValueError, match=r"missing 1 keys: netcnnaud\.18\.weight(.|\n)*unexpected 1 keys: netcnnaud\.18\.kernel"):
        load_syncnet(str(tmp_path / "renamed.model"))

    reshaped = dict(state)
    reshaped["netfclip.3.weight"] = torch.zeros(512, 512)
    torch.save(reshaped, tmp_path / "reshaped.model")
    with pytest.raises(ValueError, match=r"netfclip\.3\.weight: file \[512, 512\] vs model \[1024, 512\]"):
        load_syncnet(str(tmp_path / "reshaped.model"))

    torch.save(SyncNet(), tmp_path / "pickled_module.model")  # a whole pickled module: refused
    with pytest.raises(ValueError, match="not a plain tensor state dict"):
        load_syncnet(str(tmp_path / "pickled_module.model"))

    with pytest.raises(FileNotFoundError, match="syncnet_v2.model"):
        load_syncnet(str(tmp_path / "absent.model"))


# --- offsets and LSE ----------------------------------------------------------------


def _naive_mean_distances(lip, audio, max_offset):
    """The public scripts' definition, written out frame by frame (the test's oracle)."""
    n = len(lip)
    means = []
    for d in range(-max_offset, max_offset + 1):
        total = 0.0
        for i in range(n):
            partner = audio[i + d] if 0 <= i + d < n else torch.zeros_like(audio[0])
            total += float(torch.linalg.vector_norm(lip[i] - partner + 1e-6))
        means.append(total / n)
    return np.array(means)


@pytest.mark.parametrize("shift", [3, 0, -5])
def test_offset_and_lse_on_constructed_embeddings(shift):
    generator = torch.Generator().manual_seed(7)
    n, dim, max_offset = 40, 64, 15
    audio = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    # Video frame i shows what audio frame i + shift says (zero where that is off the end,
    # matching the zero padding of the definition).
    lip = torch.zeros_like(audio)
    for i in range(n):
        if 0 <= i + shift < n:
            lip[i] = audio[i + shift]
    synced = lse_scores(lip, audio, max_offset)
    assert synced.offset_frames == shift
    assert synced.lse_d < 1e-3
    assert synced.windows == n and len(synced.mean_distances) == 2 * max_offset + 1
    np.testing.assert_allclose(synced.mean_distances, _naive_mean_distances(lip, audio, max_offset), rtol=1e-9)
    curve = np.array(synced.mean_distances)
    assert synced.lse_c == pytest.approx(np.median(curve) - curve.min())

    shuffled = lse_scores(lip[torch.randperm(n, generator=generator)], audio, max_offset)
    assert shuffled.lse_c < 0.5 * synced.lse_c and shuffled.lse_d > synced.lse_d


def test_offset_distances_checks_shapes():
    with pytest.raises(ValueError, match="one shape"):
        offset_distances(torch.zeros(4, 8), torch.zeros(5, 8))


# --- video side ---------------------------------------------------------------------


def test_frames_at_syncnet_rate():
    assert frames_at_syncnet_rate(50, 50.0).tolist() == list(range(0, 50, 2))
    assert frames_at_syncnet_rate(10, 25.0).tolist() == list(range(10))
    picks = frames_at_syncnet_rate(48, 24.0)  # 2 s: 50 frames, one source frame shown twice per second
    assert len(picks) == 50 and picks.max() == 47 and (np.diff(picks) >= 0).all()
    assert (np.diff(picks) == 0).sum() == 2


def test_face_boxes_fill_gaps_and_drop_outliers():
    frames = 20
    points = np.zeros((frames, 4, 2), dtype=np.float32)
    corners = np.array([[40, 30], [60, 30], [40, 60], [60, 60]], dtype=np.float32)  # 20 x 30 face
    points[:] = corners
    points[7] = corners + 25  # one frame's detection jumps away
    points[12:15] = np.nan  # three frames without a face
    boxes = face_boxes(FaceTrack(track_id=0, points=points))
    np.testing.assert_allclose(boxes, np.tile([50.0, 45.0, 15.0], (frames, 1)))
    with pytest.raises(ValueError, match="no face"):
        face_boxes(FaceTrack(track_id=0, points=np.full((3, 4, 2), np.nan, dtype=np.float32)))


def test_face_crops_follow_the_syncnet_python_box():
    frame = np.zeros((100, 100, 3), dtype=np.uint8)
    frame[..., 0] = 255  # pure red (RGB)
    # Box centre (50, 50), half size 10: rows 40..68, columns 36..64, all inside.
    inside = face_crops(frame[None], np.array([[50.0, 50.0, 10.0]]))
    assert inside.shape == (1, 224, 224, 3)
    assert (inside[0, ..., 2] == 255).all() and (inside[0, ..., :2] == 0).all()  # BGR order
    # Centre (10, 10): columns -4..24, so the left 4/28 of the crop is grey padding.
    edge = face_crops(frame[None], np.array([[10.0, 10.0, 10.0]]))[0]
    assert (edge[:, :28] == 110).all()  # syncnet_python pads with grey 110
    assert (edge[:, 36:, 2] == 255).all() and (edge[:, 36:, :2] == 0).all()
    # Geometry in both axes: a frame whose red channel is x and green channel is y.
    ys, xs = np.mgrid[0:200, 0:200]
    coordinates = np.stack([xs, ys, np.zeros_like(xs)], axis=-1).astype(np.uint8)
    # Centre (100, 90), half size 30: rows 60..144, columns 58..142 (84 x 84 -> 224 x 224).
    crop = face_crops(coordinates[None], np.array([[100.0, 90.0, 30.0]]))[0].astype(int)
    x, y = crop[..., 2], crop[..., 1]
    assert abs(x[:, 0].mean() - 58) <= 1 and abs(x[:, -1].mean() - 141) <= 1
    assert abs(y[0].mean() - 60) <= 1 and abs(y[-1].mean() - 143) <= 1


def test_scores_need_a_face_and_enough_frames():
    model = SyncNet().eval()
    blank = np.full((8, 64, 64, 3), 128, dtype=np.uint8)
    with pytest.raises(ValueError, match="no face"):
        syncnet_scores(blank, 25.0, torch.zeros(1, 16000), 16000, model=model)
    with pytest.raises(ValueError, match="at least 6 frames"):
        syncnet_scores(blank[:5], 25.0, torch.zeros(1, 16000), 16000, model=model)
    with pytest.raises(ValueError, match="weights_path"):
        syncnet_scores(blank, 25.0, torch.zeros(1, 16000), 16000)


# --- CLI ----------------------------------------------------------------------------


def test_cli_sync_score_with_syncnet(tmp_path, capsys, weights_file, random_syncnet):
    from jova_core.cli import main
    from jova_core.io import read_clip, write_mp4
    from jova_core.mouth import detect_face_landmarks
    from jova_core.train.synthetic import make_talking_clip

    talking = make_talking_clip(11, seconds=0.4, fps=24.0)
    clip = str(tmp_path / "talking.mp4")
    write_mp4(clip, talking.frames, talking.fps, talking.waveform, talking.sample_rate)
    # --max-offset narrows the landmark score's search only; LSE keeps the published +-15.
    assert main(["sync-score", clip, "--syncnet", str(weights_file), "--device", "cpu", "--max-offset", "4"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(report["offset_frames"]) <= 4 and "confidence" in report  # the landmark score is still there
    # 10 frames at 24 fps -> 10 at 25 fps; 0.4167 s of audio -> 10 usable frames; 10 - 5 windows.
    assert report["syncnet_windows"] == 5
    assert -15 <= report["syncnet_offset_frames"] <= 15
    assert report["lse_d"] > 0 and report["lse_c"] >= 0

    # The same numbers through the Python API on the same decoded clip.
    frames, waveform, fps, rate = read_clip(clip)
    landmarks = detect_face_landmarks(frames, fps=fps)
    expected = syncnet_scores(frames, fps, waveform, rate, model=random_syncnet, landmarks=landmarks, max_offset=15)
    assert expected.face_frames == 10
    assert report["lse_d"] == pytest.approx(expected.lse_d, abs=1e-4)
    assert report["lse_c"] == pytest.approx(expected.lse_c, abs=1e-4)
    assert report["syncnet_offset_frames"] == expected.offset_frames

    assert main(["sync-score", clip, "--syncnet", str(tmp_path / "missing.model")]) == 2
    assert "syncnet_v2.model" in capsys.readouterr().err
