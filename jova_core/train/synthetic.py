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

from ..io.clip import Clip
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
class TalkingClip(Clip):
    """A synthetic clip (waveform [1, N]) and what it was made from."""

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

    # Sources stay inside the region (x is unchanged, y stays within the faded band).
    region = np.ascontiguousarray(image[y0:y1, x0:x1], dtype=np.float32)
    warped = cv2.remap(
        region, (xs - x0).astype(np.float32), (source_y - y0).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    # Dark mouth cavity, darker towards its middle; anti-aliased 1-pixel edge.
    depth = np.clip(cavity_depth / np.maximum(np.abs(side_move), 1e-6), 0.0, 1.0)
    cavity = np.array([0.32, 0.09, 0.09]) * scale * (1.0 - 0.55 * depth[..., None])
    alpha = np.clip(cavity_depth + 0.5, 0.0, 1.0)[..., None]
    blended = (1 - alpha) * warped + alpha * cavity
    if image.dtype == np.uint8:
        blended = np.clip(blended + 0.5, 0, 255)
    out = image.copy()
    out[y0:y1, x0:x1] = blended
    lips = np.asarray(mouth, dtype=np.float64)
    if lips.shape == (4,):
        box = lips.copy()
    else:
        lips = lips[list(LIP_INDICES)] if lips.shape[0] > len(LIP_INDICES) else lips
        box = np.concatenate([lips.min(axis=0), lips.max(axis=0)])
    box[1] -= max(0.0, (1.0 - jaw_share) * change) if change > 0 else 0.0
    box[3] += jaw_share * change
    return out, box.astype(np.float32)


def _face_crop(face_points: np.ndarray, image_size: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """(x0, y0, side) of a face-centred square crop, jittered per clip in place and zoom."""
    low, high = face_points.min(axis=0), face_points.max(axis=0)
    centre = (low + high) / 2
    side = 1.5 * float((high - low).max()) * rng.uniform(0.92, 1.08)
    centre = centre + rng.uniform(-0.04, 0.04, size=2) * side
    side = min(side, image_size)
    x0, y0 = np.clip(centre - side / 2, 0, image_size - side)
    return float(x0), float(y0), side


def _render_frames(
    openness: np.ndarray, size: int, rng: np.random.Generator, head_motion: float, callback=None
) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 [T, size, size, 3] and mouth boxes [T, 4] (output pixels)."""
    image, points = astronaut_face()
    x0, y0, side = _face_crop(points, image.shape[0], rng)
    # A slow sway of the head (crop window drifting on two sinusoids), in source pixels.
    phase = rng.uniform(0, 2 * np.pi, size=2)
    rate = rng.uniform(0.15, 0.4, size=2)  # cycles per frame / 10
    frames = np.empty((len(openness), size, size, 3), dtype=np.uint8)
    boxes = np.empty((len(openness), 4), dtype=np.float32)
    scale = size / side
    for t, amount in enumerate(openness):
        shift = head_motion * side * np.sin(phase + 2 * np.pi * rate * t / 10)
        cx, cy = x0 + shift[0], y0 + shift[1]
        warped, box = warp_mouth(image, points, float(amount))
        # Crop and resize in one affine step: output pixel centre (i + 0.5) <- source.
        matrix = np.array([[scale, 0, -cx * scale], [0, scale, -cy * scale]], dtype=np.float64)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        if scale < 1:  # INTER_AREA needs a plain resize: crop on whole pixels, then resize
            ix, iy, iside = int(round(cx)), int(round(cy)), int(round(side))
            frames[t] = cv2.resize(warped[iy : iy + iside, ix : ix + iside], (size, size), interpolation=interpolation)
            cx, cy, scale_t = ix, iy, size / iside
        else:
            frames[t] = cv2.warpAffine(warped, matrix, (size, size), flags=interpolation, borderMode=cv2.BORDER_REFLECT)
            scale_t = scale
        boxes[t] = (box - np.array([cx, cy, cx, cy])) * scale_t
        if callback is not None:
            callback(t + 1, len(openness))
    return frames, boxes


# ---------------------------------------------------------------------------- audio


def _formant_gain(freq: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Magnitude of a cascade of 2-pole resonators (unit gain at 0 Hz) at ``freq``.

    freq [N], formants [N, 3] (per-sample formant frequencies)."""
    gain = np.ones_like(freq)
    for i, bandwidth in enumerate(FORMANT_BANDWIDTHS):
        centre = formants[:, i]
        gain *= centre**2 / np.sqrt((centre**2 - freq**2) ** 2 + (bandwidth * freq) ** 2)
    return gain


def _voiced(f0: np.ndarray, formants: np.ndarray, amplitude: np.ndarray, sample_rate: int) -> np.ndarray:
    """Harmonic series at pitch f0 [N] (1/k glottal tilt) through formants [N, 3], times
    amplitude [N]. Additive, so nothing aliases: harmonics above Nyquist are skipped."""
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    out = np.zeros_like(f0)
    active = amplitude > 0
    if not active.any():
        return out
    for k in range(1, int(sample_rate / 2 / f0[active].min()) + 1):
        freq = k * f0
        below_nyquist = freq < 0.48 * sample_rate
        out += np.where(below_nyquist, _formant_gain(freq, formants) / k, 0.0) * np.sin(k * phase)
    out *= amplitude
    return out


def _band_noise(rng: np.random.Generator, length: int, band: tuple[float, float], sample_rate: int) -> np.ndarray:
    """White noise kept only within ``band`` (Hz), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    spectrum[(freqs < band[0]) | (freqs > band[1])] = 0.0
    noise = np.fft.irfft(spectrum, n=length)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-9)


def _vowel_shape(n: int) -> np.ndarray:
    """Opening of the mouth (and loudness) over a vowel: quick rise, slower fall."""
    u = (np.arange(n) + 0.5) / n
    # Starts and ends with zero slope, so the voice fades in and out without a click.
    return np.sin(np.pi * u**0.8) ** 1.5


def _plan_syllables(rng: np.random.Generator, seconds: float) -> tuple[list[Syllable], list[int]]:
    """Random syllables filling the clip, and word lengths (in syllables) for the transcript."""
    rate = rng.uniform(2.0, 4.5)  # syllables per second while speaking
    base_pitch = rng.uniform(95.0, 230.0)
    time = rng.uniform(0.1, 0.4)
    syllables: list[Syllable] = []
    words: list[int] = []
    while True:
        word_length = int(rng.integers(1, 4))
        planned = []
        for _ in range(word_length):
            consonant = str(rng.choice(list(CONSONANTS)))
            vowel = str(rng.choice(list(VOWELS)))
            vowel_seconds = rng.uniform(0.6, 1.0) / rate - CONSONANTS[consonant][1]
            vowel_seconds = max(vowel_seconds, 0.08)
            duration = CONSONANTS[consonant][1] + vowel_seconds
            if time + duration > seconds - 0.1:
                break
            # Pitch: the speaker's base, a random accent, and a fall over the utterance.
            pitch = base_pitch * 2 ** rng.normal(0.0, 0.12) * (1 - 0.12 * time / seconds)
            planned.append(Syllable(consonant, vowel, float(time), float(duration), float(pitch)))
            time += duration + rng.uniform(0.0, 0.06)
        if planned:
            syllables += planned
            words.append(len(planned))
        if len(planned) < word_length:
            break
        time += rng.uniform(0.05, 0.35)  # pause between words
    return syllables, words


def _synthesise(
    syllables: list[Syllable], seconds: float, sample_rate: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(waveform [N], mouth openness per sample [N]) for the planned syllables."""
    n = int(round(seconds * sample_rate))
    openness = np.zeros(n)
    voiced_amplitude = np.zeros(n)
    f0 = np.full(n, 100.0)
    formants = np.tile(np.array(VOWELS["a"][0]), (n, 1))
    noise = np.zeros(n)
    for syllable in syllables:
        kind, c_seconds, c_open, band = CONSONANTS[syllable.consonant]
        start = int(syllable.onset * sample_rate)
        vowel_start = start + int(c_seconds * sample_rate)
        end = min(n, int((syllable.onset + syllable.duration) * sample_rate))
        if end <= vowel_start:
            continue
        vowel_formants, vowel_open = VOWELS[syllable.vowel]
        shape = _vowel_shape(end - vowel_start)
        # The vowel's loudness IS its mouth opening: one envelope drives both (the mouth
        # also eases out of the consonant's posture, which makes no sound).
        envelope = vowel_open * shape
        voiced_amplitude[vowel_start:end] = envelope
        openness[vowel_start:end] = np.maximum(envelope, c_open * (1 - np.arange(end - vowel_start) / (end - vowel_start)))
        # Pitch falls a little through the syllable, with a slight wobble.
        span = np.arange(start, end) - start
        f0[start:end] = syllable.pitch * (1 - 0.06 * span / max(1, end - start)) * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * span / sample_rate))
        formants[vowel_start:end] = vowel_formants
        consonant = slice(start, vowel_start)
        length = vowel_start - start
        openness[consonant] = c_open
        if kind in ("voiced_stop", "voiceless_stop"):
            burst = min(length, int(0.012 * sample_rate))
            noise[start : start + burst] += 0.5 * vowel_open * _band_noise(rng, burst, band, sample_rate) * np.hanning(burst)
            if kind == "voiceless_stop":  # aspiration before voicing starts
                aspiration = slice(start + burst, vowel_start)
                count = vowel_start - start - burst
                noise[aspiration] += 0.12 * _band_noise(rng, count, (1000.0, 3500.0), sample_rate) * np.hanning(count)
            else:  # voiced: a quiet voice bar under the closure
                voiced_amplitude[consonant] = 0.08 * np.hanning(length) ** 0.3  # tapered: a step would click
                formants[consonant] = NASAL_FORMANTS
        elif kind == "nasal":
            voiced_amplitude[consonant] = 0.25 * np.hanning(length) ** 0.3
            formants[consonant] = NASAL_FORMANTS
        elif kind == "lateral":
            voiced_amplitude[consonant] = 0.35 * np.hanning(length) ** 0.5
            formants[consonant] = LATERAL_FORMANTS
        else:  # fricative
            noise[consonant] += 0.18 * _band_noise(rng, length, band, sample_rate) * np.hanning(length) ** 0.5
    # Formants glide between segments instead of jumping (~15 ms).
    glide = np.hanning(int(0.015 * sample_rate) | 1)
    glide /= glide.sum()
    formants = np.stack([np.convolve(np.pad(col, len(glide) // 2, mode="edge"), glide, mode="valid") for col in formants.T], axis=1)
    waveform = _voiced(f0, formants, voiced_amplitude, sample_rate) + noise
    # Lips cannot jump: smooth the opening over ~30 ms.
    lips = np.hanning(int(0.03 * sample_rate) | 1)
    openness = np.convolve(openness, lips / lips.sum(), mode="same")
    peak = np.abs(waveform).max()
    return (0.8 * waveform / peak if peak > 0 else waveform), np.clip(openness, 0.0, 1.0)


def _audio_caption(syllables: list[Syllable], seconds: float) -> str:
    if not syllables:
        return "Silence."
    pitch = float(np.median([s.pitch for s in syllables]))
    register = "low" if pitch < 130 else "high" if pitch > 180 else "medium"
    rate = len(syllables) / max(seconds, 1e-6)
    pace = "slowly" if rate < 2.2 else "quickly" if rate > 3.5 else "steadily"
    return f"A {register}-pitched synthetic voice {pace} says {len(syllables)} short syllables, with no background noise."


def make_talking_clip(
    seed: int,
    seconds: float = 2.0,
    fps: float = 24.0,
    size: int = 128,
    sample_rate: int = 16000,
    head_motion: float = 0.015,
    callback=None,
) -> TalkingClip:
    """A random talking-astronaut clip: frames, matching speech audio and its transcript.

    The same seed always gives the same clip. size: side of the square frames (pixels);
    head_motion: amplitude of a slow head sway as a fraction of the crop (0: still).
    callback(done, total) is called per rendered frame; raise from it to stop.
    """
    if seconds <= 0 or fps <= 0 or size < 32:
        raise ValueError(f"need seconds > 0, fps > 0 and size >= 32, got {seconds}, {fps}, {size}")
    rng = np.random.default_rng(seed)
    syllables, words = _plan_syllables(rng, seconds)
    waveform, openness = _synthesise(syllables, seconds, sample_rate, rng)
    num_frames = max(1, int(round(seconds * fps)))
    # Mouth opening of each video frame: the mean over the samples the frame spans.
    bounds = np.round(np.arange(num_frames + 1) * sample_rate / fps).astype(np.int64).clip(0, len(openness))
    mouth_open = np.array([openness[a:b].mean() if b > a else 0.0 for a, b in zip(bounds[:-1], bounds[1:])])
    frames, boxes = _render_frames(mouth_open, size, rng, head_motion, callback)
    texts, i = [], 0
    for length in words:
        texts.append("".join(s.text for s in syllables[i : i + length]))
        i += length
    return TalkingClip(
        frames=torch.from_numpy(frames.astype(np.float32) / 255.0),
        waveform=torch.from_numpy(waveform.astype(np.float32))[None],
        sample_rate=sample_rate,
        fps=fps,
        transcript=" ".join(texts),
        syllables=syllables,
        mouth_open=torch.from_numpy(mouth_open.astype(np.float32)),
        mouth_boxes=torch.from_numpy(boxes),
        audio_caption=_audio_caption(syllables, seconds),
    )
