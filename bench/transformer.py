"""Transformer speed, printed as ratios.

(i)  our video-only forward time / diffusers' WanTransformer3DModel time, same weights,
     same small config (target <= 1.0);
(ii) achieved GFLOP/s of the joint video+audio forward (FLOPs counted by
     torch.utils.flop_counter) as a fraction of a large fp32 matmul's GFLOP/s measured in
     the same run (target >= 0.5).

    python bench/transformer.py [--dim 512 --layers 4 --frames 5 --size 32]
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


def median_seconds(*fns, repeats: int) -> list[float]:
    """Median wall time of each fn; calls alternate so that load from elsewhere hits all alike."""
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    for round_ in range(repeats):
        order = list(zip(fns, times))
        for fn, samples in order if round_ % 2 == 0 else reversed(order):  # no first-mover bias
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    return [statistics.median(samples) for samples in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--frames", type=int, default=5, help="video latent frames")
    parser.add_argument("--size", type=int, default=32, help="video latent height = width")
    parser.add_argument("--text-len", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)

    wan = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=args.heads, attention_head_dim=args.dim // args.heads,
        in_channels=16, out_channels=16, text_dim=256, freq_dim=256, ffn_dim=4 * args.dim,
        num_layers=args.layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
    ).eval()
    cfg, state_dict = convert_wan(wan.state_dict(), text_len=args.text_len)
    ours = JoVATransformer(cfg).eval()
    ours.load_state_dict(state_dict, strict=True)

    video = torch.randn(1, 16, args.frames, args.size, args.size)
    text = torch.randn(1, args.text_len, 256)
    t = torch.tensor([700.0])
    seconds = (1 + (args.frames - 1) * cfg.video_temporal_stride) / cfg.default_fps
    audio = torch.randn(1, 20, max(1, round(seconds * cfg.audio_latent_rate)))

    with torch.inference_mode():
        t_diffusers, t_ours = median_seconds(
            lambda: wan(hidden_states=video, timestep=t, encoder_hidden_states=text),
            lambda: ours(video=video, t_video=t, text=text),
            repeats=args.repeats,
        )

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
    print(f"joint forward: {flops / 1e9:.2f} GFLOP in {t_joint * 1e3:.1f} ms = {achieved:.1f} GFLOP/s; "
          f"fp32 2048^3 matmul {peak:.1f} GFLOP/s")
    print(f"(ii) joint forward GFLOP/s / matmul GFLOP/s: {achieved / peak:.3f}  (target >= 0.5)")


if __name__ == "__main__":
    main()
