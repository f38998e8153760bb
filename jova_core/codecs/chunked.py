"""Decoding long audio latents a window at a time, joined without a click.

A decoder whose output at a moment depends only on nearby latents (a vocoder's
receptive field, a Griffin-Lim spectrogram's frames) can decode a long latent window by
window: each window is decoded with `margin_latents` of context on both sides (cut off
again, so the decoder's edge effects fall outside what is kept), and neighbouring windows
are crossfaded over `crossfade` samples centred on their join with a raised-cosine ramp
whose two halves sum to one. A decoder without long-range state then joins exactly; one
with global state (Griffin-Lim's iterative phase) joins smoothly, its error against the
whole decode bounded by how much that state drifts (tests/test_chunked_decode.py states it).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Iterator

import torch


def raised_cosine(length: int) -> torch.Tensor:
    """Fade-in weights [length] from ~0 to ~1; w + w.flip(0) == 1."""
    return 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(length, dtype=torch.float64) + 0.5) / length)


def crossfaded_chunks(decode: Callable[[torch.Tensor], torch.Tensor], latents: torch.Tensor, samples_per_latent: int,
                      chunk_latents: int, margin_latents: int, crossfade: int) -> Iterator[torch.Tensor]:
    """Consecutive waveform chunks [B, C, n] of decode(latents) (latents time last; decode
    of T latent frames gives T * samples_per_latent samples, local sample j of a window
    starting at latent frame k being global sample k * samples_per_latent + j)."""
    if chunk_latents < 1 or crossfade < 2 or crossfade // 2 > margin_latents * samples_per_latent:
        raise ValueError("chunked audio decode needs chunk_latents >= 1 and a margin covering half the crossfade")
    total = latents.shape[-1]
    half = crossfade // 2
    fade_in = None
    tail = None
    for start in range(0, total, chunk_latents):
        stop = min(start + chunk_latents, total)
        low, high = max(start - margin_latents, 0), min(stop + margin_latents, total)
        window = decode(latents[..., low:high])  # [B, C, (high - low) * samples_per_latent]
        origin = low * samples_per_latent
        first = start * samples_per_latent - half if start > 0 else 0
        last = stop * samples_per_latent + half if stop < total else total * samples_per_latent
        piece = window[..., first - origin:last - origin].clone()
        if tail is not None:
            if fade_in is None:
                fade_in = raised_cosine(tail.shape[-1]).to(piece.dtype)
            head = piece[..., : tail.shape[-1]]
            piece[..., : tail.shape[-1]] = tail * (1 - fade_in) + head * fade_in
        if stop < total:
            tail = piece[..., -(2 * half):]
            piece = piece[..., : -(2 * half)]
        yield piece


def collect_chunks(chunks: Iterable[torch.Tensor], length: int, dim: int, on_chunk: Callable[[int], None] | None = None,
                   ) -> torch.Tensor:
    """Consecutive chunks (any device) -> one float32 CPU tensor `length` long along `dim`,
    filled in place (a caller that must hold the whole decode, like ComfyUI's IMAGE, holds it
    once plus one chunk, not twice). on_chunk(filled so far) runs after each chunk (progress,
    interruption)."""
    out, filled = None, 0
    for chunk in chunks:
        chunk = chunk.float().cpu()
        if out is None:
            shape = list(chunk.shape)
            shape[dim] = length
            out = torch.empty(shape)
        take = min(chunk.shape[dim], length - filled)
        out.narrow(dim, filled, take).copy_(chunk.narrow(dim, 0, take))
        filled += take
        if on_chunk is not None:
            on_chunk(filled)
    if out is None or filled != length:
        raise ValueError(f"the decoder gave {filled} of the {length} expected along axis {dim}")
    return out
