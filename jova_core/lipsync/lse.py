"""LSE-D and LSE-C: the lip-sync metrics of Wav2Lip (Prajwal et al., 2020), computed with
SyncNet as syncnet_python's ``SyncNetInstance.evaluate`` and Wav2Lip's
``evaluation/scores_LSE`` scripts compute them.

With N = min(video frames at 25 fps, floor(16 kHz samples / 640)) - 5 windows (the
public scripts stop one window short of the last full one; kept for comparability):

1. lip[i] = SyncNet lip embedding of face-crop frames i..i+4, audio[i] = audio embedding
   of MFCC frames 4i..4i+19, for i = 0..N-1 (see ``jova_core.lipsync.syncnet``);
2. for every shift d in -K..K (K = 15 by default): dist[i, d] = || lip[i] - audio[i + d]
   + 1e-6 || (torch's pairwise_distance), where audio[j] outside 0..N-1 is the ZERO
   vector (the scripts zero-pad the audio embeddings rather than drop those pairs);
3. mean[d] = the mean of dist[i, d] over all N windows;
4. LSE-D = min_d mean[d] (lower is better), LSE-C = median_d mean[d] - min_d mean[d]
   (higher is better), offset = the d of the minimum.

Sign of the offset: here, as in ``jova_core.lipsync.sync``, positive means the sound comes
that many frames after the picture (video frame i matches audio frame i + d).
syncnet_python prints the opposite sign as "AV offset" (K - argmin = -d).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..mouth.landmarks import FaceTrack, LandmarkResult, detect_face_landmarks, to_uint8_frames
from .syncnet import (
    MFCC_FRAMES_PER_VIDEO_FRAME,
    MFCC_WINDOW,
    SYNCNET_FPS,
    SYNCNET_SAMPLE_RATE,
    WINDOW_FRAMES,
    SyncNet,
    load_syncnet,
)
from .syncnet_input import CROP_SCALE, face_boxes, face_crops, frames_at_syncnet_rate, speech_mfcc, syncnet_audio

SAMPLES_PER_VIDEO_FRAME = SYNCNET_SAMPLE_RATE // SYNCNET_FPS  # 640


@dataclass
class SyncNetScores:
    offset_frames: int  # positive: the sound comes after the picture (see the module docstring)
    lse_d: float
    lse_c: float
    # mean[d] for d = -max_offset..max_offset.
    mean_distances: list[float]
    windows: int
    # 25 fps frames in which the face mesh found a face (None when not from a clip).
    face_frames: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def offset_distances(lip: torch.Tensor, audio: torch.Tensor, max_offset: int = 15) -> torch.Tensor:
    """dist [N, 2K+1]: column K + d holds || lip[i] - audio[i + d] + 1e-6 ||, with audio
    zero outside 0..N-1 (the public scripts' padding). lip, audio: [N, D] embeddings."""
    if lip.shape != audio.shape or lip.ndim != 2:
        raise ValueError(f"lip and audio embeddings must be [N, D] of one shape, got {tuple(lip.shape)} and {tuple(audio.shape)}")
    if max_offset < 0:
        raise ValueError(f"max_offset must be >= 0, got {max_offset}")
    padded = F.pad(audio, (0, 0, max_offset, max_offset))  # [N + 2K, D]
    shifted = padded.unfold(0, 2 * max_offset + 1, 1).transpose(1, 2)  # [N, 2K+1, D]
    return F.pairwise_distance(lip[:, None, :], shifted)


def lse_scores(lip: torch.Tensor, audio: torch.Tensor, max_offset: int = 15) -> SyncNetScores:
    """Offset, LSE-D and LSE-C from per-window lip and audio embeddings [N, D]."""
    mean = offset_distances(lip.double(), audio.double(), max_offset).mean(0)  # [2K+1]
    lowest, best = torch.min(mean, 0)
    return SyncNetScores(
        offset_frames=int(best) - max_offset,
        lse_d=float(lowest),
        lse_c=float(torch.median(mean) - lowest),
        mean_distances=mean.tolist(),
        windows=len(lip),
    )


@torch.inference_mode()
def syncnet_embeddings(
    model: SyncNet,
    crops: np.ndarray,
    mfcc: torch.Tensor,
    windows: int,
    batch_size: int = 20,
    callback: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(lip [windows, 1024], audio [windows, 1024]) from BGR crops [T, 224, 224, 3] uint8
    and MFCC [13, M]; window i covers frames i..i+4 and MFCC frames 4i..4i+19.
    callback(done, total) after each batch of windows; raise from it to stop."""
    parameter = next(model.parameters())
    video = torch.from_numpy(crops).to(parameter.device).permute(3, 0, 1, 2)  # [3, T, 224, 224] uint8
    mfcc = mfcc.to(parameter.device, parameter.dtype)
    lips, audios = [], []
    for start in range(0, windows, batch_size):
        stop = min(start + batch_size, windows)
        clips = torch.stack([video[:, i : i + WINDOW_FRAMES] for i in range(start, stop)])
        lips.append(model.embed_lips(clips.to(parameter.dtype)).float().cpu())
        sound = torch.stack(
            [mfcc[:, i * MFCC_FRAMES_PER_VIDEO_FRAME : i * MFCC_FRAMES_PER_VIDEO_FRAME + MFCC_WINDOW] for i in range(start, stop)]
        )
        audios.append(model.embed_audio(sound[:, None]).float().cpu())
        if callback is not None:
            callback(stop, windows)
    return torch.cat(lips), torch.cat(audios)


def syncnet_scores(
    frames,
    fps: float,
    waveform,
    sample_rate: int,
    weights_path: str | None = None,
    *,
    model: SyncNet | None = None,
    landmarks: LandmarkResult | None = None,
    max_offset: int = 15,
    crop_scale: float = CROP_SCALE,
    batch_size: int = 20,
    device="cpu",
    backend: str = "auto",
    face_model: str | None = None,
    callback: Callable[[int, int], None] | None = None,
) -> SyncNetScores:
    """LSE-C / LSE-D and SyncNet's offset of a talking clip (see the module docstring).

    frames [T, H, W, 3] (float 0..1 or uint8, RGB) at ``fps``; waveform [C, N] or [N] at
    ``sample_rate``; both are resampled to SyncNet's 25 fps / 16 kHz here. The weights come
    from ``weights_path`` (syncnet_v2.model) or an already loaded ``model``. ``landmarks``:
    a LandmarkResult of these same frames (as ``detect_face_landmarks`` returns it) to
    skip a second face-mesh pass; otherwise the face mesh runs on the 25 fps frames
    (``backend`` / ``face_model`` as in ``detect_face_landmarks``). ``device``: where a
    model loaded from ``weights_path`` runs (a given ``model`` runs where it is).
    callback(done, total) reports the SyncNet windows; raise from it to stop.
    """
    if model is None:
        if weights_path is None:
            raise ValueError("syncnet_scores needs weights_path (syncnet_v2.model) or a loaded model")
        model = load_syncnet(weights_path, device=device)
    frames = to_uint8_frames(frames)
    if landmarks is not None and landmarks.num_frames != len(frames):
        raise ValueError(f"landmarks are of {landmarks.num_frames} frames but the clip has {len(frames)}: pass those of these frames")
    picks = frames_at_syncnet_rate(len(frames), fps)
    audio = syncnet_audio(waveform, sample_rate)
    usable = min(len(picks), len(audio) // SAMPLES_PER_VIDEO_FRAME)
    windows = usable - WINDOW_FRAMES  # as the public scripts count them
    if windows < 1:
        raise ValueError(
            f"SyncNet needs at least {WINDOW_FRAMES + 1} frames of picture and sound at 25 fps "
            f"({(WINDOW_FRAMES + 1) / SYNCNET_FPS:.2f} s); this clip has {usable}"
        )
    frames = frames[picks]
    if landmarks is None:
        track = detect_face_landmarks(frames, backend=backend, model_path=face_model, fps=SYNCNET_FPS).main
    else:
        track = FaceTrack(track_id=landmarks.main.track_id, points=landmarks.main.points[picks])
    crops = face_crops(frames[:usable], face_boxes(track)[:usable], crop_scale)
    mfcc = speech_mfcc(audio)
    lip, sound = syncnet_embeddings(model, crops, mfcc, windows, batch_size, callback)
    scores = lse_scores(lip, sound, max_offset)
    scores.face_frames = int(track.present[:usable].sum())
    return scores
