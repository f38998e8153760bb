"""Transformer speed, printed as ratios.

(i)  our video-only forward time / diffusers' WanTransformer3DModel time, same weights,
     same small config (target <= 1.0);
(ii) achieved GFLOP/s of the joint video+audio forward (FLOPs counted by
     torch.utils.flop_counter) as a fraction of a large fp32 matmul's GFLOP/s measured in
     the same run (target >= 0.5).

    python bench/transformer.py [--dim 512 --layers 4 --frames 5 --size 32] [--threads 1]

On a busy machine wall times swing by 10% and more between runs; --threads 1 also prints
(i) in single-thread CPU time, which other processes cannot inflate.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffusers import WanTransformer3DModel  # noqa: E402

from jova_core.convert.wan import convert_wan  # noqa: E402
from jova_core.model.transformer import JoVATransformer  # noqa: E402


def timed_rounds(*fns, repeats: int, clock=time.perf_counter) -> list[list[float]]:
    """Times of each fn over `repeats` rounds (one warm-up call each first); within a round
    the calls alternate order so that load from elsewhere hits all alike."""
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    for round_ in range(repeats):
        order = list(zip(fns, times))
        for fn, samples in order if round_ % 2 == 0 else reversed(order):  # no first-mover bias
            start = clock()
            fn()
            samples.append(clock() - start)
    return times


def median_seconds(*fns, repeats: int) -> list[float]:
    return [statistics.median(samples) for samples in timed_rounds(*fns, repeats=repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--frames", type=int, default=5, help="video latent frames")
    parser.add_argument("--size", type=int, default=32, help="video latent height = width")
    parser.add_argument("--text-len", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch threads for both models (default: torch's); 1 gives steadier numbers on a busy machine",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    wan = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=args.heads, attention_head_dim=args.dim // args.heads,
        in_channels=16, out_channels=16, text_dim=256, freq_dim=256, ffn_dim=4 * args.dim,
        num_layers=args.layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
    ).eval()
    cfg, state_dict = convert_wan(wan.state_dict(), text_len=args.text_len)
    ours = JoVATransformer(cfg).eval()
    ours.load_state_dict(state_dict, strict=True)

    video = torch.randn(1, cfg.video_in_channels, args.frames, args.size, args.size)
    text = torch.randn(1, args.text_len, 256)
    t = torch.tensor([700.0])
    geometry = cfg.geometry
    seconds = geometry.video.num_frames(args.frames) / cfg.default_fps
    audio = torch.randn(1, *geometry.audio.latent_shape(max(1, round(seconds * geometry.audio.latent_rate))))

    def diffusers_video_only():
        return wan(hidden_states=video, timestep=t, encoder_hidden_states=text)

    def ours_video_only():
        return ours(video=video, t_video=t, text=text)

    with torch.inference_mode():
        rounds_diffusers, rounds_ours = timed_rounds(diffusers_video_only, ours_video_only, repeats=args.repeats)
        t_diffusers, t_ours = statistics.median(rounds_diffusers), statistics.median(rounds_ours)
        # Each round's two calls ran back to back, under about the same outside load.
        round_ratios = sorted(o / d for o, d in zip(rounds_ours, rounds_diffusers))
        cpu_ratio = None
        if torch.get_num_threads() == 1:
            # One thread does all the work, so its CPU time is the work itself, untouched by
            # the time other processes take from it (wall time on a busy machine is not).
            cpu_diffusers, cpu_ours = timed_rounds(
                diffusers_video_only, ours_video_only, repeats=args.repeats, clock=time.thread_time
            )
            cpu_ratio = statistics.median(cpu_ours) / statistics.median(cpu_diffusers)

        def joint():
            return ours(video=video, audio=audio, t_video=t, t_audio=t, text=text)

        counter = FlopCounterMode(display=False)
        with counter:
            joint()
        flops = counter.get_total_flops()
        n = 2048
        a, b = torch.randn(n, n), torch.randn(n, n)
        t_joint, t_matmul = median_seconds(joint, lambda: a @ b, repeats=args.repeats)
        peak = 2 * n**3 / t_matmul / 1e9

    achieved = flops / t_joint / 1e9
    tokens = args.frames * (args.size // 2) ** 2
    print(f"config: dim {args.dim}, {args.layers} layers, {tokens} video tokens, {audio.shape[-1]} audio tokens, "
          f"text {args.text_len}, threads {torch.get_num_threads()}")
    print(f"video-only forward: ours {t_ours * 1e3:.1f} ms, diffusers {t_diffusers * 1e3:.1f} ms")
    print(f"(i)  ours / diffusers time ratio: {t_ours / t_diffusers:.3f}  (target <= 1.0)")
    print(f"     per-round ratios (noise check): min {round_ratios[0]:.3f}, "
          f"median {statistics.median(round_ratios):.3f}, max {round_ratios[-1]:.3f}")
    if cpu_ratio is not None:
        print(f"     same in single-thread CPU time (steady on a busy machine): {cpu_ratio:.3f}")
    print(f"joint forward: {flops / 1e9:.2f} GFLOP in {t_joint * 1e3:.1f} ms = {achieved:.1f} GFLOP/s; "
          f"fp32 2048^3 matmul {peak:.1f} GFLOP/s")
    print(f"(ii) joint forward GFLOP/s / matmul GFLOP/s: {achieved / peak:.3f}  (target >= 0.5)")


if __name__ == "__main__":
    main()
