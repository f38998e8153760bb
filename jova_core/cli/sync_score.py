"""``python -m jova_core sync-score CLIP.mp4``: how well the lips follow the sound.

Prints JSON: offset_frames (positive: the sound comes that many frames after the
picture), offset_seconds, confidence (peak correlation minus the median over offsets),
peak_correlation, frames_used. See ``jova_core.lipsync.sync`` for the definition; it is
landmark-based and needs no SyncNet weights.

With ``--syncnet syncnet_v2.model`` (the weights of joonson/syncnet_python) it adds
Wav2Lip's metrics: lse_d (lower is better), lse_c (higher is better),
syncnet_offset_frames (SyncNet's own offset, same sign convention as offset_frames; the
opposite of syncnet_python's printed "AV offset") and syncnet_windows. See
``jova_core.lipsync.lse``. LSE-C depends on the range of offsets searched, so these always
use the published +-15 frames, whatever --max-offset says.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .face_options import add_face_arguments, face_argument_error

# syncnet_python's and Wav2Lip's --vshift: LSE-C is only comparable at this range.
LSE_MAX_OFFSET = 15


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", help="a video file with an audio track (.mp4)")
    parser.add_argument("--max-offset", type=int, default=15, help="search offsets within +-N frames (default 15; LSE always uses 15)")
    add_face_arguments(parser)
    parser.add_argument("--syncnet", metavar="PATH", help="syncnet_v2.model (syncnet_python's weights): also report LSE-C / LSE-D")
    parser.add_argument("--device", default="auto", help="device for SyncNet: auto (cuda when available), cpu, cuda, ...")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..io import read_clip
    from ..lipsync.sync import check_clip_length, clip_sync_score
    from ..mouth.landmarks import detect_face_landmarks

    if not os.path.isfile(args.clip):
        print(f"clip not found: {args.clip}", file=sys.stderr)
        return 2
    problem = face_argument_error(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    syncnet = None
    if args.syncnet:
        import torch

        from ..lipsync.syncnet import load_syncnet

        device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
        try:
            syncnet = load_syncnet(args.syncnet, device=device)
        except (FileNotFoundError, ValueError) as error:
            print(error, file=sys.stderr)
            return 2
    try:
        frames, waveform, fps, sample_rate = read_clip(args.clip)
        if waveform is None or waveform.shape[-1] == 0:
            raise ValueError(f"{args.clip} has no audio track: the lip-sync score needs one")
        # Before the landmarks: a clip too short for the offset search is refused, not scored.
        # (SyncNet's LSE pads its audio over +-15 frames, as syncnet_python does, and has its own minimum.)
        check_clip_length(len(frames), args.max_offset, fps)
    except ValueError as error:
        message = str(error)
        print(message if args.clip in message else f"{args.clip}: {message}", file=sys.stderr)
        return 2
    try:
        with tqdm(total=len(frames), desc="landmarks", unit="frame") as bar:
            landmarks = detect_face_landmarks(
                frames,
                backend=args.backend,
                model_path=args.face_model,
                fps=fps,
                callback=lambda done, total: bar.update(done - bar.n),
            )
    except RuntimeError as error:  # a .task file mediapipe cannot load
        print(error, file=sys.stderr)
        return 2
    try:
        score = clip_sync_score(landmarks, waveform, sample_rate, fps, args.max_offset)
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
    if syncnet is not None:
        from ..lipsync.lse import syncnet_scores

        try:
            with tqdm(desc="SyncNet", unit="window") as bar:

                def progress(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                lse = syncnet_scores(
                    frames, fps, waveform, sample_rate, model=syncnet, landmarks=landmarks,
                    max_offset=LSE_MAX_OFFSET, callback=progress,
                )
        except ValueError as error:
            print(f"{args.clip}: {error}", file=sys.stderr)
            return 1
        result.update(
            lse_c=round(lse.lse_c, 4),
            lse_d=round(lse.lse_d, 4),
            syncnet_offset_frames=lse.offset_frames,
            syncnet_windows=lse.windows,
        )
    print(json.dumps(result))
    return 0
