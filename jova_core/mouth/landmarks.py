"""Per-frame face landmarks from mediapipe, tracked across the frames of a video.

Two backends, chosen automatically:

* ``"legacy"``: the face mesh bundled inside mediapipe <= 0.10.21
  (``mp.solutions.face_mesh``).
* ``"tasks"``: the Tasks ``FaceLandmarker`` (the only one left in mediapipe >= 0.10.30)
  with a ``.task`` model file: by default the one the pack ships
  (``jova_core/assets/face_landmarker.task``, built from the networks of the legacy face
  mesh; see ``face_model.py``), or any face_landmarker.task given as ``model_path``.

Neither downloads anything. On a still image both give the same points (within 0.01
pixel); in video mode their tracking differs slightly (about a pixel). Both use the
468-point face mesh topology (Tasks models add 10 iris points after it, dropped here),
so the lip indices below serve both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..io.frames import to_uint8_frames
from .face_model import SHIPPED

# Face-mesh indices of the lip contours, each ordered around its loop, starting at the
# left mouth corner and running along the upper lip first. Together they are exactly
# the 40 points of mediapipe's FACEMESH_LIPS connection set.
OUTER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
LIP_INDICES = OUTER_LIP + INNER_LIP
# Mouth corners (outer contour) and the middle of the inner upper / lower lip edges.
LEFT_CORNER, RIGHT_CORNER = 61, 291
UPPER_INNER, LOWER_INNER = 13, 14

FACE_MESH_POINTS = 468
# model_path for the shipped face_landmarker.task (None means it too).
BUILT_IN = "built-in"


@dataclass
class FaceTrack:
    """One face followed through a video.

    ``points`` [T, K, 2] holds pixel (x, y) of all K mesh points per frame, NaN in
    frames where this face was not found.
    """

    track_id: int
    points: np.ndarray

    @property
    def present(self) -> np.ndarray:  # [T] bool
        return ~np.isnan(self.points[:, 0, 0])

    @property
    def lips(self) -> np.ndarray:  # [T, 40, 2]: outer contour then inner contour
        return self.points[:, list(LIP_INDICES)]

    def mouth_aperture(self) -> np.ndarray:
        """Inner-lip opening divided by mouth width, per frame [T] (NaN where absent).

        Dividing by the width makes it independent of how large the face is in frame.
        """
        gap = np.linalg.norm(self.points[:, UPPER_INNER] - self.points[:, LOWER_INNER], axis=-1)
        width = np.linalg.norm(self.points[:, LEFT_CORNER] - self.points[:, RIGHT_CORNER], axis=-1)
        return gap / np.maximum(width, 1e-6)


@dataclass
class LandmarkResult:
    num_frames: int
    height: int
    width: int
    backend: str
    # Largest face first (by its mean area over the frames where it appears).
    tracks: list[FaceTrack] = field(default_factory=list)
    # Frames in which no face at all was found.
    missing_frames: list[int] = field(default_factory=list)

    @property
    def main(self) -> FaceTrack:
        """The main face; all-NaN when no frame had a face (check ``missing_frames``)."""
        if self.tracks:
            return self.tracks[0]
        empty = np.full((self.num_frames, FACE_MESH_POINTS, 2), np.nan, dtype=np.float32)
        return FaceTrack(track_id=-1, points=empty)


def _face_area(points: np.ndarray) -> float:
    span = points.max(axis=0) - points.min(axis=0)
    return float(span[0] * span[1])


class _LegacyFaceMesh:
    def __init__(self, max_faces: int, video: bool, min_confidence: float):
        from mediapipe.python.solutions import face_mesh  # resolve_backend checked that it exists

        self._mesh = face_mesh.FaceMesh(
            static_image_mode=not video,  # video mode tracks the face instead of re-detecting it
            max_num_faces=max_faces,
            refine_landmarks=False,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )

    def __call__(self, frame: np.ndarray, index: int) -> list[np.ndarray]:
        result = self._mesh.process(frame)
        faces = result.multi_face_landmarks or []
        return [np.array([(p.x, p.y) for p in face.landmark], dtype=np.float32) for face in faces]

    def close(self) -> None:
        self._mesh.close()


class _TasksFaceLandmarker:
    def __init__(self, model_path: str, max_faces: int, video: bool, min_confidence: float, fps: float):
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        self._video = video
        self._frame_ms = 1000.0 / fps
        mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=model_path),
            running_mode=mode,
            num_faces=max_faces,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )
        try:
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        except RuntimeError as error:
            raise RuntimeError(
                f"mediapipe could not load {model_path!r} as a face landmarker ({error}); give a "
                f"face_landmarker.task file, or '{BUILT_IN}' for the model the pack ships"
            ) from error

    def __call__(self, frame: np.ndarray, index: int) -> list[np.ndarray]:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=frame)
        if self._video:
            result = self._landmarker.detect_for_video(image, int(round(index * self._frame_ms)))
        else:
            result = self._landmarker.detect(image)
        return [np.array([(p.x, p.y) for p in face], dtype=np.float32) for face in result.face_landmarks]

    def close(self) -> None:
        self._landmarker.close()


_NO_LEGACY = (
    "this mediapipe has no bundled face mesh (it was removed in 0.10.30): use the 'tasks' "
    "or 'auto' landmark backend, which run the face model the pack ships"
)


def _has_legacy_face_mesh() -> bool:
    """Whether this mediapipe still carries its face mesh (>= 0.10.30 dropped it)."""
    try:
        from mediapipe.python.solutions import face_mesh  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str = "auto", model_path: str | None = None) -> tuple[str, str | None]:
    """Pick the landmark backend: (name, task model path or None).

    model_path: a face_landmarker.task file, or None / "built-in" for the shipped model.
    "auto" takes the bundled legacy face mesh when this mediapipe has one and no file is
    given (it runs the same networks as the shipped model), otherwise the Tasks backend.
    """
    if backend not in ("auto", "legacy", "tasks"):
        raise ValueError(f"backend must be 'auto', 'legacy' or 'tasks', got {backend!r}")
    own_file = model_path not in (None, "", BUILT_IN)
    if backend == "auto":
        backend = "legacy" if not own_file and _has_legacy_face_mesh() else "tasks"
    if backend == "legacy":
        if own_file:
            raise ValueError(f"the 'legacy' landmark backend runs mediapipe's bundled face mesh; {model_path!r} needs 'tasks' or 'auto'")
        if not _has_legacy_face_mesh():
            raise RuntimeError(_NO_LEGACY)
        return backend, None
    path = str(model_path) if own_file else str(SHIPPED)
    if not os.path.isfile(path):
        if own_file:
            raise FileNotFoundError(f"face landmark model not found at {path!r}; give a face_landmarker.task file or '{BUILT_IN}'")
        raise FileNotFoundError(f"the shipped face model {path} is missing: reinstall the pack, or rebuild it with "
                                f"'python -m jova_core.mouth.face_model {path}' (needs mediapipe==0.10.21)")
    return backend, path


def _link_tracks(detections: list[list[np.ndarray]], faces: str) -> list[np.ndarray]:
    """Turn per-frame face lists into tracks [T, K, 2] (NaN where unseen).

    "largest" keeps the largest face of each frame as the one track. "all" links each
    face to the track whose last position is nearest (within half a face size), else
    starts a new track.
    """
    num_frames = len(detections)
    num_points = next((len(f[0]) for f in detections if f), FACE_MESH_POINTS)
    if faces == "largest":
        track = np.full((num_frames, num_points, 2), np.nan, dtype=np.float32)
        for t, found in enumerate(detections):
            if found:
                track[t] = max(found, key=_face_area)
        return [track] if any(detections) else []

    tracks: list[np.ndarray] = []
    last_seen: list[np.ndarray] = []  # last points of each track
    for t, found in enumerate(detections):
        taken: set[int] = set()
        for points in sorted(found, key=_face_area, reverse=True):
            centre, size = points.mean(axis=0), np.sqrt(_face_area(points))
            distances = [
                np.linalg.norm(prev.mean(axis=0) - centre) if i not in taken else np.inf for i, prev in enumerate(last_seen)
            ]
            best = int(np.argmin(distances)) if distances else -1
            if best < 0 or distances[best] > 0.5 * size:
                tracks.append(np.full((num_frames, num_points, 2), np.nan, dtype=np.float32))
                last_seen.append(points)
                best = len(tracks) - 1
            tracks[best][t] = points
            last_seen[best] = points
            taken.add(best)
    return tracks


def detect_face_landmarks(
    frames,
    *,
    video: bool = True,
    faces: str = "largest",
    max_faces: int = 4,
    backend: str = "auto",
    model_path: str | None = None,
    fps: float = 25.0,
    min_confidence: float = 0.5,
    callback: Callable[[int, int], None] | None = None,
) -> LandmarkResult:
    """Face landmarks of every frame, tracked across frames.

    frames: [T, H, W, 3] uint8, or float 0..1 (numpy or torch), or one image [H, W, 3].
    video: True when frames are consecutive (lets the backend track instead of
        re-detecting); False for unrelated images.
    faces: "largest" (one track: the largest face in each frame) or "all".
    backend / model_path: see ``resolve_backend`` (by default the shipped model).
    callback(done, total) is called after each frame; raise from it to stop.
    Frames with no face are listed in ``missing_frames``; they never raise.
    """
    if faces not in ("largest", "all"):
        raise ValueError(f"faces must be 'largest' or 'all', got {faces!r}")
    frames = to_uint8_frames(frames)
    num_frames, height, width = frames.shape[:3]
    backend, model_path = resolve_backend(backend, model_path)
    if backend == "legacy":
        detector = _LegacyFaceMesh(max_faces, video, min_confidence)
    else:
        detector = _TasksFaceLandmarker(model_path, max_faces, video, min_confidence, fps)
    scale = np.array([width, height], dtype=np.float32)
    detections: list[list[np.ndarray]] = []
    try:
        for t, frame in enumerate(frames):
            detections.append([points[:FACE_MESH_POINTS] * scale for points in detector(frame, t)])
            if callback is not None:
                callback(t + 1, num_frames)
    finally:
        detector.close()

    tracks = _link_tracks(detections, faces)
    # Largest face first, measured where each track is present.
    tracks.sort(key=lambda tr: -np.nanmean([_face_area(p) for p in tr if not np.isnan(p[0, 0])]))
    return LandmarkResult(
        num_frames=num_frames,
        height=height,
        width=width,
        backend=backend,
        tracks=[FaceTrack(track_id=i, points=points) for i, points in enumerate(tracks)],
        missing_frames=[t for t, found in enumerate(detections) if not found],
    )
