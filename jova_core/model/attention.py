"""Attention backends, chosen by name.

All take q [B, S, H, D] and k, v [B, S, Hkv, D] and return [B, S, H, D]. Hkv may be
fewer than H (grouped-query attention, Hkv dividing H): query head h reads key/value
head h // (H // Hkv), flash-attn's grouping. Optional backends are
imported only when chosen, so a missing flash-attn or sageattention never breaks
an install that does not ask for them.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

BACKENDS = ("sdpa", "sage", "flash")


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    grouped = k.shape[2] != q.shape[2]
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), enable_gqa=grouped)
    return out.transpose(1, 2)


def _repeat_kv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """k, v with each head repeated so that there is one per query head (for kernels
    that take equal head counts only)."""
    groups = q.shape[2] // k.shape[2]
    if groups == 1:
        return k, v
    return k.repeat_interleave(groups, dim=2), v.repeat_interleave(groups, dim=2)


def _sage() -> AttentionFn:
    try:
        from sageattention import sageattn
    except ImportError as err:
        raise RuntimeError(
            "attention backend 'sage' needs the sageattention package (pip install sageattention); "
            "choose 'sdpa' to run without it"
        ) from err

    def attend(q, k, v):
        k, v = _repeat_kv(q, k, v)
        return sageattn(q, k, v, tensor_layout="NHD", is_causal=False)

    return attend


def _flash() -> AttentionFn:
    try:
        from flash_attn import flash_attn_func
    except ImportError as err:
        raise RuntimeError(
            "attention backend 'flash' needs the flash-attn package; choose 'sdpa' to run without it"
        ) from err

    def attend(q, k, v):
        # flash-attn only runs in half precision.
        dtype = q.dtype if q.dtype in (torch.float16, torch.bfloat16) else torch.bfloat16
        return flash_attn_func(q.to(dtype), k.to(dtype), v.to(dtype)).to(q.dtype)

    return attend


def get_attention(name: str) -> AttentionFn:
    if name == "sdpa":
        return _sdpa
    if name == "sage":
        return _sage()
    if name == "flash":
        return _flash()
    raise ValueError(f"unknown attention backend {name!r}; choose one of {BACKENDS}")
