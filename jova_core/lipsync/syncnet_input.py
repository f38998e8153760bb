"""Turning a clip into SyncNet's inputs: 25 fps face crops and 100 Hz speech MFCC.

Audio: mono, 16 kHz, scaled to 16-bit PCM values (syncnet_python reads an int16 WAV
that ffmpeg wrote; the scale matters because MFCC coefficient 0 is a log energy), then
MFCC exactly as ``python_speech_features.mfcc(signal, 16000)`` computes it with its
defaults: pre-emphasis 0.97; 25 ms frames (400 samples) every 10 ms (160), the last one
zero-padded, no window function (rectangular); power spectrum |rfft_512|^2 / 512; 26
triangular mel filters on integer FFT bins from 0 Hz to 8 kHz; log; orthonormal DCT-II,
first 13 coefficients; sinusoidal lifter with L = 22; coefficient 0 replaced by the log
of the frame's total power. Zero energies become float64 eps before the log.

Video: resampled to 25 fps by picking the nearest source frame (as ffmpeg's fps filter
does), then one face box per frame. syncnet_python boxes the face with the S3FD detector,
median-filters box centre and size over 13 frames, and crops a square of side
2 * 1.4 * s (s = half the box's longer side) reaching from s above the centre to
1.8 s below it, so the mouth sits in the middle; outside the picture it pads with grey
110; the crop is resized to 224 x 224 (OpenCV bilinear) and fed as BGR. Here the box is
the extent of the mediapipe face mesh (``detect_face_landmarks``: forehead to chin,
cheek to cheek) instead of S3FD's detection box, with the same crop rule on top. The
two boxes have not been calibrated against each other (no S3FD weights here), so crops
can be somewhat larger, smaller or shifted compared with syncnet_python's, and absolute
LSE values may differ a little from published ones; clips scored the same way compare
fairly. Frames where the mesh found no face take the box interpolated from
their neighbours; the median filter then runs with edge frames repeated (scipy's medfilt
in syncnet_python pads with zeros, which only matters in the first and last 6 frames).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torchaudio.functional as AF

from ..mouth.landmarks import FaceTrack
from ..mouth.mask import _interpolate_gaps
from .syncnet import CROP_SIZE, MFCC_COEFFICIENTS, SYNCNET_FPS, SYNCNET_SAMPLE_RATE

PCM16_SCALE = 32768.0
PREEMPHASIS = 0.97
MFCC_WINDOW_SECONDS = 0.025
MFCC_STEP_SECONDS = 0.010
MEL_FILTERS = 26
FFT_SIZE = 512
CEPSTRAL_LIFTER = 22
CROP_SCALE = 0.4  # syncnet_python's --crop_scale
BOX_MEDIAN_FRAMES = 13
CROP_PAD_VALUE = 110


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def _mel_filterbank(sample_rate: int) -> torch.Tensor:
    """[MEL_FILTERS, FFT_SIZE // 2 + 1] triangles whose corners sit on integer FFT bins."""
    mel_points = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), MEL_FILTERS + 2)
    corners = torch.from_numpy(np.floor((FFT_SIZE + 1) * _mel_to_hz(mel_points) / sample_rate))
    bins = torch.arange(FFT_SIZE // 2 + 1, dtype=torch.float64)[None]  # [1, F]
    left, centre, right = (corners[i : i + MEL_FILTERS, None] for i in range(3))  # [M, 1] each
    # Each triangle rises on [left, centre) and falls on [centre, right); a zero-width
    # side (two corners on one bin) is empty, so its division never reaches the result.
    rising = (bins - left) / (centre - left).clamp(min=1)
    falling = (right - bins) / (right - centre).clamp(min=1)
    return torch.where((bins >= left) & (bins < centre), rising, 0.0) + torch.where(
        (bins >= centre) & (bins < right), falling, 0.0
    )


def _dct_matrix(inputs: int, outputs: int) -> torch.Tensor:
    """[inputs, outputs] orthonormal DCT-II, in float64 (torchaudio's create_dct is float32,
    whose rounding the log(eps) of silent frames magnifies past 1e-4)."""
    n = torch.arange(inputs, dtype=torch.float64)[:, None]
    k = torch.arange(outputs, dtype=torch.float64)[None]
    scale = torch.full_like(k, 2 / inputs)
    scale[:, 0] = 1 / inputs
    return torch.cos(math.pi / inputs * (n + 0.5) * k) * scale.sqrt()


def speech_mfcc(signal: torch.Tensor, sample_rate: int = SYNCNET_SAMPLE_RATE) -> torch.Tensor:
    """MFCC [13, M] (float64) of a mono signal [N], as python_speech_features.mfcc computes
    it with its default settings (see the module docstring); M = 1 + ceil((N - 400) / 160)
    at 16 kHz (1 when N <= 400). SyncNet wants the signal at 16 kHz on the int16 scale."""
    signal = torch.as_tensor(signal).to(torch.float64).reshape(-1)
    if signal.numel() == 0:
        raise ValueError("speech_mfcc needs a non-empty signal")
    frame_length = _round_half_up(MFCC_WINDOW_SECONDS * sample_rate)
    step = _round_half_up(MFCC_STEP_SECONDS * sample_rate)
    emphasised = torch.cat([signal[:1], signal[1:] - PREEMPHASIS * signal[:-1]])
    num_frames = 1 + max(0, math.ceil((signal.numel() - frame_length) / step))
    padded_length = (num_frames - 1) * step + frame_length
    emphasised = torch.nn.functional.pad(emphasised, (0, padded_length - signal.numel()))
    frames = emphasised.unfold(0, frame_length, step)  # [M, frame_length]
    power = torch.fft.rfft(frames, n=FFT_SIZE).abs().square() / FFT_SIZE  # [M, 257]
    eps = torch.finfo(torch.float64).eps
    energy = power.sum(-1)
    mel = power @ _mel_filterbank(sample_rate).T  # [M, 26]
    log_mel = torch.where(mel == 0, eps, mel).log()
    cepstra = log_mel @ _dct_matrix(MEL_FILTERS, MFCC_COEFFICIENTS)  # [M, 13]
    n = torch.arange(MFCC_COEFFICIENTS, dtype=torch.float64)
    cepstra = cepstra * (1 + (CEPSTRAL_LIFTER / 2) * torch.sin(math.pi * n / CEPSTRAL_LIFTER))
    cepstra[:, 0] = torch.where(energy == 0, eps, energy).log()
    return cepstra.T.contiguous()


def syncnet_audio(waveform, sample_rate: int) -> torch.Tensor:
    """Waveform [C, N] or [N] (-1..1) at any rate -> mono 16 kHz on the int16 PCM scale [N']:
    what syncnet_python reads from the WAV that ``ffmpeg -ac 1 -ar 16000`` writes."""
    waveform = torch.as_tensor(waveform).detach().float().cpu()
    mono = waveform.reshape(-1, waveform.shape[-1]).mean(0)
    if sample_rate != SYNCNET_SAMPLE_RATE:
        mono = AF.resample(mono, sample_rate, SYNCNET_SAMPLE_RATE)
    return (mono.clamp(-1.0, 1.0) * PCM16_SCALE).round().clamp(-PCM16_SCALE, PCM16_SCALE - 1)


def frames_at_syncnet_rate(num_frames: int, fps: float) -> np.ndarray:
    """Source frame index for each 25 fps output frame (the nearest one in time)."""
    if num_frames <= 0 or fps <= 0:
        raise ValueError(f"need frames and a positive fps, got {num_frames} frames at {fps} fps")
    count = max(1, round(num_frames * SYNCNET_FPS / fps))
    return np.minimum(np.floor(np.arange(count) * fps / SYNCNET_FPS + 0.5).astype(np.int64), num_frames - 1)


def face_boxes(track: FaceTrack, median_frames: int = BOX_MEDIAN_FRAMES) -> np.ndarray:
    """Per-frame face box [T, 3] as (centre x, centre y, half size s) in pixels: the
    extent of the face mesh, gaps interpolated, median-filtered over ``median_frames``.

    Raises ValueError when the track has no face in any frame.
    """
    points = track.points
    present = track.present
    if not present.any():
        raise ValueError("no face was found in any frame: SyncNet scores need a visible face")
    low, high = points[present].min(axis=1), points[present].max(axis=1)  # [T_present, 2]
    boxes = np.full((len(points), 3), np.nan)
    boxes[present] = np.concatenate([(low + high) / 2, (high - low).max(axis=1, keepdims=True) / 2], axis=1)
    boxes = _interpolate_gaps(boxes, max_gap=len(boxes))
    known = np.flatnonzero(present)
    boxes[: known[0]] = boxes[known[0]]  # hold the first / last seen box over the ends
    boxes[known[-1] + 1 :] = boxes[known[-1]]
    half = median_frames // 2
    padded = np.pad(boxes, ((half, half), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, median_frames, axis=0)  # [T, 3, median_frames]
    return np.median(windows, axis=-1)


def face_crops(frames: np.ndarray, boxes: np.ndarray, crop_scale: float = CROP_SCALE) -> np.ndarray:
    """SyncNet face crops [T, 224, 224, 3] uint8 **BGR** from RGB uint8 frames [T, H, W, 3]
    and boxes [T, 3] (centre x, centre y, half size s), cut as syncnet_python cuts them."""
    if len(frames) != len(boxes):
        raise ValueError(f"{len(frames)} frames but {len(boxes)} boxes")
    height, width = frames.shape[1:3]
    crops = np.empty((len(frames), CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    for t, (frame, (cx, cy, s)) in enumerate(zip(frames, boxes)):
        top, bottom = math.floor(cy - s), math.floor(cy + s * (1 + 2 * crop_scale))
        left, right = math.floor(cx - s * (1 + crop_scale)), math.floor(cx + s * (1 + crop_scale))
        if bottom <= top or right <= left:
            raise ValueError(f"frame {t}: empty face box (half size {s:.2f} px)")
        face = np.full((bottom - top, right - left, 3), CROP_PAD_VALUE, dtype=np.uint8)
        y0, y1, x0, x1 = max(top, 0), min(bottom, height), max(left, 0), min(right, width)
        if y1 > y0 and x1 > x0:
            face[y0 - top : y1 - top, x0 - left : x1 - left] = frame[y0:y1, x0:x1]
        crops[t] = cv2.resize(face, (CROP_SIZE, CROP_SIZE))[..., ::-1]  # bilinear; RGB -> BGR
    return crops
