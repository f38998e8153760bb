"""Mouth-region masks: per-frame pixel masks from lip landmarks, and their down-sampling
to the grids the transformer sees.

The latent grid is the video VAE's (jova_core.geometry; Wan2.1 by default): the causal
encoder codes pixel frame 0 on its own and then each following group of 4 frames into
one latent frame (T_lat = 1 + (T - 1) // 4; trailing frames that do not fill a group
are dropped, as the encoder drops them), and each 8x8 pixel block into one latent cell.
The transformer then patchifies latents by its patch size (1, 2, 2) into tokens.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..geometry import WAN21_VAE, VideoLatentGeometry
from .landmarks import INNER_LIP, OUTER_LIP, FaceTrack


def _interpolate_gaps(values: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill runs of at most ``max_gap`` NaN frames [T, ...] linearly between their neighbours."""
    values = values.copy()
    present = ~np.isnan(values.reshape(len(values), -1)[:, 0])
    known = np.flatnonzero(present)
    if len(known) == 0 or max_gap <= 0:
        return values
    for start, end in zip(known[:-1], known[1:]):
        if 1 < end - start <= max_gap + 1:
            weights = np.linspace(0.0, 1.0, end - start + 1)[1:-1]
            for w, t in zip(weights, range(start + 1, end)):
                values[t] = (1 - w) * values[start] + w * values[end]
    return values


