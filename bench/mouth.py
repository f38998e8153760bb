"""Mouth-region extraction speed: frames per second of landmarks + masks at 512x512.

Frames come from the synthetic talking astronaut (no download); the timed part is
``extract_mouth_masks`` (face landmarks with tracking, mouth boxes, pixel, latent and
token masks) in video mode, after one warm-up call. Target: >= 25 fps on CPU.

    python bench/mouth.py [--size 512 --seconds 4 --fps 25 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jova_core.mouth import detect_face_landmarks, extract_mouth_masks  # noqa: E402
from jova_core.train.synthetic import make_talking_clip  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    clip = make_talking_clip(seed=0, seconds=args.seconds, fps=args.fps, size=args.size)
    frames = (clip.frames.numpy() * 255 + 0.5).astype("uint8")
    extract_mouth_masks(frames[:5])  # warm-up: loads the mediapipe graph

    def best_fps(fn) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return len(frames) / statistics.median(times)

    total = best_fps(lambda: extract_mouth_masks(frames, fps=args.fps))
    landmarks_only = best_fps(lambda: detect_face_landmarks(frames, fps=args.fps))
    print(
        json.dumps(
            {
                "frames": len(frames),
                "size": args.size,
                "landmarks_and_masks_fps": round(total, 1),
                "landmarks_only_fps": round(landmarks_only, 1),
                "target_fps": 25,
            }
        )
    )


if __name__ == "__main__":
    main()
