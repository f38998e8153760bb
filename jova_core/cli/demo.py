"""``python -m jova_core demo --out demo.mp4 [--transcript "ba ma da"] [--seed N] [--seconds S]``

Generates a talking clip with the bundled CPU demo model (jova_core.demo), or with
``--lip-sync-seeds N`` scores the lip sync of N clips.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..demo.settings import DEFAULT_TRANSCRIPT, DEMO_CHECKPOINT

MAX_SECONDS = 600.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo.mp4", help="MP4 to write (never overwritten unless --overwrite)")
    parser.add_argument("--transcript", default=DEFAULT_TRANSCRIPT,
                        help=f"syllables to speak, e.g. \"ba ma da\" (default {DEFAULT_TRANSCRIPT!r})")
    parser.add_argument("--seconds", type=float,
                        help="a longer clip: extended chunk by chunk from the model's own (about 2 s), "
                             "the transcript spoken again in every chunk (default: the model's length)")
    parser.add_argument("--overlap", type=int, default=1,
                        help="video latent frames each chunk continues from (with --seconds; default 1)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (same seed, same clip)")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the demo model's setting)")
    parser.add_argument("--checkpoint", help="another demo checkpoint (default: the bundled one)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--joint-only", action="store_true",
                        help="skip the audio-driven video pass the demo model's settings ask for (for comparisons)")
    parser.add_argument("--lip-sync-seeds", type=int, metavar="N",
                        help="instead of writing a clip: generate N clips (seeds 0..N-1, held-out synthetic "
                             "transcripts) and print the landmark lip-sync score of each and their mean as JSON")


def _report_lip_sync(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..demo.evaluate import evaluate_lip_sync, summarize_lip_sync

    with tqdm(total=args.lip_sync_seeds, desc="lip sync", unit="clip") as bar:
        rows = evaluate_lip_sync(args.lip_sync_seeds, args.seed, args.checkpoint, args.steps,
                                 progress=lambda done, total: bar.update(done - bar.n), joint_only=args.joint_only)
    summary = summarize_lip_sync(rows, args.checkpoint or DEMO_CHECKPOINT, args.joint_only)
    print(json.dumps(summary, indent=1))
    return 0


def _check(args: argparse.Namespace) -> None:
    """The arguments' one-line errors, before any model is loaded."""
    from ..io.mp4 import check_mp4_name
    from ..sampling.seed import check_seed

    check_seed(args.seed)
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps} (leave it out for the demo model's own)")
    if args.seconds is not None and not (0 < args.seconds <= MAX_SECONDS):
        raise ValueError(f"--seconds must be more than 0 and at most {MAX_SECONDS:g}, got {args.seconds:g}")
    if args.lip_sync_seeds is not None:
        if args.lip_sync_seeds < 1:
            raise ValueError(f"--lip-sync-seeds must be at least 1, got {args.lip_sync_seeds}")
        check_seed(args.seed + args.lip_sync_seeds - 1)
        return
    check_mp4_name(args.out)
    if os.path.exists(args.out) and not args.overwrite:
        raise ValueError(f"{args.out} exists; choose another --out or pass --overwrite")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    try:
        _check(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.lip_sync_seeds:
        return _report_lip_sync(args)

    from ..codecs.demo import DemoAudioCodec
    from ..demo.generate import sample_demo
    from ..io import write_mp4

    bar = None

    def step(info) -> None:
        nonlocal bar  # made at the first step, so that an early refusal prints one line
        bar = bar or tqdm(total=info.total, desc="sampling", unit="step")  # both passes' steps
        bar.update(1)

    try:
        latents = sample_demo(args.transcript, args.seed, args.steps, args.checkpoint, callback=step,
                              joint_only=args.joint_only, seconds=args.seconds, overlap=args.overlap)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    if args.seconds is None:  # the published 2 s clip, decoded whole as it always was
        clip = latents.decode()
        write_mp4(args.out, clip.frames, clip.fps, clip.waveform, clip.sample_rate, overwrite=args.overwrite)
        frames, seconds = clip.frames.shape[0], clip.waveform.shape[-1] / clip.sample_rate
    else:  # decoded chunk by chunk into the file: memory stays flat with the length
        frames, samples = latents.write_mp4(args.out, overwrite=args.overwrite)
        seconds = samples / DemoAudioCodec().decoded_sample_rate
    print(f"wrote {args.out}: {frames} frames at {latents.fps:g} fps, {seconds:.2f} s of audio; "
          f"prompt: {latents.prompt}")
    return 0
