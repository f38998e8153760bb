"""``python -m jova_core train RECIPE.json``: cache the clips, then train (resumable).

Multi-process: ``accelerate launch -m jova_core train RECIPE.json`` or
``torchrun --nproc_per_node N -m jova_core train RECIPE.json``.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="training recipe (JSON; fields in jova_core/train/config.py)")
    parser.add_argument("--steps", type=int, help="override the recipe's number of steps")
    parser.add_argument("--data-dir", help="override the recipe's clip folder")
    parser.add_argument("--cache-dir", help="override the recipe's cache folder")
    parser.add_argument("--output-dir", help="override the recipe's output folder")
    parser.add_argument("--mouth-weight", type=float, help="override the mouth-area loss weight (0 = plain flow loss)")
    parser.add_argument("--preprocess-only", action="store_true", help="fill the cache and stop")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ValueError, KeyError, OSError) as err:  # the recipe, the data, the folders: one line, no traceback
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from ..train.config import TrainConfig

    overrides = {
        key: value
        for key, value in (("steps", args.steps), ("mouth_weight", args.mouth_weight))
        if value is not None
    }
    cfg = TrainConfig.from_file(args.config, **overrides)
    # Folders given on the command line are relative to the working folder.
    for key in ("data_dir", "cache_dir", "output_dir"):
        if getattr(args, key):
            setattr(cfg, key, os.path.abspath(getattr(args, key)))
    if args.preprocess_only:
        from ..train.encode import cached_dataset

        dataset = cached_dataset(cfg, show_progress=not args.no_progress)
        print(f"{len(dataset)} clips cached in {cfg.cache_dir}")
        return 0
    from ..train.trainer import train

    result = train(cfg, show_progress=not args.no_progress)
    if result.history:
        last = result.history[-1]
        print(f"step {last['step']}: loss {last['loss']:.5f} (video {last['video']:.5f}, audio {last['audio']:.5f})")
    if result.wrote_final:
        print(f"wrote {result.final_path}")
    else:
        print(f"{result.final_path} is already trained to step {cfg.steps}; nothing to do (raise --steps to train on)")
    return 0
