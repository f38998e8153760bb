"""Long clips with the CPU demo model: how visible the seams are, and time and memory per length.

For each length, one process runs ``generate_demo(seconds=...)`` (jova_core.sampling.extend
underneath) and reports its wall time, peak resident memory and, for extended clips, the
seam ratios of jova_core.demo.seams (video frame-to-frame change, audio spectral flux and
peak sample jump at the seams over elsewhere; 1 = a seam looks like any other moment).

    OMP_NUM_THREADS=1 python bench/long_clip.py [--seconds 2 5 10 20] [--seeds 0 1 2] [--overlap 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(seconds: float, seed: int, overlap: int) -> dict:
    """Run in a fresh process: one clip, its time, peak memory and seam ratios."""
    from jova_core.codecs.demo import DemoAudioCodec, DemoVideoCodec
    from jova_core.demo import generate_demo, load_demo_model
    from jova_core.demo.seams import seam_positions, seam_ratios

    model = load_demo_model()
    start = time.perf_counter()
    clip = generate_demo(seed=seed, model=model, seconds=seconds, overlap=overlap)
    elapsed = time.perf_counter() - start
    row = {"seconds": seconds, "seed": seed, "overlap": overlap, "clip_seconds": clip.frames.shape[0] / clip.fps,
           "chunks": len(clip.chunks), "wall_s": round(elapsed, 1),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if clip.chunks:
        stride, per_latent = DemoVideoCodec().temporal_stride, DemoAudioCodec().samples_per_latent
        video_seams, audio_seams = seam_positions(clip.chunks, stride, per_latent)
        ratios = seam_ratios(clip.frames, clip.waveform[0], video_seams, audio_seams, stride, per_latent)
        row.update({k: round(v, 3) for k, v in ratios.items()})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[2, 5, 10, 20])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--overlap", type=int, default=1)
    parser.add_argument("--one", nargs=3, metavar=("SECONDS", "SEED", "OVERLAP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(float(args.one[0]), int(args.one[1]), int(args.one[2]))))
        return
    rows = []
    for seconds in args.seconds:
        for seed in args.seeds:
            out = subprocess.run([sys.executable, __file__, "--one", str(seconds), str(seed), str(args.overlap)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    for row in rows[1:]:
        print(f"{row['seconds']:g} s: {row['wall_s'] / base['wall_s']:.2f}x the time of {base['seconds']:g} s "
              f"for {row['clip_seconds'] / base['clip_seconds']:.2f}x the length; peak memory "
              f"{row['peak_rss_mb'] / base['peak_rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
