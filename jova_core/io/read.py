"""Reading frames and audio from media files (any format ffmpeg reads), with fps and
sample-rate conversion done by ffmpeg."""

from __future__ import annotations

import imageio_ffmpeg
import numpy as np
import torch

from .clip import Clip
from .ffmpeg import probe_media, run_ffmpeg


def _window_args(start: float, duration: float | None) -> list[str]:
    args = ["-ss", f"{start:.6f}"] if start > 0 else []
    return args + (["-t", f"{duration:.6f}"] if duration is not None else [])


def _check_complete(path: str, declared: float | None, start: float, duration: float | None,
                    decoded: float, frame_seconds: float = 0.0) -> None:
    """Refuse a file that decodes to less than its container declares (a truncated or
    damaged download, a killed export): reading on would silently use part of it.
    `decoded`: seconds of the longest stream read; `frame_seconds`: one video frame."""
    if not declared:
        return
    expected = max(0.0, declared - start)
    if duration is not None:
        expected = min(expected, duration)
    if expected - decoded > max(0.1, 3 * frame_seconds, 0.02 * expected):
        raise ValueError(f"{path} is truncated or damaged: only {decoded:.2f} s of its {expected:.2f} s could be "
                         "decoded; export or download it again")


def read_audio(path: str, sample_rate: int | None = None, start: float = 0.0,
               duration: float | None = None) -> tuple[torch.Tensor, int]:
    """(waveform [C, N] float32 in -1..1, sample_rate) from the first audio stream of `path`."""
    info = probe_media(path)
    streams = info.of_kind("audio")
    if not streams:
        raise ValueError(f"{path} has no audio stream")
    native = streams[0]
    rate = int(sample_rate or native.sample_rate or 0)
    if rate <= 0:
        raise ValueError(f"could not tell the sample rate of {path}; pass sample_rate explicitly")
    channels = native.channels or 1
    raw = run_ffmpeg(
        [*_window_args(start, duration), "-i", path, "-map", "0:a:0", "-vn", "-f", "f32le",
         "-acodec", "pcm_f32le", "-ac", str(channels), "-ar", str(rate), "-"],
        f"reading the audio of {path}",
    )
    samples = np.frombuffer(raw, dtype="<f4").reshape(-1, channels)
    if not info.of_kind("video"):  # with a video, read_clip checks the streams together
        _check_complete(path, info.duration, start, duration, len(samples) / rate)
    return torch.from_numpy(samples.T.copy()), rate


def read_clip(path: str, fps: float | None = None, sample_rate: int | None = None, start: float = 0.0,
              duration: float | None = None) -> Clip:
    """Clip(frames [T,H,W,3] float32 0..1, waveform [C,N] or None, fps, sample_rate); it
    unpacks, so `frames, waveform, fps, rate = read_clip(path)` works too.

    `fps` / `sample_rate` convert on the fly (None keeps the file's); `start` / `duration`
    (seconds) cut a window. The waveform is None when the file has no audio. A file that
    decodes to less than its container declares (truncated, damaged) is refused.
    """
    info = probe_media(path)
    videos = info.of_kind("video")
    if not videos:
        raise ValueError(f"{path} has no video stream; use jova_core.io.read_audio for audio-only files")
    output_params = ["-vf", f"fps={fps}"] if fps else []
    reader = imageio_ffmpeg.read_frames(path, input_params=_window_args(start, duration), output_params=output_params)
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(chunk, dtype=np.uint8).reshape(height, width, 3) for chunk in reader]
    if not frames:
        raise ValueError(f"{path}: no frames in the requested window (start={start}, duration={duration})")
    video = torch.from_numpy(np.stack(frames)).float() / 255.0
    clip_fps = float(fps or meta["fps"] or videos[0].fps)
    waveform, rate = None, None
    if info.of_kind("audio"):
        waveform, rate = read_audio(path, sample_rate, start, duration)
    # The container's duration is its longest stream's: one stream must reach it.
    decoded = max(len(frames) / clip_fps, 0.0 if waveform is None else waveform.shape[-1] / rate)
    _check_complete(path, info.duration, start, duration, decoded, 1.0 / clip_fps)
    return Clip(video, waveform, clip_fps, rate)
