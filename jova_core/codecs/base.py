"""The two codec interfaces every node, sampler and trainer codes against.

Real codecs (Wan2.1 VAE; MMAudio VAE + BigVGAN; AudioLDM2 VAE + HiFi-GAN) and the
weight-free demo codecs share them: video latents [B, 16, 1 + (T-1)/4, H/8, W/8]; audio
latents [B, C, T_lat] (MMAudio, demo) or [B, C, F, T_lat] (AudioLDM2: F latent mel bins),
time last, at `latent_rate` Hz.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torchaudio.functional as AF

# The transformer patchifies latents 2x2, so pixel sizes must be multiples of 8 * 2.
MODEL_PIXEL_MULTIPLE = 16


def valid_num_frames(num_frames: int, temporal_stride: int = 4) -> int:
    """Largest frame count <= num_frames of the form stride*k + 1 (at least 1)."""
    if num_frames < 1:
        raise ValueError(f"need at least one frame, got {num_frames}")
    return (num_frames - 1) // temporal_stride * temporal_stride + 1


def valid_video_size(num_frames: int, height: int, width: int, multiple: int = MODEL_PIXEL_MULTIPLE) -> tuple[int, int, int]:
    """Nearest (frames, height, width) the codec + model accept: frames 4k+1 (rounded down),
    height/width rounded to the nearest multiple of `multiple` (at least one multiple)."""

    def snap(size: int) -> int:
        return max(multiple, int(round(size / multiple)) * multiple)

    return valid_num_frames(num_frames), snap(height), snap(width)


class VideoCodec(ABC):
    """frames float [B, T, H, W, 3] in 0..1  <->  normalised latents [B, 16, T_lat, H/8, W/8]."""

    latent_channels = 16
    temporal_stride = 4
    spatial_stride = 8

    @abstractmethod
    def encode(self, frames: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def decode(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor: ...

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        self.check_size(num_frames, height, width)
        return (
            self.latent_channels,
            (num_frames - 1) // self.temporal_stride + 1,
            height // self.spatial_stride,
            width // self.spatial_stride,
        )

    def num_frames(self, latent_frames: int) -> int:
        return (latent_frames - 1) * self.temporal_stride + 1

    def check_size(self, num_frames: int, height: int, width: int) -> None:
        problems = []
        if num_frames < 1 or (num_frames - 1) % self.temporal_stride:
            problems.append(f"{num_frames} frames (need {self.temporal_stride}k+1, e.g. {valid_num_frames(max(num_frames, 1))})")
        if height % self.spatial_stride or width % self.spatial_stride or height == 0 or width == 0:
            problems.append(f"{height}x{width} pixels (need multiples of {self.spatial_stride}; 16 for the model)")
        if problems:
            raise ValueError(
                "video size not accepted by the codec: " + "; ".join(problems)
                + ". Resize/trim first, e.g. with jova_core.codecs.valid_video_size."
            )

    def as_batch(self, frames: torch.Tensor) -> torch.Tensor:
        """[T,H,W,3] or [B,T,H,W,3] -> [B,T,H,W,3] float, checked."""
        if frames.ndim == 4:
            frames = frames[None]
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames [B,T,H,W,3] or [T,H,W,3] (RGB, 0..1), got shape {list(frames.shape)}")
        self.check_size(frames.shape[1], frames.shape[2], frames.shape[3])
        return frames.float()

    def check_latents(self, latents: torch.Tensor) -> None:
        if latents.ndim != 5 or latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"expected video latents [B,{self.latent_channels},T,H,W], got shape {list(latents.shape)}"
            )


class AudioCodec(ABC):
    """waveform [B, C, N] (or [C, N]) at any rate  <->  latents [B, latent_channels, T_lat]
    or, for codecs with `latent_bins`, [B, latent_channels, latent_bins, T_lat];
    decode gives mono [B, 1, N] at `sample_rate`."""

    sample_rate: int
    latent_rate: float
    latent_channels: int
    # Frequency bins of 2-D latents [B, C, F, T]; None for 1-D latents [B, C, T].
    latent_bins: int | None = None

    @abstractmethod
    def encode(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor: ...

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...

    @property
    def samples_per_latent(self) -> int:
        return round(self.sample_rate / self.latent_rate)

    def latent_frames(self, seconds: float) -> int:
        """Latent frames the encoder produces for `seconds` of audio."""
        return math.floor(seconds * self.sample_rate) // self.samples_per_latent

    def num_samples(self, latent_frames: int) -> int:
        """Samples decode() returns for `latent_frames` latent frames."""
        return latent_frames * self.samples_per_latent

    def prepare_waveform(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """[B,C,N] or [C,N] at `sample_rate` -> mono [B, N] at self.sample_rate, clamped to [-1, 1]."""
        if waveform.ndim == 2:
            waveform = waveform[None]
        if waveform.ndim != 3:
            raise ValueError(f"expected waveform [B,C,N] or [C,N], got shape {list(waveform.shape)}")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        mono = waveform.float().mean(dim=1)
        if int(sample_rate) != self.sample_rate:
            mono = AF.resample(mono, int(sample_rate), self.sample_rate)
        if mono.shape[-1] < self.samples_per_latent:
            raise ValueError(
                f"audio too short: {mono.shape[-1]} samples at {self.sample_rate} Hz; "
                f"need at least {self.samples_per_latent} (one latent frame)"
            )
        return mono.clamp(-1.0, 1.0)

    def latent_shape(self, latent_frames: int) -> tuple[int, ...]:
        """One clip's latent shape: (C, T) or (C, F, T)."""
        bins = () if self.latent_bins is None else (self.latent_bins,)
        return (self.latent_channels, *bins, latent_frames)

    def check_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, *latent_shape(T)] (a missing batch axis is added) or a ValueError."""
        expected = self.latent_shape(latents.shape[-1])
        if latents.ndim == len(expected):
            latents = latents[None]
        if tuple(latents.shape[1:]) != expected:
            layout = "C,T" if self.latent_bins is None else "C,F,T"
            raise ValueError(
                f"expected audio latents [B,{layout}] = [B,{','.join(map(str, expected[:-1]))},T], "
                f"got shape {list(latents.shape)}"
            )
        return latents
