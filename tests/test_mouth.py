"""Mouth region: landmarks on a real face (scikit-image's astronaut), masks on the Wan VAE
latent grid, the mouth-weighted loss, and the lip-sync score."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("mediapipe")
skimage_data = pytest.importorskip("skimage.data")

from jova_core.mouth import (  # noqa: E402
    detect_face_landmarks,
    extract_mouth_masks,
    latent_mask,
    mouth_weighted_flow_loss,
    pixel_mask,
    render_preview,
    resolve_backend,
    token_mask,
)
from jova_core.lipsync import audio_envelope, sync_score  # noqa: E402
from jova_core.mouth import face_model  # noqa: E402
from jova_core.mouth.landmarks import INNER_LIP, LIP_INDICES, OUTER_LIP  # noqa: E402
from jova_core.train.synthetic import astronaut_face, warp_mouth  # noqa: E402

# Hand-labelled (by eye, not by the detector) centre of the astronaut's mouth in the
# 512x512 photo.
ASTRONAUT_MOUTH_CENTRE = (224, 146)
# What mediapipe 0.10.21's legacy face mesh finds on the photo (checked against a live run below).
LEGACY_RECORD = Path(__file__).resolve().parent / "data" / "astronaut_face_mesh_legacy.json"
HAS_LEGACY = resolve_backend("auto")[0] == "legacy"
needs_legacy = pytest.mark.skipif(not HAS_LEGACY, reason="this mediapipe has no bundled legacy face mesh (>= 0.10.30)")


@pytest.fixture(scope="module")
def astronaut():
    return skimage_data.astronaut()


# An irregular open/close schedule (no period, so only one offset matches it).
SCHEDULE = np.array([0.0, 0.1, 0.5, 0.9, 1.0, 0.6, 0.2, 0.0, 0.0, 0.3, 0.7, 0.4, 0.1, 0.0, 0.8, 1.0, 0.5, 0.0, 0.0, 0.2, 0.6, 0.3, 0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def warped_clip():
    """Frames [25, 512, 512, 3] of the astronaut with the mouth opened by SCHEDULE,
    their landmarks, and the warp's own lip boxes (ground truth)."""
    image, points = astronaut_face()
    warped = [warp_mouth(image, points, float(o)) for o in SCHEDULE]
    frames = np.stack([w[0] for w in warped])
    boxes = np.stack([w[1] for w in warped])
    return frames, detect_face_landmarks(frames, video=True), boxes


def test_lip_indices_are_mediapipes_lip_set():
    from mediapipe.tasks.python.vision import FaceLandmarksConnections

    lips = [(c.start, c.end) for c in FaceLandmarksConnections.FACE_LANDMARKS_LIPS]
    assert set(LIP_INDICES) == {i for edge in lips for i in edge}
    # Each contour is a closed loop of mediapipe's lip edges, in order.
    edges = {frozenset(e) for e in lips}
    for loop in (OUTER_LIP, INNER_LIP):
        assert all(frozenset((a, b)) in edges for a, b in zip(loop, loop[1:] + loop[:1]))


def test_mouth_box_lies_on_the_lips(astronaut):
    masks = extract_mouth_masks(astronaut, video=False, margin=0.0)
    assert masks.landmarks.missing_frames == []
    x0, y0, x1, y1 = masks.boxes[0][0]
    cx, cy = ASTRONAUT_MOUTH_CENTRE
    assert x0 < cx < x1 and y0 < cy < y1
    assert 30 < x1 - x0 < 80 and 8 < y1 - y0 < 40  # a mouth, not the face
    # Lips are redder than the skin around them: compare R - G inside the lip polygon
    # with a ring of skin below the mouth (the chin).
    image = astronaut.astype(np.float32)
    redness = (image[..., 0] - image[..., 1]) / image.sum(-1).clip(1)  # chromatic, so shading cancels
    lips = np.zeros(astronaut.shape[:2], np.uint8)
    outer = masks.landmarks.main.points[0, list(OUTER_LIP)]
    inner = masks.landmarks.main.points[0, list(INNER_LIP)]
    cv2.fillPoly(lips, [np.round(outer).astype(np.int32)], 1)
    cv2.fillPoly(lips, [np.round(inner).astype(np.int32)], 0)  # teeth are not lips
    chin = np.zeros_like(lips)
    chin[int(y1) + 4 : int(y1) + 16, int(x0) : int(x1)] = 1
    assert redness[lips == 1].mean() > 1.2 * redness[chin == 1].mean()


def test_aperture_follows_the_warp_schedule(warped_clip):
    _, landmarks, _ = warped_clip
    assert landmarks.missing_frames == []
    aperture = landmarks.main.mouth_aperture()
    assert np.corrcoef(aperture, SCHEDULE)[0, 1] > 0.95
    assert aperture[SCHEDULE == 1.0].min() > aperture[SCHEDULE == 0.0].max() + 0.15


