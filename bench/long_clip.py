"""Long clips with the CPU demo model: how visible the seams are, and time and memory per length.

For each length, one process runs ``sample_demo(seconds=...)`` (jova_core.sampling.extend
underneath) and writes the MP4 the way ``python -m jova_core demo --seconds`` does (decoded
chunk by chunk into the file), and reports the wall time of both, the peak resident memory
up to then (the memory that must stay flat with the length), and, from a whole decode made
afterwards for measuring, for extended clips the seam ratios of jova_core.demo.seams (video frame-to-frame change, audio spectral flux and
peak sample jump at the seams over elsewhere; 1 = a seam looks like any other moment).

With --lip-sync, also the landmark lip-sync score (jova_core.lipsync.sync) of every 2 s
window of each clip: its best audio offset and confidence, and as the chance level the
confidence of each window's mouth against its own sound played backwards (same loudness
statistics, no alignment; another window's sound is no chance level here, as every chunk
speaks the same transcript).

    OMP_NUM_THREADS=1 python bench/long_clip.py [--seconds 2 5 10 20] [--seeds 0 1 2] [--overlap 1] [--lip-sync]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def lip_sync_windows(clip, window_seconds: float = 2.0, max_offset: int = 15) -> dict:
    """Per 2 s window: (offset in frames, confidence); and the chance confidences."""
    from jova_core.lipsync.sync import audio_envelope, sync_score
    from jova_core.mouth import detect_face_landmarks

    frames = clip.frames.shape[0]
    aperture = detect_face_landmarks(clip.frames, fps=clip.fps).main.mouth_aperture()
    envelope = audio_envelope(clip.waveform, clip.sample_rate, clip.fps, frames)
    size = round(window_seconds * clip.fps)
    starts = range(0, frames - size + 1, size)
    windows, chance = [], []
    for start in starts:
        own = slice(start, start + size)
        score = sync_score(aperture[own], envelope[own], max_offset)
        windows.append((score.offset_frames, round(score.confidence, 3)))
        chance.append(sync_score(aperture[own], envelope[own][::-1].copy(), max_offset).confidence)
    return {"windows": windows, "chance_confidence": round(sum(chance) / len(chance), 3) if chance else None,
            "windows_in_sync": sum(abs(o) <= 1 for o, _ in windows)}


def one(seconds: float, seed: int, overlap: int, lip_sync: bool = False) -> dict:
    """Run in a fresh process: one clip, its time, peak memory and seam ratios."""
    from jova_core.codecs.demo import DemoAudioCodec, DemoVideoCodec
    from jova_core.demo import load_demo_model, sample_demo
    from jova_core.demo.seams import seam_positions, seam_ratios

    model = load_demo_model()
    start = time.perf_counter()
    latents = sample_demo(seed=seed, model=model, seconds=seconds, overlap=overlap)
    with tempfile.TemporaryDirectory() as folder:
        frames, _ = latents.write_mp4(os.path.join(folder, "long.mp4"))
    elapsed = time.perf_counter() - start
    row = {"seconds": seconds, "seed": seed, "overlap": overlap, "clip_seconds": frames / latents.fps,
           "chunks": len(latents.chunks), "wall_s": round(elapsed, 1),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    clip = latents.decode()  # whole, for the measurements below (after the peak was read)
    if clip.chunks:
        stride, per_latent = DemoVideoCodec().temporal_stride, DemoAudioCodec().samples_per_latent
        video_seams, audio_seams = seam_positions(clip.chunks, stride, per_latent)
        ratios = seam_ratios(clip.frames, clip.waveform[0], video_seams, audio_seams, stride, per_latent)
        row.update({k: round(v, 3) for k, v in ratios.items()})
    if lip_sync:
        row.update(lip_sync_windows(clip))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[2, 5, 10, 20])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--overlap", type=int, default=1)
    parser.add_argument("--lip-sync", action="store_true", help="also score lip sync in every 2 s window")
    parser.add_argument("--one", nargs=4, metavar=("SECONDS", "SEED", "OVERLAP", "LIP_SYNC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(float(args.one[0]), int(args.one[1]), int(args.one[2]), args.one[3] == "1")))
        return
    rows = []
    for seconds in args.seconds:
        for seed in args.seeds:
            out = subprocess.run([sys.executable, __file__, "--one", str(seconds), str(seed), str(args.overlap),
                                  "1" if args.lip_sync else "0"],
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
