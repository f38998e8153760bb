"""Lip sync of the demo's outputs over seeds (``python -m jova_core demo --lip-sync-seeds N``)."""

from __future__ import annotations

from typing import Callable

import torch

from .generate import generate_demo
from .settings import DEFAULT_TRANSCRIPT, load_demo_model, load_demo_settings


def clip_lip_sync(frames: torch.Tensor, waveform: torch.Tensor, sample_rate: int, fps: float):
    """The mouth module's landmark lip-sync score of one clip (SyncScore)."""
    from ..lipsync import audio_envelope, sync_score
    from ..mouth import detect_face_landmarks

    landmarks = detect_face_landmarks(frames, fps=fps)
    envelope = audio_envelope(waveform, sample_rate, fps, frames.shape[0])
    return sync_score(landmarks.main.mouth_aperture(), envelope)


def evaluate_lip_sync(
    num_seeds: int = 20, first_seed: int = 0, checkpoint: str | None = None, steps: int | None = None,
    progress: Callable[[int, int], None] | None = None, joint_only: bool = False,
) -> list[dict]:
    """Lip sync of demo outputs over seeds: for seed s, the transcript of the synthetic
    clip with seed 900000 + s (outside the training seeds, same distribution) and noise
    seed s. Per seed: transcript, confidence, offset_frames, peak_correlation; a seed
    whose output shows no face gets confidence None."""
    from ..train.synthetic import make_talking_clip

    settings = load_demo_settings(checkpoint)
    model = load_demo_model(checkpoint)
    rows = []
    for i, seed in enumerate(range(first_seed, first_seed + num_seeds)):
        transcript = make_talking_clip(900_000 + seed, seconds=settings.num_frames / settings.fps, fps=settings.fps, size=32).transcript
        clip = generate_demo(transcript or DEFAULT_TRANSCRIPT, seed, steps, checkpoint, model=model, joint_only=joint_only)
        row = {"seed": seed, "transcript": transcript, "confidence": None, "offset_frames": None, "peak_correlation": None}
        try:
            score = clip_lip_sync(clip.frames, clip.waveform, clip.sample_rate, clip.fps)
            row.update(confidence=score.confidence, offset_frames=score.offset_frames, peak_correlation=score.peak_correlation)
        except ValueError:  # no face found in the generated frames
            pass
        rows.append(row)
        if progress is not None:
            progress(i + 1, num_seeds)
    return rows


def summarize_lip_sync(rows: list[dict], checkpoint: str, joint_only: bool) -> dict:
    """evaluate_lip_sync's rows with their means over the seeds whose output shows a face."""
    scored = [r["confidence"] for r in rows if r["confidence"] is not None]
    offsets = [abs(r["offset_frames"]) for r in rows if r["offset_frames"] is not None]
    return {
        "checkpoint": checkpoint,
        "joint_only": joint_only,
        "seeds": len(rows),
        "faces_found": len(scored),
        "mean_confidence": sum(scored) / len(scored) if scored else None,
        "mean_abs_offset_frames": sum(offsets) / len(offsets) if offsets else None,
        "clips": rows,
    }
