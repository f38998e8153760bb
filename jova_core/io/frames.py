"""Frames as 8-bit pixels: the one conversion that the MP4 writer, face landmarks and
previews read their frames through."""

from __future__ import annotations

import numpy as np
import torch


def to_uint8_frames(frames) -> np.ndarray:
    """Frames as contiguous uint8 RGB [T, H, W, 3].

    Accepts torch or numpy; float input (ComfyUI's IMAGE layout) is read as 0..1 and
    rounded, uint8 is kept; one image [H, W, 3], a batch of one clip [1, T, H, W, 3] and
    RGBA (alpha dropped) too.
    """
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu()
        frames = frames.numpy() if frames.dtype == torch.uint8 else frames.float().numpy()
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim == 5 and frames.shape[0] == 1:
        frames = frames[0]
    if frames.ndim == 4 and frames.shape[-1] == 4:
        frames = frames[..., :3]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"expected frames [T,H,W,3] (RGB), got shape {list(frames.shape)}")
    if frames.dtype != np.uint8:
        frames = np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(frames)
