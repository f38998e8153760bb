"""``python -m jova_core make-demo-data --out DIR --clips N --seconds S --seed K``

Writes N synthetic talking-astronaut clips (MP4 with sound, see
``jova_core.train.demo_data``) and a captions.json listing
{file, video_caption, audio_caption, transcript} for each: a ready training folder
for ``python -m jova_core train`` that needs no download. Existing files are never
overwritten: the command stops before writing anything if one is in the way.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to write the clips and captions.json into")
    parser.add_argument("--clips", type=int, default=8, help="number of clips (default 8)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each clip (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="clip i uses seed + i (default 0)")
    parser.add_argument("--size", type=int, default=128, help="frame side in pixels (default 128)")
    parser.add_argument("--fps", type=float, default=24.0, help="frame rate (default 24)")
    parser.add_argument("--sample-rate", type=int, default=16000, help="audio sample rate (default 16000)")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..train.demo_data import CAPTIONS_FILE, write_demo_data

    if args.clips < 1 or args.seconds <= 0:
        print("--clips must be >= 1 and --seconds > 0", file=sys.stderr)
        return 2
    try:
        with tqdm(total=args.clips, desc="clips", unit="clip") as bar:
            names = write_demo_data(args.out, args.clips, args.seconds, args.seed, args.size, args.fps, args.sample_rate,
                                    progress=lambda done, total: bar.update(done - bar.n))
    except FileExistsError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"wrote {len(names)} clips and {CAPTIONS_FILE} to {args.out}")
    return 0
