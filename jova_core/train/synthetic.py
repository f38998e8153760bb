"""Synthetic talking-face clips that need no download.

A real face (scikit-image's bundled astronaut photo) whose mouth is warped open and
closed, with speech-like audio whose loudness follows that same opening, and a
transcript naming the syllables. Syllable count, timing, pitch, vowels and consonants
are random per clip, so text, sound and mouth vary together: a tiny stand-in for a
talking-head data set, for demos, smoke tests of training and lip-sync checks.

Audio: each vowel is additive synthesis of a glottal-like harmonic series (1/k tilt)
at the syllable's pitch, shaped by the vowel's first three formant resonances; its
amplitude IS the mouth-opening envelope. Consonants add what they sound like: a
burst (b d g p t k; aspiration after the voiceless ones), a low nasal murmur with the
lips shut (m n), a lateral (l) or a hiss (s).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..mouth.landmarks import INNER_LIP, LIP_INDICES, LOWER_INNER, UPPER_INNER, detect_face_landmarks

# Vowel -> (formants F1, F2, F3 in Hz, mouth openness 0..1 at its peak).
VOWELS: dict[str, tuple[tuple[float, float, float], float]] = {
    "a": ((800.0, 1250.0, 2600.0), 1.0),
    "o": ((520.0, 880.0, 2450.0), 0.75),
    "e": ((480.0, 1850.0, 2550.0), 0.65),
    "u": ((330.0, 800.0, 2300.0), 0.5),
    "i": ((300.0, 2250.0, 3000.0), 0.4),
}
FORMANT_BANDWIDTHS = (90.0, 110.0, 170.0)

# Consonant -> (kind, duration s, mouth openness during it, noise band Hz).
CONSONANTS: dict[str, tuple[str, float, float, tuple[float, float]]] = {
    "b": ("voiced_stop", 0.03, 0.0, (500.0, 1500.0)),
    "d": ("voiced_stop", 0.03, 0.1, (3000.0, 5000.0)),
    "g": ("voiced_stop", 0.03, 0.15, (1500.0, 2800.0)),
    "p": ("voiceless_stop", 0.07, 0.0, (500.0, 1500.0)),
    "t": ("voiceless_stop", 0.07, 0.1, (3000.0, 6000.0)),
    "k": ("voiceless_stop", 0.07, 0.15, (1500.0, 3000.0)),
    "m": ("nasal", 0.08, 0.0, (0.0, 0.0)),
    "n": ("nasal", 0.07, 0.1, (0.0, 0.0)),
    "l": ("lateral", 0.06, 0.25, (0.0, 0.0)),
    "s": ("fricative", 0.10, 0.12, (4000.0, 7500.0)),
}
NASAL_FORMANTS = (250.0, 1200.0, 2300.0)
LATERAL_FORMANTS = (360.0, 1300.0, 2700.0)

VIDEO_CAPTION = (
    "A close-up of a smiling woman astronaut with short brown hair, in a white spacesuit "
    "in front of an American flag, talking to the camera; her mouth opens and closes as she speaks."
)


@dataclass
class Syllable:
    consonant: str
    vowel: str
    onset: float  # seconds: start of the consonant
    duration: float  # seconds: consonant + vowel
    pitch: float  # Hz at the vowel's start

    @property
    def text(self) -> str:
        return self.consonant + self.vowel


@dataclass
class TalkingClip:
    frames: torch.Tensor  # [T, H, W, 3] float32 0..1
    waveform: torch.Tensor  # [1, N] float32
    sample_rate: int
    fps: float
    transcript: str
    syllables: list[Syllable]
    mouth_open: torch.Tensor  # [T] openness 0..1 the frames were warped with
    mouth_boxes: torch.Tensor  # [T, 4] x0, y0, x1, y1: the lips (parted as warped), pixels
    video_caption: str = VIDEO_CAPTION
    audio_caption: str = field(default="")


# ---------------------------------------------------------------------------- video


@functools.lru_cache(maxsize=1)
def astronaut_face() -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 [512, 512, 3], face-mesh points [468, 2]) of scikit-image's astronaut,
    found once with the landmark detector and cached."""
    from skimage.data import astronaut

    image = astronaut()
    result = detect_face_landmarks(image, video=False)
    if result.missing_frames:
        raise RuntimeError("the face landmark detector found no face on scikit-image's astronaut photo")
    return image, result.main.points[0]


