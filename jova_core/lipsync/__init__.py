"""Lip-sync evaluation: how well a clip's lips follow its sound.

    clip_sync_score / sync_score   landmark score, no weights (sync.py)
    syncnet_scores / lse_scores    Wav2Lip's LSE-C / LSE-D with SyncNet weights (lse.py,
                                   syncnet.py, syncnet_input.py)

The training-time mouth tools (landmarks, masks, loss) are in jova_core.mouth.
"""

from .lse import SyncNetScores, lse_scores, syncnet_scores
from .sync import SyncScore, audio_envelope, check_clip_length, clip_sync_score, sync_score
from .syncnet import SyncNet, load_syncnet
from .syncnet_input import speech_mfcc

__all__ = [
    "SyncNet",
    "SyncNetScores",
    "SyncScore",
    "audio_envelope",
    "check_clip_length",
    "clip_sync_score",
    "load_syncnet",
    "lse_scores",
    "speech_mfcc",
    "sync_score",
    "syncnet_scores",
]
