"""Synthetic talking-face clips: mouth, sound and transcript vary together."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mediapipe")
pytest.importorskip("skimage")

from jova_core.lipsync import audio_envelope, sync_score  # noqa: E402
from jova_core.mouth import detect_face_landmarks  # noqa: E402
from jova_core.train.synthetic import CONSONANTS, VOWELS, astronaut_face, make_talking_clip, warp_mouth  # noqa: E402


@pytest.fixture(scope="module")
def clip():
    return make_talking_clip(seed=3, seconds=2.0, fps=24, size=128)


def test_clip_layout_and_determinism(clip):
    assert clip.frames.shape == (48, 128, 128, 3) and clip.frames.dtype == torch.float32
    assert 0.0 <= clip.frames.min() and clip.frames.max() <= 1.0
    assert clip.waveform.shape == (1, 32000) and clip.sample_rate == 16000
    assert clip.mouth_open.shape == (48,) and clip.mouth_boxes.shape == (48, 4)
    again = make_talking_clip(seed=3, seconds=2.0, fps=24, size=128)
    assert torch.equal(again.frames, clip.frames) and torch.equal(again.waveform, clip.waveform)
    other = make_talking_clip(seed=4, seconds=2.0, fps=24, size=128)
    assert other.transcript != clip.transcript and not torch.equal(other.waveform, clip.waveform)


def test_transcript_names_the_syllables(clip):
    assert clip.syllables, "a 2 s clip should hold some syllables"
    assert clip.transcript.replace(" ", "") == "".join(s.consonant + s.vowel for s in clip.syllables)
    assert all(s.consonant in CONSONANTS and s.vowel in VOWELS for s in clip.syllables)
    onsets = [s.onset for s in clip.syllables]
    assert onsets == sorted(onsets)
    assert all(a.onset + a.duration <= b.onset for a, b in zip(clip.syllables, clip.syllables[1:]))
    assert clip.syllables[-1].onset + clip.syllables[-1].duration <= 2.0
    seeds = [make_talking_clip(seed=s, seconds=2.0, fps=24, size=32) for s in range(4)]
    assert len({len(c.syllables) for c in seeds} | {len(clip.syllables)}) > 1  # counts vary


def test_sound_follows_the_mouth(clip):
    envelope = audio_envelope(clip.waveform, clip.sample_rate, clip.fps, len(clip.frames))
    assert np.corrcoef(envelope, clip.mouth_open.numpy())[0, 1] > 0.8
    # Silence between syllables: the quietest frames are where the mouth is shut.
    shut = clip.mouth_open.numpy() < 0.02
    assert shut.any() and envelope[shut].mean() < 0.2 * envelope[~shut].mean()


def test_vowel_pitch_is_the_syllables_pitch(clip):
    """Autocorrelation pitch of the middle of each long vowel matches the plan within 6%."""
    wave = clip.waveform[0].numpy()
    checked = 0
    for syllable in clip.syllables:
        vowel_start = syllable.onset + CONSONANTS[syllable.consonant][1]
        middle = vowel_start + 0.5 * (syllable.onset + syllable.duration - vowel_start)
        segment = wave[int((middle - 0.02) * 16000) : int((middle + 0.02) * 16000)]
        segment = segment - segment.mean()
        corr = np.correlate(segment, segment, mode="full")[len(segment) - 1 :]
        lags = np.arange(len(corr))
        valid = (lags > 16000 / 400) & (lags < 16000 / 70)
        f0 = 16000 / lags[valid][np.argmax(corr[valid])]
        assert f0 == pytest.approx(syllable.pitch, rel=0.06)
        checked += 1
    assert checked >= 2


def test_vowel_formants_shape_the_spectrum():
    """'a' (F1 800 Hz) has more energy at 600-1000 Hz than below 450; 'i' (F1 300) the reverse."""
    from jova_core.train.synthetic import _voiced

    n = 8000
    f0 = np.full(n, 120.0)
    ratios = {}
    for vowel in ("a", "i"):
        wave = _voiced(f0, np.tile(VOWELS[vowel][0], (n, 1)), np.ones(n), 16000)
        power = np.abs(np.fft.rfft(wave)) ** 2
        freqs = np.fft.rfftfreq(n, 1 / 16000)
        ratios[vowel] = power[(freqs > 600) & (freqs < 1000)].sum() / power[(freqs > 80) & (freqs < 450)].sum()
    assert ratios["a"] > 1.0 > ratios["i"]


def test_mouth_opens_visibly_at_small_size(clip):
    """At 128x128 the open mouth is a dark hole: the mouth box is darker when open."""
    opening = clip.mouth_open.numpy()
    widest, closed = int(np.argmax(opening)), int(np.argmin(opening))
    assert opening[widest] > 0.5

    def darkness(t: int) -> float:
        x0, y0, x1, y1 = clip.mouth_boxes[t].round().int().tolist()
        return float(clip.frames[t, y0:y1, x0:x1].mean())

    assert darkness(widest) < darkness(closed) - 0.08


def test_detected_aperture_tracks_the_schedule(clip):
    landmarks = detect_face_landmarks(clip.frames, fps=clip.fps)
    assert landmarks.missing_frames == []
    aperture = landmarks.main.mouth_aperture()
    assert np.corrcoef(aperture, clip.mouth_open.numpy())[0, 1] > 0.9
    # The detector finds the mouth where the generator says it is.
    lips = landmarks.main.lips
    centres = clip.mouth_boxes.numpy().reshape(-1, 2, 2).mean(axis=1)
    assert np.abs(lips.mean(axis=1) - centres).max() < 6
    envelope = audio_envelope(clip.waveform, clip.sample_rate, clip.fps, len(clip.frames))
    assert sync_score(aperture, envelope, max_offset=8).offset_frames == 0


def test_warp_mouth_inputs():
    image, points = astronaut_face()
    box = np.array([200.0, 136.0, 248.0, 156.0])
    opened, opened_box = warp_mouth(image, box, 1.0)
    assert opened.dtype == np.uint8 and opened.shape == image.shape
    assert opened_box[3] - opened_box[1] > box[3] - box[1]
    # Only the mouth region changes.
    changed = np.abs(opened.astype(int) - image.astype(int)).sum(-1) > 0
    rows, cols = np.nonzero(changed)
    assert rows.min() > 100 and rows.max() < 200 and cols.min() > 190 and cols.max() < 260
    as_float, _ = warp_mouth(image.astype(np.float32) / 255, points, 0.5)
    assert as_float.dtype == np.float32 and as_float.max() <= 1.0
    with pytest.raises(ValueError, match="openness"):
        warp_mouth(image, points, 1.5)
    with pytest.raises(ValueError, match="box"):
        warp_mouth(image, np.zeros((5, 2)), 0.5)