def _mouth_geometry(image_shape, mouth) -> tuple[float, float, np.ndarray, float]:
    """(left corner x, right corner x, seam as (xs, ys) samples [2, K], resting inner gap
    in pixels) from face points [468, 2], lip points [40, 2] (LIP_INDICES order) or a box."""
    mouth = np.asarray(mouth, dtype=np.float64)
    if mouth.shape == (4,):
        x0, y0, x1, y1 = mouth
        centre_y = (y0 + y1) / 2
        return x0, x1, np.array([[x0, x1], [centre_y, centre_y]]), 0.0
    if mouth.ndim == 2 and mouth.shape[0] > len(LIP_INDICES):
        mouth = mouth[list(LIP_INDICES)]
    if mouth.shape != (len(LIP_INDICES), 2):
        raise ValueError(f"mouth must be a box (x0, y0, x1, y1), lip points [40, 2] or face points [468, 2]; got shape {mouth.shape}")
    inner = mouth[len(INNER_LIP) :]
    half = len(INNER_LIP) // 2
    upper = inner[: half + 1]  # left inner corner -> right inner corner along the upper lip
    lower = np.concatenate([inner[half:], inner[:1]])[::-1]  # left -> right along the lower lip
    xs = np.linspace(inner[0, 0], inner[half, 0], 16)
    seam = (np.interp(xs, *upper[np.argsort(upper[:, 0])].T) + np.interp(xs, *lower[np.argsort(lower[:, 0])].T)) / 2
    upper_mid = inner[INNER_LIP.index(UPPER_INNER)]
    lower_mid = inner[INNER_LIP.index(LOWER_INNER)]
    return mouth[0, 0], mouth[len(INNER_LIP) // 2, 0], np.stack([xs, seam]), float(np.linalg.norm(lower_mid - upper_mid))


def warp_mouth(
    image: np.ndarray, mouth, openness: float, max_gap: float = 0.45, jaw_share: float = 0.75
) -> tuple[np.ndarray, np.ndarray]:
    """Open (or close) the mouth of an upright face by warping the image around the lips.

    image: [H, W, 3] uint8 or float. mouth: face points [468, 2], lip points [40, 2]
    (outer then inner contour, ``LIP_INDICES`` order) or a box (x0, y0, x1, y1).
    openness: 0 = lips together, 1 = inner-lip gap of ``max_gap`` x mouth width.
    The lips part along the seam between them with a lens-shaped gap (widest in the
    middle, shut at the corners): the lower lip and chin move by ``jaw_share`` of the
    change, the upper lip by the rest, and the displacement fades out towards the neck
    and the nose; the opening shows a dark mouth cavity. Returns (warped image, mouth
    box [4] x0, y0, x1, y1 of the parted lips).
    """
    if not 0.0 <= openness <= 1.0:
        raise ValueError(f"openness must be in [0, 1], got {openness}")
    height, width = image.shape[:2]
    left, right, seam, rest_gap = _mouth_geometry(image.shape, mouth)
    mouth_width = right - left
    centre_x, half_width = (left + right) / 2, mouth_width / 2
    change = openness * max_gap * mouth_width - rest_gap  # how much wider (or narrower) the gap gets
    # Vertical extents (pixels) where lips move rigidly, then where the motion fades to 0.
    rigid_low, fade_low = 0.45 * mouth_width, 0.6 * mouth_width
    rigid_up, fade_up = 0.15 * mouth_width, 0.25 * mouth_width

    x0, x1 = int(max(0, np.floor(left - 2))), int(min(width, np.ceil(right + 3)))
    seam_top, seam_bottom = seam[1].min(), seam[1].max()
    y0 = int(max(0, np.floor(seam_top - rigid_up - fade_up - 2)))
    y1 = int(min(height, np.ceil(seam_bottom + rigid_low + fade_low + 3)))
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    seam_y = np.interp(xs, seam[0], seam[1])
    u = np.clip((xs - centre_x) / half_width, -1.0, 1.0)
    profile = (1.0 - u**2) ** 0.6  # lens: widest in the middle, 0 at the corners
    down = jaw_share * change * profile  # lower lip displacement (negative: moves up)
    up = (1.0 - jaw_share) * change * profile

    offset = ys - seam_y  # signed distance from the seam in the output, + is down
    below = offset >= 0
    side_move = np.where(below, down, up)
    rigid = np.where(below, rigid_low, rigid_up)
    fade = np.where(below, fade_low, fade_up)
    distance = np.abs(offset)
    # Backward map: output distance -> source distance from the seam on the same side.
    source = np.where(
        distance < rigid + side_move,
        distance - side_move,
        rigid + (distance - rigid - side_move) * fade / np.maximum(fade - side_move, 1e-6),
    )
    source = np.where(distance > rigid + fade, distance, source)
    cavity_depth = side_move - distance  # > 0 inside the opened gap
    source_y = seam_y + np.sign(offset + 1e-9) * np.maximum(source, 0.0)

    region = np.ascontiguousarray(image)
    warped = cv2.remap(
        region.astype(np.float32), xs.astype(np.float32), source_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    # Dark mouth cavity, darker towards its middle; anti-aliased 1-pixel edge.
    depth = np.clip(cavity_depth / np.maximum(np.abs(side_move), 1e-6), 0.0, 1.0)
    cavity = np.array([0.32, 0.09, 0.09]) * scale * (1.0 - 0.55 * depth[..., None])
    alpha = np.clip(cavity_depth + 0.5, 0.0, 1.0)[..., None]
    out = image.astype(np.float32, copy=True)
    out[y0:y1, x0:x1] = (1 - alpha) * warped + alpha * cavity
    if image.dtype == np.uint8:
        out = np.clip(out + 0.5, 0, 255)
    lips = np.asarray(mouth, dtype=np.float64)
    if lips.shape == (4,):
        box = lips.copy()
    else:
        lips = lips[list(LIP_INDICES)] if lips.shape[0] > len(LIP_INDICES) else lips
        box = np.concatenate([lips.min(axis=0), lips.max(axis=0)])
    box[1] -= max(0.0, (1.0 - jaw_share) * change) if change > 0 else 0.0
    box[3] += jaw_share * change
    return out.astype(image.dtype), box.astype(np.float32)