def test_latent_mask_marks_the_mouth_cells(warped_clip):
    frames, landmarks, truth = warped_clip
    track = landmarks.main
    pixel = pixel_mask(track, 512, 512, margin=0.1)
    latent = latent_mask(pixel)
    assert latent.shape == (1 + (len(frames) - 1) // 4, 64, 64)
    for k in range(latent.shape[0]):
        group = [0] if k == 0 else list(range(4 * k - 3, 4 * k + 1))
        # Every cell whose centre is inside the true (warped) lips of any frame of the group is set...
        must = np.zeros((64, 64), bool)
        allowed = np.zeros((64, 64), bool)
        centres = np.arange(64) * 8 + 4
        for t in group:
            x0, y0, x1, y1 = truth[t]
            must |= ((centres[:, None] > y0) & (centres[:, None] < y1)) & ((centres[None] > x0) & (centres[None] < x1))
            # ...and no cell lies farther than the margin plus a cell from them.
            pad = 0.1 * (x1 - x0) + 10
            allowed |= ((centres[:, None] > y0 - pad) & (centres[:, None] < y1 + pad)) & (
                (centres[None] > x0 - pad) & (centres[None] < x1 + pad)
            )
        cells = latent[k].numpy() > 0
        assert must.any() and cells[must].all(), f"latent frame {k} misses mouth cells"
        assert not cells[~allowed].any(), f"latent frame {k} marks cells off the mouth"
    # The token grid halves the latent grid (patch 1, 2, 2) and keeps any marked cell.
    tokens = token_mask(latent, (1, 2, 2))
    assert tokens.shape == (latent.shape[0], 32, 32)
    assert torch.equal(tokens, F.max_pool2d(latent, 2))


def test_latent_grid_matches_the_wan_vae_causality():
    """A tiny random diffusers AutoencoderKLWan is the oracle: changing pixel frame j first
    changes the latent frame our mask maps j to; a trailing frame outside a full group of 4
    changes nothing (the encoder drops it)."""
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLWan(base_dim=4, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1).eval()
    frames = 6
    video = torch.randn(1, 3, frames, 8, 8)
    with torch.no_grad():
        reference = vae.encode(video).latent_dist.mean
    for j in (0, 1, 4, 5):
        one_frame = torch.zeros(frames, 16, 16)  # the mask's own frame size; only time matters here
        one_frame[j, 3, 11] = 1
        ours = latent_mask(one_frame)
        assert ours.shape[0] == reference.shape[2]
        perturbed = video.clone()
        perturbed[:, :, j] += 1
        with torch.no_grad():
            changed = (vae.encode(perturbed).latent_dist.mean - reference).abs().amax(dim=(0, 1, 3, 4)) > 1e-6
        marked = ours.amax(dim=(1, 2)) > 0
        if marked.any():
            first = int(marked.nonzero()[0])
            assert changed[first] and not changed[:first].any() and marked.sum() == 1
            assert ours[first, 3 // 8, 11 // 8] == 1
        else:
            assert not changed.any()


def test_polygon_mask_is_inside_the_box(astronaut):
    track = detect_face_landmarks(astronaut, video=False).main
    box = pixel_mask(track, 512, 512, shape="box", smooth_sigma=0)
    polygon = pixel_mask(track, 512, 512, shape="polygon", smooth_sigma=0)
    assert 0 < polygon.sum() < box.sum()
    assert (polygon <= box).all()


def test_missing_faces_are_reported_not_raised(astronaut):
    blank = np.full_like(astronaut, 127)
    frames = np.stack([astronaut, blank, blank, blank, blank, astronaut])
    masks = extract_mouth_masks(frames, video=True)
    assert masks.landmarks.missing_frames == [1, 2, 3, 4]
    assert masks.pixel[0].sum() > 0 and masks.pixel[5].sum() > 0
    assert masks.pixel[1:5].sum() == 0  # a gap longer than max_gap is not bridged
    nothing = extract_mouth_masks(blank[None].repeat(2, 0), video=True)
    assert nothing.landmarks.missing_frames == [0, 1] and nothing.pixel.sum() == 0


def test_largest_or_all_faces(astronaut):
    face = astronaut[40:240, 125:325]
    canvas = np.full((256, 512, 3), 200, np.uint8)
    canvas[28:228, 20:220] = face
    canvas[60:200, 320:460] = cv2.resize(face, (140, 140), interpolation=cv2.INTER_AREA)
    everyone = detect_face_landmarks(canvas, video=False, faces="all")
    largest = detect_face_landmarks(canvas, video=False, faces="largest")
    assert len(everyone.tracks) == 2 and len(largest.tracks) == 1
    centres = [track.lips[0].mean(axis=0)[0] for track in everyone.tracks]
    assert centres[0] < 220 < 320 < centres[1]  # the big face (left) first
    np.testing.assert_allclose(largest.main.lips[0], everyone.main.lips[0], atol=1.0)


def test_shipped_face_model_finds_the_recorded_legacy_points(astronaut):
    """The Tasks backend with the shipped model (the only one newer mediapipe has) finds
    the points the legacy face mesh of 0.10.21 found: same networks, same image crop."""
    recorded = np.array(json.loads(LEGACY_RECORD.read_text())["points"])
    result = detect_face_landmarks(astronaut, video=False, backend="tasks")
    assert result.backend == "tasks" and result.main.points.shape == (1, 468, 2)
    assert np.linalg.norm(result.main.points[0] - recorded, axis=-1).max() < 0.05  # pixels


@needs_legacy
def test_recorded_legacy_points_are_current(astronaut):
    recorded = np.array(json.loads(LEGACY_RECORD.read_text())["points"])
    live = detect_face_landmarks(astronaut, video=False, backend="legacy").main.points[0]
    assert np.abs(live - recorded).max() < 0.002


@needs_legacy
def test_legacy_and_tasks_track_a_video_alike(warped_clip):
    """In video mode the two track the face slightly differently (the Tasks graph builds
    the next frame's crop its own way), but the lips agree to about a pixel."""
    frames, legacy, _ = warped_clip
    tasks = detect_face_landmarks(frames, video=True, backend="tasks")
    assert legacy.backend == "legacy" and tasks.missing_frames == []
    gap = np.linalg.norm(tasks.main.lips - legacy.main.lips, axis=-1)  # [T, 40] pixels
    assert gap.mean() < 1.5 and gap.max() < 8
    assert np.corrcoef(tasks.main.mouth_aperture(), SCHEDULE)[0, 1] > 0.95


def test_backend_and_face_model_choice(tmp_path):
    default = ("legacy", None) if HAS_LEGACY else ("tasks", str(face_model.SHIPPED))
    assert resolve_backend("auto") == resolve_backend("auto", "built-in") == default
    assert resolve_backend("tasks") == ("tasks", str(face_model.SHIPPED))
    own = tmp_path / "my_face_landmarker.task"
    own.write_bytes(face_model.SHIPPED.read_bytes())
    assert resolve_backend("auto", str(own)) == ("tasks", str(own))
    with pytest.raises(FileNotFoundError, match="not found at .*missing.task"):
        resolve_backend("auto", str(tmp_path / "missing.task"))
    with pytest.raises(ValueError, match="needs 'tasks' or 'auto'"):
        resolve_backend("legacy", str(own))
    if not HAS_LEGACY:
        with pytest.raises(RuntimeError, match="removed in 0.10.30"):
            resolve_backend("legacy")
    # A file that is not a model reaches mediapipe's Tasks loader (so the options we build
    # are accepted) and comes back as a clear error.
    broken = tmp_path / "broken.task"
    broken.write_bytes(b"not a model" * 100)
    with pytest.raises(RuntimeError, match="could not load .*face_landmarker.task"):
        detect_face_landmarks(np.zeros((8, 8, 3), np.uint8), model_path=str(broken))


def _networks(task: Path) -> dict[str, bytes]:
    """The bundle's members, each network re-packed by one flatbuffers writer, so that two
    bundles compare by what their networks hold, not by how a writer laid them out."""
    import flatbuffers
    from mediapipe.tasks.metadata import schema_py_generated as tfl

    members = {}
    raw = task.read_bytes()
    with zipfile.ZipFile(task) as bundle:
        for info in bundle.infolist():
            # Where the member's data starts: after its local header (30 bytes), name and extra field.
            name_length, extra_length = struct.unpack_from("<HH", raw, info.header_offset + 26)
            assert (info.header_offset + 30 + name_length + extra_length) % face_model.ALIGNMENT == 0  # mapped in place
            model = tfl.ModelT.InitFromPackedBuf(bytearray(bundle.read(info)), 0)
            builder = flatbuffers.Builder(0)
            builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
            members[info.filename] = bytes(builder.Output())
            assert info.compress_type == zipfile.ZIP_STORED
    return members


def test_shipped_face_model_is_what_the_builder_makes(tmp_path):
    import mediapipe

    if mediapipe.__version__ != face_model.SOURCE_VERSION:
        pytest.skip(f"the face model is built from mediapipe=={face_model.SOURCE_VERSION}'s files")
    built = tmp_path / "face_landmarker.task"
    assert face_model.main([str(built)]) == 0
    shipped = _networks(face_model.SHIPPED)
    assert list(shipped) == ["face_detector.tflite", "face_landmarks_detector.tflite"]
    assert _networks(built) == shipped
    assert face_model.main([str(built)]) == 2  # never replaces a file without --overwrite


def test_mouth_weighted_loss_values():
    pred = torch.zeros(1, 2, 1, 2, 2)
    target = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 1, 2, 2).repeat(1, 2, 1, 1, 1)
    target[:, 1] *= -1  # squared errors per channel: 1, 4, 9, 16
    mask = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]])  # the cell with error 4
    # mean over 8 elements of (1 + 3 * M) * e: (1 + 4*4 + 9 + 16) * 2 / 8
    assert mouth_weighted_flow_loss(pred, target, mask, 3.0).item() == pytest.approx((1 + 16 + 9 + 16) * 2 / 8)
    assert mouth_weighted_flow_loss(pred, target, mask, 0.0).item() == pytest.approx(F.mse_loss(pred, target).item())
    assert mouth_weighted_flow_loss(pred, target, None, 5.0).item() == pytest.approx(30 / 4)
    # A shared [T, H, W] mask equals its batched form.
    assert mouth_weighted_flow_loss(pred, target, mask[0], 3.0) == mouth_weighted_flow_loss(pred, target, mask, 3.0)


