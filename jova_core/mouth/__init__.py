"""The mouth region: lip landmarks, mouth masks on the pixel / latent / token grids,
their preview, the mouth-weighted flow loss, and a landmark-based lip-sync score."""

from .extract import MouthMasks, extract_mouth_masks
from .landmarks import FaceTrack, LandmarkResult, detect_face_landmarks, resolve_backend, to_uint8_frames
from .loss import mouth_weighted_flow_loss
from .lse import SyncNetScores, lse_scores, syncnet_scores
from .mask import latent_mask, mouth_regions, pixel_mask, token_mask
from .preview import render_preview
from .sync import SyncScore, audio_envelope, sync_score
from .syncnet import SyncNet, load_syncnet
from .syncnet_input import speech_mfcc

__all__ = [
    "FaceTrack",
    "MouthMasks",
    "extract_mouth_masks",
    "LandmarkResult",
    "SyncNet",
    "SyncNetScores",
    "SyncScore",
    "audio_envelope",
    "detect_face_landmarks",
    "latent_mask",
    "load_syncnet",
    "lse_scores",
    "mouth_regions",
    "mouth_weighted_flow_loss",
    "pixel_mask",
    "render_preview",
    "resolve_backend",
    "speech_mfcc",
    "sync_score",
    "syncnet_scores",
    "to_uint8_frames",
    "token_mask",
]
