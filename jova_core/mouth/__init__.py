"""The mouth region for training: lip landmarks, mouth masks on the pixel / latent /
token grids, their preview and the mouth-weighted flow loss. Lip-sync evaluation
(scores of finished clips) is in jova_core.lipsync."""

from .extract import MouthMasks, extract_mouth_masks
from .landmarks import FaceTrack, LandmarkResult, detect_face_landmarks, resolve_backend
from .loss import mouth_weighted_flow_loss
from .mask import check_region_settings, latent_mask, mouth_regions, pixel_mask, token_mask
from .preview import render_preview

__all__ = [
    "FaceTrack",
    "MouthMasks",
    "check_region_settings",
    "extract_mouth_masks",
    "LandmarkResult",
    "detect_face_landmarks",
    "latent_mask",
    "mouth_regions",
    "mouth_weighted_flow_loss",
    "pixel_mask",
    "render_preview",
    "resolve_backend",
    "token_mask",
]