def test_mouth_loss_takes_a_token_grid_mask():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 16, 3, 8, 8), torch.randn(2, 16, 3, 8, 8)
    latent = (torch.rand(2, 3, 8, 8) > 0.7).float()
    tokens = token_mask(latent, (1, 2, 2))  # [2, 3, 4, 4]
    expanded = tokens.repeat_interleave(2, 2).repeat_interleave(2, 3)
    by_hand = ((1 + 5 * expanded[:, None]) * (pred - target) ** 2).mean()
    torch.testing.assert_close(mouth_weighted_flow_loss(pred, target, tokens, 5.0), by_hand)
    with pytest.raises(ValueError, match="fits neither"):
        mouth_weighted_flow_loss(pred, target, torch.ones(2, 3, 3, 3), 5.0)


def _tone(envelope: np.ndarray, fps: float, sample_rate: int = 16000) -> np.ndarray:
    """A 220 Hz tone whose amplitude follows ``envelope`` (one value per video frame)."""
    n = int(len(envelope) * sample_rate / fps)
    t = np.arange(n) / sample_rate
    amplitude = np.interp(t, (np.arange(len(envelope)) + 0.5) / fps, envelope)
    return (amplitude * np.sin(2 * np.pi * 220 * t))[None]


def test_sync_score_finds_zero_and_known_shift(warped_clip):
    _, landmarks, _ = warped_clip
    aperture = landmarks.main.mouth_aperture()
    fps = 25.0
    matching = audio_envelope(_tone(SCHEDULE, fps), 16000, fps, len(SCHEDULE))
    in_sync = sync_score(aperture, matching, max_offset=6)
    assert in_sync.offset_frames == 0 and in_sync.confidence > 0.5
    shift = 3  # the sound comes 3 frames late
    delayed = np.concatenate([np.zeros(shift), SCHEDULE[:-shift]])
    late = sync_score(aperture, audio_envelope(_tone(delayed, fps), 16000, fps, len(SCHEDULE)), max_offset=6)
    assert late.offset_frames == shift
    early = np.concatenate([SCHEDULE[2:], np.zeros(2)])
    assert sync_score(aperture, audio_envelope(_tone(early, fps), 16000, fps, len(SCHEDULE)), max_offset=6).offset_frames == -2


