"""Mouth-mask preview: frames with the mask tinted, lip landmarks drawn and the box outlined."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

from ..io.frames import to_uint8_frames
from .landmarks import FaceTrack

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
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


def read_frames(path: str) -> tuple[np.ndarray, float | None]:
    """An image or a video file -> (frames uint8 [T, H, W, 3], fps, or None for an image)."""
    if path.lower().endswith(IMAGE_EXTENSIONS):
        # imdecode (not imread) so that non-ASCII paths work on every OS.
        image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"could not read {path} as an image")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[None], None
    from ..io import read_clip

    frames, _, fps, _ = read_clip(path)
    return to_uint8_frames(frames), fps


def write_preview(path: str, preview: np.ndarray, fps: float | None) -> None:
    """render_preview's frames as an MP4 (a video: fps given) or a PNG (an image: its one frame)."""
    if fps is not None:
        from ..io import write_mp4

        write_mp4(path, preview, fps)
        return
    ok, png = cv2.imencode(".png", cv2.cvtColor(preview[0], cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("could not encode the preview as PNG")
    with open(path, "wb") as f:
        f.write(png.tobytes())
