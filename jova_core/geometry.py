"""Latent geometry as data: how latents relate to pixels and samples, and what a model takes.

The one owner of channel counts, strides, the causal-VAE frame rule (stride * k + 1
pixel frames), patch sizes and audio latent rates. A codec declares its geometry (an
instance below, or one read from its weights' config); a model's comes from its config
(``JoVAConfig.geometry``). New codecs and models add instances here, not constants
elsewhere.

    video latents  [B, channels, 1 + (T - 1) / temporal_stride, H / spatial_stride, W / spatial_stride]
    audio latents  [B, channels, T_lat] (frequency_bins 1) or [B, channels, frequency_bins, T_lat],
                   latent_rate frames per second

This module sits at the bottom of jova_core: it imports nothing from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class VideoLatentGeometry:
    """A causal video VAE's latent grid: pixel frame 0 is coded alone, then each group of
    `temporal_stride` frames makes one latent frame (so the frame counts it takes are
    temporal_stride * k + 1), and each spatial_stride x spatial_stride pixel block one
    latent cell of `channels` values."""

    channels: int
    temporal_stride: int
    spatial_stride: int
    name: str = field(default="custom", compare=False)

    def valid_num_frames(self, num_frames: int) -> int:
        """Largest frame count <= num_frames of the form temporal_stride * k + 1."""
        if num_frames < 1:
            raise ValueError(f"need at least one frame, got {num_frames}")
        return (num_frames - 1) // self.temporal_stride * self.temporal_stride + 1

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames the encoder makes of `num_frames` pixel frames (a tail that does
        not fill a group is dropped, as the causal encoder drops it)."""
        return (num_frames - 1) // self.temporal_stride + 1

    def num_frames(self, latent_frames: int) -> int:
        """Pixel frames the decoder makes of `latent_frames` latent frames."""
        return (latent_frames - 1) * self.temporal_stride + 1

    def latent_frame_of(self, pixel_frame):
        """The latent frame coding pixel frame t (int or integer tensor): ceil(t / stride)."""
        return (pixel_frame + self.temporal_stride - 1) // self.temporal_stride

    def size_problems(self, num_frames: int, height: int, width: int) -> list[str]:
        """Why a clip of this size cannot be encoded as it is (empty when it can)."""
        problems = []
        if num_frames < 1 or (num_frames - 1) % self.temporal_stride:
            example = self.valid_num_frames(max(num_frames, 1))
            problems.append(f"{num_frames} frames (need {self.temporal_stride}k+1, e.g. {example})")
        if height % self.spatial_stride or width % self.spatial_stride or height == 0 or width == 0:
            problems.append(f"{height}x{width} pixels (need multiples of {self.spatial_stride})")
        return problems

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, T_lat, H / s, W / s) of one clip; the size must be one `size_problems` accepts."""
        problems = self.size_problems(num_frames, height, width)
        if problems:
            raise ValueError(f"video size not accepted by the {self.name}: " + "; ".join(problems))
        return (self.channels, self.latent_frames(num_frames), height // self.spatial_stride, width // self.spatial_stride)

    def describe(self) -> str:
        return (f"{self.name} ({self.channels} channels, {self.temporal_stride}x{self.spatial_stride}x"
                f"{self.spatial_stride} stride)")


@dataclass(frozen=True)
class AudioLatentGeometry:
    """Audio latents [B, channels, T] (frequency_bins 1) or [B, channels, frequency_bins, T]
    at `latent_rate` latent frames per second.

    A codec's geometry also fixes the waveform side: `sample_rate`, the mel bins of its
    front end and `waveform_channels` (1 mono, 2 stereo). A model's geometry knows only
    the latent side (sample_rate None)."""

    channels: int
    latent_rate: float
    frequency_bins: int = 1
    sample_rate: int | None = None
    mel_bins: int | None = None
    waveform_channels: int = 1
    name: str = field(default="custom", compare=False)

    @property
    def samples_per_latent(self) -> int:
        """Waveform samples per latent frame (the mel hop times the VAE's time reduction)."""
        if self.sample_rate is None:
            raise ValueError(f"the {self.name} geometry has no sample rate (a model's has only the latent side)")
        return round(self.sample_rate / self.latent_rate)

    def latent_frames(self, seconds: float) -> int:
        """Latent frames the encoder makes of `seconds` of audio (whole frames only)."""
        return math.floor(seconds * self.sample_rate) // self.samples_per_latent

    def num_samples(self, latent_frames: int) -> int:
        """Waveform samples the decoder makes of `latent_frames` latent frames."""
        return latent_frames * self.samples_per_latent

    def latent_shape(self, latent_frames: int) -> tuple[int, ...]:
        """(C, T) or (C, F, T) of one clip."""
        bins = () if self.frequency_bins == 1 else (self.frequency_bins,)
        return (self.channels, *bins, latent_frames)

    def describe(self) -> str:
        bins = f" x {self.frequency_bins} bins" if self.frequency_bins != 1 else ""
        return f"{self.name} ({self.channels} channels{bins}, {self.latent_rate:g} latent frames/s)"


# The codecs' geometries, as published with their weights (facts in the reference notes).
WAN21_VAE = VideoLatentGeometry(16, 4, 8, name="Wan2.1 VAE")
# 8x spatial downsampling plus a 2x2 pixel patchify inside the VAE.
WAN22_VAE = VideoLatentGeometry(48, 4, 16, name="Wan2.2 VAE")
# MMAudio: mel hop 256 (16 kHz) / 512 (44.1 kHz), the VAE halves the mel frame rate.
MMAUDIO_16K = AudioLatentGeometry(20, 16_000 / (2 * 256), sample_rate=16_000, mel_bins=80, name="MMAudio 16 kHz VAE")
MMAUDIO_44K = AudioLatentGeometry(40, 44_100 / (2 * 512), sample_rate=44_100, mel_bins=128, name="MMAudio 44.1 kHz VAE")
# AudioLDM2 (JavisDiT++): 64-bin mel at hop 160, the VAE quarters time and mel bins.
AUDIOLDM2 = AudioLatentGeometry(
    8, 16_000 / (4 * 160), frequency_bins=64 // 4, sample_rate=16_000, mel_bins=64, name="AudioLDM2 VAE"
)
# Stable Audio Open's VAE (MagiHuman): stereo waveform fed at 51.2 kHz, 2048 samples per latent.
STABLE_AUDIO_OPEN = AudioLatentGeometry(
    64, 51_200 / 2048, sample_rate=51_200, waveform_channels=2, name="Stable Audio Open VAE"
)
VIDEO_GEOMETRIES = (WAN21_VAE, WAN22_VAE)
AUDIO_GEOMETRIES = (MMAUDIO_16K, MMAUDIO_44K, AUDIOLDM2, STABLE_AUDIO_OPEN)


def _suiting(channels: int, known) -> str:
    names = [g.name for g in known if g.channels == channels]
    return " or the ".join(names) if names else ""


@dataclass(frozen=True)
class ModelGeometry:
    """What a JoVA transformer takes: video latents of `video` geometry cut into
    video_patch (t, h, w) patches, audio latents of `audio` geometry cut into
    audio_patch (f, t) patches."""

    video: VideoLatentGeometry
    audio: AudioLatentGeometry
    video_patch: tuple[int, int, int] = (1, 2, 2)
    audio_patch: tuple[int, int] = (1, 1)

    @property
    def pixel_multiple(self) -> int:
        """Pixel width/height step of the clips the model takes: spatial stride x patch."""
        if self.video_patch[1] != self.video_patch[2]:
            raise ValueError(f"non-square video patches {self.video_patch} are not supported")
        return self.video.spatial_stride * self.video_patch[1]

    def check_video_latents(self, shape, what: str = "video latents") -> None:
        """A one-line ValueError unless `shape` is [B, C, F, H, W] this model takes."""
        shape = tuple(shape)
        if len(shape) != 5:
            raise ValueError(f"{what} must be [B, C, F, H, W], got shape {list(shape)}")
        self._check_channels(shape[1], self.video, VIDEO_GEOMETRIES, what)
        if min(shape) < 1:
            raise ValueError(f"{what} {list(shape)} are empty (0 frames or pixels): make the clip at least one frame "
                             f"of {self.pixel_multiple}x{self.pixel_multiple} pixels")

    def check_audio_latents(self, shape, what: str = "audio latents") -> None:
        """A one-line ValueError unless `shape` is [B, C, T] or [B, C, F, T] this model takes."""
        shape = tuple(shape)
        if len(shape) not in (3, 4):
            raise ValueError(f"{what} must be [B, C, T] or [B, C, F, T], got shape {list(shape)}")
        self._check_channels(shape[1], self.audio, AUDIO_GEOMETRIES, what)
        if min(shape) < 1:
            raise ValueError(f"{what} {list(shape)} are empty (0 latent frames): make the clip longer than "
                             f"{1 / self.audio.latent_rate:.3f} s")

    @staticmethod
    def _check_channels(channels: int, own, known, what: str) -> None:
        if channels == own.channels:
            return
        mine = _suiting(own.channels, known)
        theirs = _suiting(channels, known)
        raise ValueError(
            f"{what} have {channels} channels but this model takes {own.channels}"
            + (f" ({mine} latents)" if mine else "")
            + (f"; {channels}-channel latents are the {theirs}'s" if theirs else "")
            + ": make the latents with this model (JoVA Empty Latent from it) or load the model they were made for"
        )


def valid_num_frames(num_frames: int, temporal_stride: int = WAN21_VAE.temporal_stride) -> int:
    """Largest frame count <= num_frames of the form temporal_stride * k + 1 (at least 1)."""
    return VideoLatentGeometry(0, temporal_stride, 1).valid_num_frames(num_frames)


def valid_video_size(
    num_frames: int, height: int, width: int, multiple: int = WAN21_VAE.spatial_stride * 2,
    temporal_stride: int = WAN21_VAE.temporal_stride,
) -> tuple[int, int, int]:
    """Nearest (frames, height, width) a codec + model accept: frames stride * k + 1 (rounded
    down), height/width rounded to the nearest multiple of `multiple` (at least one)."""

    def snap(size: int) -> int:
        return max(multiple, int(round(size / multiple)) * multiple)

    return valid_num_frames(num_frames, temporal_stride), snap(height), snap(width)
