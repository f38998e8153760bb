"""Seconds per sampling step: two guidance passes vs one batched pass vs compiled blocks.

Times real sampler steps (the time between the sampler's per-step callbacks, first steps
left out as warm-up) in one run, for
  - the CPU demo (`python -m jova_core demo`'s model, shapes, prompts and sampler);
  - a small Wan-size config: Wan2.1 1.3B's width (dim 1536, 12 heads, FFN 8960,
    cross-attention to 512 umT5 tokens) with --wan-layers blocks and a small latent;
and prints the ratios: batched guidance over two passes, and regional torch.compile
(compile_blocks, inductor) on top of batching, with its one-time compile cost.

    python bench/guidance.py [--steps 6] [--threads 1] [--no-compile] [--wan-layers 2]

Rounds alternate the variants so outside load on a busy machine hits them alike; with
--threads 1 steps are timed in CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jova_core.config import preset_config  # noqa: E402
from jova_core.demo import generate_demo, load_demo_model  # noqa: E402
from jova_core.model.transformer import JoVATransformer  # noqa: E402
from jova_core.sampling import sample  # noqa: E402


class StepClock:
    """A sampler callback recording the time of each step: wall time, or with one torch
    thread the thread's CPU time, which other processes on a busy machine cannot inflate."""

    def __init__(self):
        self.clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
        self.times: list[float] = []
        self._last = self.clock()

    def __call__(self, info) -> None:
        now = self.clock()
        self.times.append(now - self._last)
        self._last = now


def demo_steps(model, steps: int, batched: bool) -> list[float]:
    clock = StepClock()
    generate_demo(model=model, steps=steps, joint_only=True, batch_guidance=batched, callback=clock)
    return clock.times


def wan_size_model(layers: int) -> JoVATransformer:
    torch.manual_seed(0)
    return JoVATransformer(preset_config("wan2.1-1.3b", single_stream_layers=layers)).eval()


def wan_steps(model, steps: int, batched: bool, frames: int, size: int) -> list[float]:
    cfg = model.config
    gen = torch.Generator().manual_seed(0)
    text = torch.randn(1, 40, cfg.text_dim, generator=gen)  # a prompt; the model pads it to 512
    negative = torch.zeros(1, 1, cfg.text_dim)  # umT5's empty prompt is one EOS token
    seconds = (1 + (frames - 1) * cfg.video_temporal_stride) / cfg.default_fps
    clock = StepClock()
    sample(model, text=text, negative_video=negative, mode="t2va", video_shape=(1, 16, frames, size, size),
           audio_shape=(1, cfg.audio_in_channels, max(1, round(seconds * cfg.audio_latent_rate))),
           steps=steps, sampler="unipc", cfg_video=5.0, cfg_audio=4.0, seed=0, batch_guidance=batched, callback=clock)
    return clock.times


def compare(name: str, run, steps: int, rounds: int, compiled_model_run=None) -> None:
    """Median steady-state seconds per step of each variant, and their ratios."""
    variants = {"two passes": lambda: run(False), "batched": lambda: run(True)}
    if compiled_model_run is not None:
        start = time.perf_counter()
        first = compiled_model_run()  # compiles: the first steps carry the compile time
        print(f"[{name}] compiled + batched: first run {time.perf_counter() - start:.1f} s wall "
              f"(first step {first[0]:.1f} s, includes compiling)")
        variants["compiled + batched"] = compiled_model_run
    samples = {k: [] for k in variants}
    for round_ in range(rounds):
        order = list(variants.items())
        for key, fn in order if round_ % 2 == 0 else reversed(order):
            samples[key] += fn()[1:]  # the first step of a run warms caches up
    medians = {k: statistics.median(v) for k, v in samples.items()}
    base = medians["two passes"]
    for key, seconds in medians.items():
        print(f"[{name}] {key:>20}: {seconds:.4f} s/step  speedup x{base / seconds:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1: steadier on a busy machine)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    parser.add_argument("--wan-layers", type=int, default=2)
    parser.add_argument("--wan-frames", type=int, default=3, help="video latent frames of the Wan-size config")
    parser.add_argument("--wan-size", type=int, default=16, help="video latent height = width of the Wan-size config")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.steps} steps x {args.rounds} rounds")

    demo = load_demo_model()
    compiled_demo = None
    if not args.no_compile:
        compiled_demo = load_demo_model()
        compiled_demo.compile_blocks()
    compare("demo", lambda batched: demo_steps(demo, args.steps, batched), args.steps, args.rounds,
            None if compiled_demo is None else lambda: demo_steps(compiled_demo, args.steps, True))

    wan = wan_size_model(args.wan_layers)
    compiled_wan = None
    if not args.no_compile:
        compiled_wan = wan_size_model(args.wan_layers)
        compiled_wan.compile_blocks()
    compare(f"Wan-1.3B-width x{args.wan_layers} blocks, latent {args.wan_frames}x{args.wan_size}x{args.wan_size}",
            lambda batched: wan_steps(wan, args.steps, batched, args.wan_frames, args.wan_size),
            args.steps, args.rounds,
            None if compiled_wan is None else lambda: wan_steps(compiled_wan, args.steps, True, args.wan_frames, args.wan_size))


if __name__ == "__main__":
    main()
