"""Mouth-mask preview: frames with the mask tinted, lip landmarks drawn and the box outlined."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

from .landmarks import FaceTrack, to_uint8_frames

MASK_TINT = np.array([255, 40, 40], dtype=np.float32)  # red
LANDMARK_COLOUR = (40, 255, 40)  # green
BOX_COLOUR = (255, 220, 0)  # yellow


def render_preview(
    frames, mask: torch.Tensor, tracks: Sequence[FaceTrack] = (), boxes: Sequence[np.ndarray] = (), tint: float = 0.45
) -> np.ndarray:
    """Preview frames uint8 [T, H, W, 3].

    frames: [T, H, W, 3] (uint8 or float 0..1); mask: pixel mask [T, H, W] 0..1;
    tracks: faces whose lip points are drawn where present; boxes: per face, [T, 4]
    x0, y0, x1, y1 (NaN rows skipped) to outline.
    """
    frames = to_uint8_frames(frames)
    mask = mask.detach().cpu().numpy().astype(np.float32)
    if mask.shape != frames.shape[:3]:
        raise ValueError(f"mask shape {mask.shape} does not match the frames {frames.shape[:3]}")
    alpha = (tint * mask)[..., None]
    out = (frames.astype(np.float32) * (1 - alpha) + MASK_TINT * alpha + 0.5).astype(np.uint8)
    radius = max(1, round(min(frames.shape[1:3]) / 256))
    lips = [track.lips for track in tracks]
    for t in range(len(out)):
        image = out[t]
        for points in lips:
            if not np.isnan(points[t, 0, 0]):
                for x, y in points[t]:
                    cv2.circle(image, (int(round(x)), int(round(y))), radius, LANDMARK_COLOUR, -1, lineType=cv2.LINE_AA)
        for face_boxes in boxes:
            if not np.isnan(face_boxes[t, 0]):
                x0, y0, x1, y1 = (int(round(v)) for v in face_boxes[t])
                cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), BOX_COLOUR, radius, lineType=cv2.LINE_AA)
    return out
