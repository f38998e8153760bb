"""Writing MP4 (H.264 yuv420p + AAC) from frames and a waveform with imageio-ffmpeg."""

from __future__ import annotations

import os
import struct
from contextlib import ExitStack
from typing import Iterable

import imageio_ffmpeg
import numpy as np
import torch

from ..files import atomic_output, partial_file
from .frames import to_uint8_frames

DEFAULT_CRF = 18  # visually lossless-ish; the model's output, not the container, should limit quality
MAX_AUDIO_BITRATE = 192_000


def aac_bitrate(sample_rate: int, channels: int) -> int:
    """192 kb/s, or less where AAC cannot spend that much: an AAC frame carries at most
    6144 bits per channel per 1024 samples, so 16 kHz mono tops out at 96 kb/s (ffmpeg
    would clamp with a warning); 4 bits per sample per channel stays well inside."""
    return min(MAX_AUDIO_BITRATE, 4 * sample_rate * channels)


def check_mp4_name(path: str) -> None:
    """Refuse a file name that does not say MP4 (clip.wav would hold an MP4 under a lie)."""
    if not str(path).lower().endswith(".mp4"):
        raise ValueError(f"{path}: the clip is written as MP4, so its name must end in .mp4")


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: repeat the last row/column where a size is odd."""
    _, h, w, _ = frames.shape
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def fit_audio(waveform, num_samples: int) -> np.ndarray:
    """[N], [C,N] or [1,C,N] float -> [num_samples, C] float32, trimmed or zero-padded."""
    if isinstance(waveform, torch.Tensor):
        waveform = waveform.detach().cpu().float().numpy()
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim == 3 and waveform.shape[0] == 1:
        waveform = waveform[0]
    if waveform.ndim == 1:
        waveform = waveform[None]
    if waveform.ndim != 2 or waveform.shape[0] > 8:
        raise ValueError(f"expected waveform [C,N] (C <= 8) or [N], got shape {list(waveform.shape)}")
    waveform = waveform[:, :num_samples]
    waveform = np.pad(waveform, ((0, 0), (0, num_samples - waveform.shape[1])))
    return np.ascontiguousarray(np.clip(waveform, -1.0, 1.0).T)


# WAVE_FORMAT_EXTENSIBLE speaker masks (the channel layout a WAV states instead of leaving it to
# the reader): mono is front centre; otherwise the first C speakers in WAVE order (FL, FR, FC,
# LFE, BL, BR, FLC, FRC), so 2 is stereo and 6 is 5.1.
MONO_MASK = 0x4
PCM_SUBFORMAT = bytes.fromhex("0100000000001000800000aa00389b71")


def channel_mask(channels: int) -> int:
    return MONO_MASK if channels == 1 else (1 << channels) - 1


def wav_header(channels: int, sample_rate: int, num_samples: int) -> bytes:
    """The header of a 16-bit PCM WAV of `num_samples` frames that states its channel layout
    (WAVE_FORMAT_EXTENSIBLE), so ffmpeg reads it without "Guessed Channel Layout"."""
    block = 2 * channels
    data_size = num_samples * block
    fmt = struct.pack("<HHIIHHHHI16s", 0xFFFE, channels, int(sample_rate), int(sample_rate) * block, block, 16,
                      22, 16, channel_mask(channels), PCM_SUBFORMAT)
    return (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + data_size) + b"WAVE"
            + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_size))


def pcm16(samples: np.ndarray) -> bytes:
    """samples [N, C] float -1..1 -> interleaved little-endian 16-bit PCM."""
    return (samples * 32767.0).round().astype("<i2").tobytes()


def write_wav(path: str, samples: np.ndarray, sample_rate: int) -> None:
    """samples [N, C] float -1..1 -> 16-bit PCM WAV (wav_header)."""
    with open(path, "wb") as f:
        f.write(wav_header(samples.shape[1], sample_rate, samples.shape[0]))
        f.write(pcm16(samples))


def write_wav_chunks(path: str, chunks: Iterable, sample_rate: int, num_samples: int) -> int:
    """Waveform chunks ([C,N] / [N] / [1,C,N], consecutive in time) -> a 16-bit PCM WAV of
    exactly `num_samples` frames (trimmed, or zero-padded at the end), written as they come,
    so the whole waveform is never held. Returns the channel count."""
    channels, written = None, 0
    with open(path, "wb") as f:
        for chunk in chunks:
            samples = fit_audio(chunk, chunk.shape[-1])  # [n, C]
            if channels is None:
                channels = samples.shape[1]
                f.write(wav_header(channels, sample_rate, num_samples))
            elif samples.shape[1] != channels:
                raise ValueError(f"a waveform chunk has {samples.shape[1]} channels, the first had {channels}")
            samples = samples[: num_samples - written]
            f.write(pcm16(samples))
            written += samples.shape[0]
        if channels is None:
            raise ValueError("no waveform chunks to write")
        f.write(bytes(2 * channels * (num_samples - written)))
    return channels


def write_mp4(path: str, frames, fps: float, waveform=None, sample_rate: int | None = None,
              overwrite: bool = False, crf: int = DEFAULT_CRF) -> str:
    """Write frames [T,H,W,3] (float 0..1 or uint8) and an optional waveform [C,N] as MP4.

    Odd sizes are padded to even (edge rows/columns repeated). The audio is trimmed or
    zero-padded to the video's duration T / fps. Missing folders are made. An existing file
    is never replaced unless overwrite=True; the file appears only once complete (see
    jova_core.files). Returns `path`.
    """
    video = to_uint8_frames(frames)
    return write_mp4_chunks(path, [video], video.shape[0], fps, None if waveform is None else [waveform],
                            sample_rate, overwrite, crf)


def write_mp4_chunks(path: str, frame_chunks: Iterable, num_frames: int, fps: float, waveform_chunks=None,
                     sample_rate: int | None = None, overwrite: bool = False, crf: int = DEFAULT_CRF) -> str:
    """write_mp4 from chunks, for clips too long to hold decoded: `frame_chunks` yields
    consecutive frames [t,H,W,3] (or [1,t,H,W,3]) that are piped to ffmpeg as they come;
    `waveform_chunks` (optional) yields consecutive [C,n] pieces, written to the temporary
    WAV as they come (ffmpeg reads the sound from the start, so it is taken first). The
    clip has `num_frames` frames (a different count is refused) and its sound lasts
    num_frames / fps. Returns `path`."""
    check_mp4_name(path)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if waveform_chunks is not None and not sample_rate:
        raise ValueError("a waveform needs its sample_rate")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with atomic_output(path, overwrite) as partial, ExitStack() as temporary:
        audio_path, bitrate = None, MAX_AUDIO_BITRATE
        if waveform_chunks is not None:
            audio_path = temporary.enter_context(partial_file(directory, "audio.wav"))
            channels = write_wav_chunks(audio_path, waveform_chunks, sample_rate, round(num_frames / fps * sample_rate))
            bitrate = aac_bitrate(sample_rate, channels)
        writer, sent = None, 0
        for chunk in frame_chunks:
            video = pad_to_even(to_uint8_frames(chunk))
            if writer is None:
                height, width = video.shape[1:3]
                writer = imageio_ffmpeg.write_frames(
                    partial, (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=None,
                    macro_block_size=1, audio_path=audio_path, audio_codec="aac" if audio_path else None,
                    output_params=["-crf", str(crf), "-b:a", str(bitrate), "-movflags", "+faststart"],
                )
                writer.send(None)
            elif video.shape[1:3] != (height, width):
                writer.close()
                raise ValueError(f"a frame chunk is {video.shape[2]}x{video.shape[1]}, the first was {width}x{height}")
            for frame in video:
                writer.send(frame.tobytes())
            sent += video.shape[0]
        if writer is None:
            raise ValueError("no frames to write")
        writer.close()
        if sent != num_frames:
            raise ValueError(f"{sent} frames came for a clip of {num_frames}")
    return path
