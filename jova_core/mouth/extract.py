"""One call from frames to every mouth product: landmarks, boxes and the three masks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..geometry import WAN21_VAE, VideoLatentGeometry
from .landmarks import LandmarkResult, detect_face_landmarks
from .mask import check_region_settings, latent_mask, mouth_regions, pixel_mask, token_mask


@dataclass
class MouthMasks:
    landmarks: LandmarkResult
    # Per track (largest face first): mouth boxes [T, 4] x0, y0, x1, y1, NaN where absent.
    boxes: list[np.ndarray]
    pixel: torch.Tensor  # [T, H, W], union over the tracked faces
    latent: torch.Tensor | None  # [T_lat, H/8, W/8]; None when H or W is not a multiple of the spatial stride
    token: torch.Tensor | None  # [T_lat/pt, H/(8 ph), W/(8 pw)]; None when the grid does not divide


def extract_mouth_masks(
    frames,
    *,
    video: bool = True,
    faces: str = "largest",
    shape: str = "box",
    margin: float = 0.25,
    smooth_sigma: float = 1.0,
    patch_size: tuple[int, int, int] = (1, 2, 2),
    geometry: VideoLatentGeometry = WAN21_VAE,
    backend: str = "auto",
    model_path: str | None = None,
    fps: float = 25.0,
    callback: Callable[[int, int], None] | None = None,
) -> MouthMasks:
    """Landmarks -> mouth boxes -> pixel mask -> latent mask -> token mask.

    frames: [T, H, W, 3] uint8 or float 0..1 (numpy or torch). With faces="all" the
    masks are the union of every face's mouth. See ``detect_face_landmarks`` for
    video/faces/backend/callback and ``pixel_mask`` for shape/margin/smoothing; the latent
    and token masks are on the grid of the video latent `geometry` and `patch_size`.
    """
    check_region_settings(margin, smooth_sigma)  # before the landmarks: a bad setting fails at once
    landmarks = detect_face_landmarks(
        frames, video=video, faces=faces, backend=backend, model_path=model_path, fps=fps, callback=callback
    )
    height, width = landmarks.height, landmarks.width
    region = dict(margin=margin, smooth_sigma=smooth_sigma if video else 0.0, max_gap=2 if video else 0)
    pixel = torch.zeros(landmarks.num_frames, height, width)
    boxes = []
    for track in landmarks.tracks:
        pixel = torch.maximum(pixel, pixel_mask(track, height, width, shape=shape, **region))
        boxes.append(mouth_regions(track, **region)[0])
    latent = token = None
    if height % geometry.spatial_stride == 0 and width % geometry.spatial_stride == 0:
        latent = latent_mask(pixel, geometry=geometry)
        if all(n % p == 0 for n, p in zip(latent.shape, patch_size)):
            token = token_mask(latent, patch_size)
    return MouthMasks(landmarks=landmarks, boxes=boxes, pixel=pixel, latent=latent, token=token)
