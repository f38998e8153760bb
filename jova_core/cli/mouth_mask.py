"""``python -m jova_core mouth-mask INPUT --out OUT``: show the mouth region JoVA's loss weights.

INPUT is an image or a video; OUT is a PNG (for an image) or an MP4 (for a video) with
the mask tinted red, the lip landmarks in green and the mouth box in yellow. ``--json``
prints, per frame, the mouth boxes (x0, y0, x1, y1 in pixels), plus the frames without
a face and the latent / token mask shapes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from .face_options import add_face_arguments, face_argument_error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="an image (.png, .jpg, ...) or a video (.mp4, ...)")
    parser.add_argument("--out", help="preview to write: .png for an image, .mp4 for a video")
    parser.add_argument("--json", action="store_true", help="print per-frame mouth boxes as JSON")
    parser.add_argument("--shape", choices=("box", "polygon"), default="box", help="mouth region shape (default box)")
    parser.add_argument("--margin", type=float, default=0.25, help="padding around the lips, in mouth widths (default 0.25)")
    parser.add_argument("--smooth", type=float, default=1.0, help="temporal smoothing sigma in frames (default 1)")
    parser.add_argument("--faces", choices=("largest", "all"), default="largest", help="mask the largest face or all faces")
    add_face_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..mouth.extract import extract_mouth_masks
    from ..mouth.mask import check_region_settings
    from ..mouth.preview import read_frames, render_preview, write_preview

    if not args.out and not args.json:
        print("nothing to do: give --out PREVIEW (.png / .mp4) and/or --json", file=sys.stderr)
        return 2
    try:
        check_region_settings(args.margin, args.smooth)
    except ValueError as error:
        print(f"error: {error} (--margin, --smooth)", file=sys.stderr)
        return 2
    if not os.path.isfile(args.input):
        print(f"input not found: {args.input}", file=sys.stderr)
        return 2
    problem = face_argument_error(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if args.out and os.path.exists(args.out) and not args.overwrite:
        print(f"{args.out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    try:
        frames, fps = read_frames(args.input)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    is_video = fps is not None
    if args.out and not args.out.lower().endswith(".mp4" if is_video else ".png"):
        print(f"--out must end in {'.mp4' if is_video else '.png'} for {'a video' if is_video else 'an image'}", file=sys.stderr)
        return 2
    try:
        with tqdm(total=len(frames), desc="landmarks", unit="frame", disable=len(frames) < 2) as bar:
            masks = extract_mouth_masks(
                frames,
                video=is_video,
                faces=args.faces,
                shape=args.shape,
                margin=args.margin,
                smooth_sigma=args.smooth,
                backend=args.backend,
                model_path=args.face_model,
                fps=fps or 25.0,
                callback=lambda done, total: bar.update(done - bar.n),
            )
    except RuntimeError as error:  # a .task file mediapipe cannot load
        print(error, file=sys.stderr)
        return 2
    if masks.landmarks.missing_frames:
        print(f"no face in {len(masks.landmarks.missing_frames)} of {len(frames)} frames", file=sys.stderr)
    if args.out:
        preview = render_preview(frames, masks.pixel, masks.landmarks.tracks, masks.boxes)
        write_preview(args.out, preview, fps)
    if args.json:
        boxes_per_frame = [
            [[round(float(v), 2) for v in boxes[t]] for boxes in masks.boxes if not np.isnan(boxes[t, 0])] for t in range(len(frames))
        ]
        print(
            json.dumps(
                {
                    "frames": len(frames),
                    "size": [int(frames.shape[1]), int(frames.shape[2])],
                    "backend": masks.landmarks.backend,
                    "boxes": boxes_per_frame,
                    "missing_frames": masks.landmarks.missing_frames,
                    "latent_mask_shape": list(masks.latent.shape) if masks.latent is not None else None,
                    "token_mask_shape": list(masks.token.shape) if masks.token is not None else None,
                }
            )
        )
    return 0
