"""``python -m jova_core VERB ...``: the command-line face of jova_core.

Each verb lives in its own module here, named after it (``mouth-mask`` -> mouth_mask.py),
which defines ``add_arguments(parser)`` and ``run(args) -> int``: it parses the arguments
and calls the library. A verb's module is imported only when chosen, so ``--help`` stays
fast and a verb's heavy dependencies never load for another verb.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# verb -> one-line help; the verb's module is the verb with "_" for "-".
VERBS: dict[str, str] = {
    "convert": "convert a Wan2.1 or JavisDiT++ transformer into a JoVA checkpoint",
    "train": "cache a folder of captioned clips and fine-tune JoVA on it (accelerate)",
    "init-from-wan": "start a JoVA model from Wan2.1: audio branch copied from video",
    "demo": "generate a talking clip on the CPU with the bundled tiny demo model",
    "mouth-mask": "preview the mouth region (mask, lip landmarks, box) of an image or video",
    "sync-score": "landmark lip-sync score of a clip: best audio offset and confidence",
    "make-demo-data": "write synthetic talking-face clips + captions.json (no download)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jova_core", description="JoVA joint video-audio generation tools")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, help_text in VERBS.items():
        sub.add_parser(verb, help=help_text, description=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if argv and argv[0] in VERBS:
        # Relative: inside ComfyUI this package is imported under the pack's name.
        module = importlib.import_module("." + argv[0].replace("-", "_"), __name__)
        verb_parser = argparse.ArgumentParser(prog=f"python -m jova_core {argv[0]}", description=VERBS[argv[0]])
        module.add_arguments(verb_parser)
        return module.run(verb_parser.parse_args(argv[1:]))
    parser.parse_args(argv)  # prints help or a usage error
    return 2
