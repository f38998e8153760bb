"""``python -m jova_core init-from-wan --src WAN_FILE --out FILE``: the paper's initialisation.

JoVA starts from a pretrained video transformer and gives the audio branch a COPY of its
weights (jova_core.convert.wan: every block stream, text and time MLPs; the audio patch
embedding projected from the video one; the audio head zeroed). This verb is that
conversion for a Wan2.1 text-to-video file, as the starting point of `train`
(set the recipe's init_checkpoint to --out).
"""

from __future__ import annotations

import argparse

from . import convert as convert_cli


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", required=True,
                        help="Wan2.1 text-to-video transformer: .safetensors, .pth/.pt, or a diffusers "
                             "*.safetensors.index.json or its folder")
    parser.add_argument("--out", required=True, help="JoVA .safetensors file to write (never overwritten unless --overwrite)")
    parser.add_argument("--dtype", choices=sorted(convert_cli.DTYPES), default="keep",
                        help="dtype of the written weights (default: the source's)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    args.format = "wan2.1"
    return convert_cli.run(args)