def _smooth_in_time(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along frames [T, ...], ignoring NaN frames (they stay NaN)."""
    if sigma <= 0:
        return values
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    flat = values.reshape(len(values), -1)
    present = ~np.isnan(flat[:, 0])
    filled = np.where(present[:, None], flat, 0.0)
    frames = len(values)

    def convolve(x: np.ndarray) -> np.ndarray:  # "same" length even when the kernel is longer
        return np.convolve(x, kernel, mode="full")[radius : radius + frames]

    weight = convolve(present.astype(np.float64))
    summed = np.stack([convolve(col) for col in filled.T], axis=1)
    smoothed = summed / np.maximum(weight, 1e-8)[:, None]
    smoothed[~present] = np.nan
    return smoothed.reshape(values.shape).astype(values.dtype)


def check_region_settings(margin: float, smooth_sigma: float) -> None:
    """Refuse settings that would give inverted or meaningless regions (one-line
    ValueError); the CLI and the nodes call it before any landmark work."""
    if not (np.isfinite(margin) and margin >= 0):
        raise ValueError(f"the mouth margin must be >= 0 (a fraction of the mouth width), got {margin}")
    if not (np.isfinite(smooth_sigma) and smooth_sigma >= 0):
        raise ValueError(f"the temporal smoothing must be >= 0 frames (0 = none), got {smooth_sigma}")


def mouth_regions(
    track: FaceTrack,
    *,
    margin: float = 0.25,
    smooth_sigma: float = 1.0,
    max_gap: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mouth region from a face track.

    Returns (boxes [T, 4] as x0, y0, x1, y1 in pixels, polygons [T, 20, 2]: the outer
    lip contour pushed out from the mouth centre), both NaN in frames without a face.
    The margin is a fraction of the mouth width added on every side (for the box) or to
    every contour point's distance from the centre (for the polygon), so a closed mouth
    still gets room above and below. Gaps of up to ``max_gap`` frames are filled by
    interpolation, then points are smoothed in time (Gaussian, ``smooth_sigma`` frames)
    so the region does not jitter with the detector.
    """
    check_region_settings(margin, smooth_sigma)
    lips = track.points[:, list(OUTER_LIP + INNER_LIP)].astype(np.float64)  # [T, 40, 2]
    lips = _smooth_in_time(_interpolate_gaps(lips, max_gap), smooth_sigma)
    outer = lips[:, : len(OUTER_LIP)]
    width = np.linalg.norm(outer[:, 0] - outer[:, len(OUTER_LIP) // 2], axis=-1)  # corner to corner
    pad = (margin * width)[:, None]
    boxes = np.concatenate([lips.min(axis=1) - pad, lips.max(axis=1) + pad], axis=1)
    centre = outer.mean(axis=1, keepdims=True)
    offset = outer - centre
    distance = np.linalg.norm(offset, axis=-1, keepdims=True)
    polygons = centre + offset * (1 + margin * width[:, None, None] / np.maximum(distance, 1e-6))
    return boxes.astype(np.float32), polygons.astype(np.float32)


def pixel_mask(
    track: FaceTrack,
    height: int,
    width: int,
    *,
    shape: str = "box",
    margin: float = 0.25,
    smooth_sigma: float = 1.0,
    max_gap: int = 2,
) -> torch.Tensor:
    """Binary mouth mask [T, H, W] (float32 0/1); empty in frames without a face.

    shape: "box" (axis-aligned box around the lips) or "polygon" (the outer lip
    contour, widened by the margin).
    """
    if shape not in ("box", "polygon"):
        raise ValueError(f"shape must be 'box' or 'polygon', got {shape!r}")
    boxes, polygons = mouth_regions(track, margin=margin, smooth_sigma=smooth_sigma, max_gap=max_gap)
    masks = np.zeros((len(boxes), height, width), dtype=np.uint8)
    for t, (box, polygon) in enumerate(zip(boxes, polygons)):
        if np.isnan(box[0]):
            continue
        if shape == "box":
            # Pixel (i, j) covers [j, j+1) x [i, i+1); it is in the box when its centre is.
            x0, y0 = (int(np.clip(np.round(v), 0, n)) for v, n in ((box[0], width), (box[1], height)))
            x1, y1 = (int(np.clip(np.round(v), 0, n)) for v, n in ((box[2], width), (box[3], height)))
            masks[t, y0:y1, x0:x1] = 1
        else:
            # cv2 draws at integer pixel centres; 4 fractional bits keep sub-pixel precision.
            cv2.fillPoly(masks[t], [np.round((polygon - 0.5) * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return torch.from_numpy(masks.astype(np.float32))


def latent_mask(
    mask: torch.Tensor,
    *,
    geometry: VideoLatentGeometry = WAN21_VAE,
    reduce: str = "max",
) -> torch.Tensor:
    """Down-sample a pixel mask [T, H, W] (or [B, T, H, W]) to the video latent grid of `geometry`.

    Returns [T_lat, H / 8, W / 8] (batch kept) with T_lat = 1 + (T - 1) // 4 (Wan2.1's
    strides): latent frame 0 is pixel frame 0 alone, latent frame k >= 1 covers pixel
    frames 4k - 3 .. 4k, as the causal Wan VAE encodes them.
    reduce: "max" marks a cell when any of its pixels is in the mouth (binary, as the
    paper's per-latent-frame box); "mean" gives the covered fraction.
    """
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    batched = mask.dim() == 4
    if not batched:
        mask = mask[None]
    if mask.dim() != 4:
        raise ValueError(f"expected a pixel mask [T, H, W] or [B, T, H, W], got shape {tuple(mask.shape)}")
    frames, height, width = mask.shape[1:]
    temporal_stride, spatial_stride = geometry.temporal_stride, geometry.spatial_stride
    if height % spatial_stride or width % spatial_stride:
        raise ValueError(
            f"frame size {height}x{width} is not a multiple of the VAE's {spatial_stride}x{spatial_stride} "
            "stride: resize or crop the video as it is for encoding"
        )
    latent_frames = geometry.latent_frames(frames)
    mask = mask.float()
    # Frame 0 alone, then groups of `temporal_stride` frames; leftover frames are dropped.
    groups = mask[:, 1 : 1 + (latent_frames - 1) * temporal_stride]
    groups = groups.reshape(mask.shape[0], latent_frames - 1, temporal_stride, height, width)
    pool = (lambda x, dim: x.amax(dim)) if reduce == "max" else (lambda x, dim: x.mean(dim))
    per_frame = torch.cat([mask[:, :1], pool(groups, 2)], dim=1)  # [B, T_lat, H, W]
    pooled = F.max_pool2d if reduce == "max" else F.avg_pool2d
    result = pooled(per_frame, spatial_stride)  # pools the last two dims: [B, T_lat, H/8, W/8]
    return result if batched else result[0]


def token_mask(mask_latent: torch.Tensor, patch_size: tuple[int, int, int] = (1, 2, 2), reduce: str = "max") -> torch.Tensor:
    """Latent-grid mask [(B,) T_lat, H_lat, W_lat] -> the transformer's token grid
    [(B,) T_lat / pt, H_lat / ph, W_lat / pw] for patch size (pt, ph, pw)."""
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    batched = mask_latent.dim() == 4
    mask = (mask_latent if batched else mask_latent[None]).float()
    for size, dim in zip(patch_size, (1, 2, 3)):
        if mask.shape[dim] % size:
            raise ValueError(f"latent mask shape {tuple(mask.shape[1:])} is not divisible by patch size {tuple(patch_size)}")
    pooled = F.max_pool3d if reduce == "max" else F.avg_pool3d
    result = pooled(mask[:, None], tuple(patch_size))[:, 0]
    return result if batched else result[0]
