"""``python -m jova_core make-demo-data --out DIR --clips N --seconds S --seed K``

Writes N synthetic talking-astronaut clips (MP4 with sound, see
``jova_core.train.synthetic``) and a captions.json listing
{file, video_caption, audio_caption, transcript} for each: a ready training folder
for ``python -m jova_core train`` that needs no download. Existing files are never
overwritten: the command stops before writing anything if one is in the way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

CAPTIONS_FILE = "captions.json"


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

    from ..io import write_mp4
    from ..train.synthetic import make_talking_clip

    if args.clips < 1 or args.seconds <= 0:
        print("--clips must be >= 1 and --seconds > 0", file=sys.stderr)
        return 2
    names = [f"clip_{args.seed + i:05d}.mp4" for i in range(args.clips)]
    in_the_way = [n for n in names + [CAPTIONS_FILE] if os.path.exists(os.path.join(args.out, n))]
    if in_the_way:
        print(f"{args.out} already holds {', '.join(in_the_way[:3])}{' ...' if len(in_the_way) > 3 else ''}: "
              "choose another --out (or --seed), nothing was written", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    captions = []
    for i, name in enumerate(tqdm(names, desc="clips", unit="clip")):
        clip = make_talking_clip(args.seed + i, seconds=args.seconds, fps=args.fps, size=args.size, sample_rate=args.sample_rate)
        write_mp4(os.path.join(args.out, name), clip.frames, clip.fps, clip.waveform, clip.sample_rate)
        captions.append(
            {"file": name, "video_caption": clip.video_caption, "audio_caption": clip.audio_caption, "transcript": clip.transcript}
        )
    with open(os.path.join(args.out, CAPTIONS_FILE), "x", encoding="utf-8") as f:
        json.dump(captions, f, indent=1)
    print(f"wrote {len(names)} clips and {CAPTIONS_FILE} to {args.out}")
    return 0
