"""``python -m jova_core convert --format {wan2.1,javisdit} --src FILE --out FILE``."""

from __future__ import annotations

import argparse
import sys

import torch

DTYPES = {"keep": None, "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=["wan2.1", "javisdit"],
                        help="what --src is: a Wan2.1 text-to-video transformer (original, ComfyUI or diffusers "
                             "layout) or a JavisDiT++ v1.0 transformer")
    parser.add_argument("--src", required=True,
                        help="source checkpoint: .safetensors, .pth/.pt, a diffusers *.safetensors.index.json or its folder")
    parser.add_argument("--out", required=True, help="JoVA .safetensors file to write (never overwritten unless --overwrite)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="keep", help="dtype of the written weights (default: the source's)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..checkpoint import convert_checkpoint

    if not args.out.endswith(".safetensors"):
        print(f"error: --out must name a .safetensors file, got {args.out!r}", file=sys.stderr)
        return 2
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or tqdm(total=total, desc="reading tensors", unit="tensor")
        bar.update(done - bar.n)

    try:
        config = convert_checkpoint(args.src, args.out, args.format, dtype=DTYPES[args.dtype],
                                    overwrite=args.overwrite, progress=progress)
    except (FileExistsError, FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {args.out}: JoVA dim {config.dim}, {config.num_layers} layers, {config.num_heads} heads, "
          f"audio {config.audio_in_channels} channels, patch {list(config.audio_patch_size)}, rope {config.audio_rope}")
    return 0
