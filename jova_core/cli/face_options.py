"""The face landmark options of the verbs that find faces (mouth-mask, sync-score)."""

from __future__ import annotations

import argparse


def add_face_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=("auto", "legacy", "tasks"), default="auto",
                        help="landmark backend: mediapipe's bundled face mesh (legacy, mediapipe<=0.10.21) or its "
                             "Tasks FaceLandmarker; auto takes legacy where it exists")
    parser.add_argument("--face-model", default="built-in", metavar="PATH",
                        help="face_landmarker.task for the Tasks backend (default: built-in, the model the pack ships)")


def face_argument_error(args: argparse.Namespace) -> str | None:
    """The one-line message for --backend / --face-model values that cannot work, or None."""
    from ..mouth.landmarks import resolve_backend

    try:
        resolve_backend(args.backend, args.face_model)
    except (OSError, ValueError, RuntimeError) as error:
        return str(error)
    return None