def test_audio_envelope_is_rms_per_frame():
    wave = np.concatenate([np.full(640, 0.5), -np.full(640, 0.25), np.zeros(320)])[None]
    np.testing.assert_allclose(audio_envelope(wave, 16000, 25.0, 4)[:2], [0.5, 0.25])
    envelope = audio_envelope(wave, 16000, 25.0, 4)
    assert envelope[2] == 0.0 and np.isnan(envelope[3])  # half a frame of silence, then no audio


def test_preview_draws_mask_landmarks_and_box(astronaut):
    masks = extract_mouth_masks(astronaut, video=False)
    preview = render_preview(astronaut, masks.pixel, masks.landmarks.tracks, masks.boxes)
    assert preview.shape == (1, 512, 512, 3) and preview.dtype == np.uint8
    x0, y0, x1, y1 = (int(round(v)) for v in masks.boxes[0][0])
    inside = masks.pixel[0].numpy() > 0
    changed = np.abs(preview[0].astype(int) - astronaut.astype(int)).sum(-1) > 0
    assert changed[inside].mean() > 0.95  # the tint covers the mask
    # Outside the box (and away from its outline) the picture is untouched.
    outside = np.ones_like(inside)
    outside[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3] = False
    assert not changed[outside].any()
    # The box outline is yellow-ish: red and green high, blue low.
    r, g, b = preview[0, y0, (x0 + x1) // 2].astype(int)
    assert r > 200 and g > 180 and b < 120
