"""A SyncNet-free lip-sync score: mouth aperture against the audio's loudness.

Speech is loud while the mouth is open (vowels) and quiet around closures (b, p, m,
pauses), so the per-frame mouth aperture and the per-frame audio envelope rise and
fall together when picture and sound are in sync. The score:

1. aperture[t]: inner-lip opening / mouth width, from face landmarks, per video frame;
2. envelope[t]: RMS of the audio samples that fall within video frame t;
3. for every offset d in -N..N frames, the Pearson correlation of aperture[t] with
   envelope[t + d] over the frames where both exist;
4. offset_frames = the d with the highest correlation (positive: the sound comes d
   frames after the picture), confidence = that peak minus the median correlation
   over all offsets (the same peak-minus-median idea as SyncNet's LSE-C, but on a
   correlation scale: 0 means no preferred offset, up to about 2).

It needs no learned model, so it works on any clip with a visible face, but it only
sees how much the mouth opens, not its shape: use it to compare clips and to find an
offset, not as an absolute quality figure. SyncNet's LSE-C / LSE-D, from the user's own
SyncNet weights, are in jova_core.lipsync.lse.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass
class SyncScore:
    offset_frames: int
    confidence: float
    peak_correlation: float
    # Correlation per offset, for offsets -max_offset..max_offset.
    correlations: list[float]
    # Frames where the aperture was known (a face was found).
    frames_used: int

    def to_dict(self) -> dict:
        return asdict(self)


def audio_envelope(waveform, sample_rate: int, fps: float, num_frames: int) -> np.ndarray:
    """RMS of the audio within each video frame [num_frames] (mono mix of all channels).

    Frame t covers samples [t * sr / fps, (t + 1) * sr / fps); frames past the end of
    the audio get NaN.
    """
    if isinstance(waveform, torch.Tensor):
        waveform = waveform.detach().cpu().numpy()
    waveform = np.asarray(waveform, dtype=np.float64)
    mono = waveform.reshape(-1, waveform.shape[-1]).mean(axis=0)
    bounds = np.round(np.arange(num_frames + 1) * sample_rate / fps).astype(np.int64)
    envelope = np.full(num_frames, np.nan)
    for t in range(num_frames):
        chunk = mono[bounds[t] : min(bounds[t + 1], len(mono))]
        if len(chunk):
            envelope[t] = np.sqrt(np.mean(chunk**2))
    return envelope


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    valid = ~(np.isnan(a) | np.isnan(b))
    if valid.sum() < 3:
        return np.nan
    a, b = a[valid] - a[valid].mean(), b[valid] - b[valid].mean()
    denominator = np.sqrt((a**2).sum() * (b**2).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def min_frames(max_offset: int) -> int:
    """The shortest clip the score takes for a search over +-max_offset frames: every
    offset then still pairs more than half of the clip's frames (and offset 0 at least 5)."""
    return max(2 * max_offset + 1, 5)


def check_clip_length(num_frames: int, max_offset: int, fps: float | None = None) -> None:
    """Refuse (one-line ValueError) an offset search the clip is too short for, rather
    than score a few frames; `fps` only adds seconds to the message."""
    if max_offset < 0:
        raise ValueError(f"the offset search range must be >= 0 frames, got {max_offset}")
    needed = min_frames(max_offset)
    if num_frames < needed:
        seconds = f" ({num_frames / fps:.2f} s at {fps:g} fps; at least {needed / fps:.2f} s)" if fps else ""
        raise ValueError(f"the clip has {num_frames} frames{seconds}: the lip-sync score searches offsets of "
                         f"+-{max_offset} frames and needs at least {needed}; use a longer clip or a smaller max offset")


def sync_score(aperture, envelope, max_offset: int = 15) -> SyncScore:
    """Best offset and confidence between a per-frame mouth aperture and audio envelope
    (both [T], NaN where unknown). See the module docstring for the definition."""
    aperture = np.asarray(aperture, dtype=np.float64)
    envelope = np.asarray(envelope, dtype=np.float64)
    if aperture.shape != envelope.shape or aperture.ndim != 1:
        raise ValueError(f"aperture and envelope must be [T] of one length, got {aperture.shape} and {envelope.shape}")
    check_clip_length(len(aperture), max_offset)
    frames_used = int((~np.isnan(aperture)).sum())
    if frames_used < 3:
        raise ValueError(f"a face was found in only {frames_used} frames: the lip-sync score needs a visible face")
    correlations = []
    for offset in range(-max_offset, max_offset + 1):
        # Pair aperture[t] with envelope[t + offset].
        if offset >= 0:
            correlations.append(_correlation(aperture[: len(aperture) - offset], envelope[offset:]))
        else:
            correlations.append(_correlation(aperture[-offset:], envelope[: len(envelope) + offset]))
    values = np.array(correlations)
    best = int(np.nanargmax(values))
    return SyncScore(
        offset_frames=best - max_offset,
        confidence=float(values[best] - np.nanmedian(values)),
        peak_correlation=float(values[best]),
        correlations=[float(v) for v in values],
        frames_used=frames_used,
    )


def clip_sync_score(landmarks, waveform, sample_rate: int, fps: float, max_offset: int = 15) -> SyncScore:
    """The score of a clip from its face landmarks (a mouth.LandmarkResult; its main
    face is scored) and its sound [C, N]."""
    check_clip_length(landmarks.num_frames, max_offset, fps)
    envelope = audio_envelope(waveform, sample_rate, fps, landmarks.num_frames)
    return sync_score(landmarks.main.mouth_aperture(), envelope, max_offset)
