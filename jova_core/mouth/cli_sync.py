"""``python -m jova_core sync-score CLIP.mp4``: how well the lips follow the sound.

Prints JSON: offset_frames (positive: the sound comes that many frames after the
picture), offset_seconds, confidence (peak correlation minus the median over offsets),
peak_correlation, frames_used. See ``jova_core.mouth.sync`` for the definition; it is
landmark-based and needs no SyncNet weights (LSE-C / LSE-D are not computed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", help="a video file with an audio track (.mp4)")
    parser.add_argument("--max-offset", type=int, default=15, help="search offsets within +-N frames (default 15)")
    parser.add_argument("--backend", choices=("auto", "legacy", "tasks"), default="auto", help="landmark backend")
    parser.add_argument("--face-model", help="face_landmarker.task for the mediapipe Tasks backend")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..io import read_clip
    from .landmarks import detect_face_landmarks
    from .sync import audio_envelope, sync_score

    if not os.path.isfile(args.clip):
        print(f"clip not found: {args.clip}", file=sys.stderr)
        return 2
    frames, waveform, fps, sample_rate = read_clip(args.clip)
    if waveform is None or waveform.shape[-1] == 0:
        print(f"{args.clip} has no audio track: the lip-sync score needs one", file=sys.stderr)
        return 2
    with tqdm(total=len(frames), desc="landmarks", unit="frame") as bar:
        landmarks = detect_face_landmarks(
            frames,
            backend=args.backend,
            model_path=args.face_model,
            fps=fps,
            callback=lambda done, total: bar.update(done - bar.n),
        )
    envelope = audio_envelope(waveform, sample_rate, fps, len(frames))
    try:
        score = sync_score(landmarks.main.mouth_aperture(), envelope, args.max_offset)
    except ValueError as error:
        print(f"{args.clip}: {error}", file=sys.stderr)
        return 1
    result = {
        "offset_frames": score.offset_frames,
        "offset_seconds": round(score.offset_frames / fps, 4),
        "confidence": round(score.confidence, 4),
        "peak_correlation": round(score.peak_correlation, 4),
        "frames_used": score.frames_used,
        "frames": len(frames),
        "fps": fps,
    }
    print(json.dumps(result))
    return 0
