"""The two codec interfaces every node, sampler and trainer codes against.

Real codecs (Wan2.1 / Wan2.2 VAE; MMAudio VAE + BigVGAN; AudioLDM2 VAE + HiFi-GAN; Stable
Audio Open VAE) and the weight-free demo codecs share them. Each declares its latent geometry (jova_core.geometry):
video latents [B, C, 1 + (T-1)/stride_t, H/stride, W/stride], audio latents [B, C, T_lat]
(MMAudio, demo) or [B, C, F, T_lat] (AudioLDM2: F latent mel bins), time last, at
`latent_rate` Hz; the attributes below read it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

import torch
import torchaudio.functional as AF

from .chunked import crossfaded_chunks
from ..geometry import WAN21_VAE, AudioLatentGeometry, VideoLatentGeometry, valid_num_frames, valid_video_size

__all__ = ["AudioCodec", "ModuleCodec", "VideoCodec", "valid_num_frames", "valid_video_size"]


class ModuleCodec:
    """Device and dtype handling of a codec built from torch modules (mixed into the real
    codecs). `networks` names its modules, the VAE first (its parameters tell the device and
    dtype); `float32_modules` (a mel front end) follow the device but keep float32."""

    networks: tuple[str, ...] = ("vae",)
    float32_modules: tuple[str, ...] = ()

    @property
    def device(self) -> torch.device:
        return next(getattr(self, self.networks[0]).parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(getattr(self, self.networks[0]).parameters()).dtype

    def to(self, device=None, dtype=None):
        # diffusers warns about float32 modules whenever a dtype keyword is given, even None.
        cast = {"device": device} if dtype is None else {"device": device, "dtype": dtype}
        for name in self.networks:
            getattr(self, name).to(**cast)
        for name in self.float32_modules:
            getattr(self, name).to(device=device)
        return self


class VideoCodec(ABC):
    """frames float [B, T, H, W, 3] in 0..1  <->  normalised latents [B, C, T_lat, H/s, W/s]
    of `geometry` (Wan2.1's unless a codec says otherwise)."""

    geometry: VideoLatentGeometry = WAN21_VAE

    @property
    def latent_channels(self) -> int:
        return self.geometry.channels

    @property
    def temporal_stride(self) -> int:
        return self.geometry.temporal_stride

    @property
    def spatial_stride(self) -> int:
        return self.geometry.spatial_stride

    @abstractmethod
    def encode(self, frames: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def decode(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor: ...

    def decode_chunks(self, latents: torch.Tensor, chunk_latents: int = 8) -> Iterator[torch.Tensor]:
        """decode() as consecutive frame chunks [B, t, H, W, 3] whose concatenation is the
        whole decode, so a long clip can be written without holding its frames. Codecs
        that can decode a latent window on its own override this; here the whole clip is
        decoded and handed out in pieces (memory is not flat)."""
        frames = self.decode(latents)
        yield from frames.split(self.temporal_stride * chunk_latents, dim=1)

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        self.check_size(num_frames, height, width)
        return self.geometry.latent_shape(num_frames, height, width)

    def num_frames(self, latent_frames: int) -> int:
        return self.geometry.num_frames(latent_frames)

    def check_size(self, num_frames: int, height: int, width: int) -> None:
        problems = self.geometry.size_problems(num_frames, height, width)
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
    or [B, latent_channels, frequency_bins, T_lat] of `geometry`; the encoder works at
    `sample_rate`, decode gives [B, geometry.waveform_channels, N] at `decoded_sample_rate`
    (the same rate unless a codec resamples its output, as Stable Audio Open's 51.2 -> 44.1
    kHz does)."""

    geometry: AudioLatentGeometry

    @property
    def sample_rate(self) -> int:
        return self.geometry.sample_rate

    @property
    def decoded_sample_rate(self) -> int:
        """Rate of decode()'s waveform."""
        return self.sample_rate

    @property
    def latent_rate(self) -> float:
        return self.geometry.latent_rate

    @property
    def latent_channels(self) -> int:
        return self.geometry.channels

    @abstractmethod
    def encode(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor: ...

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...

    # Latent frames of context each side of a window for decode_chunks: set by codecs whose
    # decoder only sees nearby latents (convolutions, no whole-clip norm or attention).
    chunk_margin_latents: int | None = None

    def decode_chunks(self, latents: torch.Tensor, chunk_latents: int = 64) -> Iterator[torch.Tensor]:
        """decode() as consecutive waveform chunks [B, C, n], for writing a long clip
        without holding its sound. With chunk_margin_latents set, windows of
        `chunk_latents` are decoded with that much context and crossfaded over one latent
        frame's samples (codecs.chunked); otherwise the whole clip is decoded and handed
        out in pieces (memory is not flat)."""
        latents = self.check_latents(latents)
        per_latent = self.num_samples(1)
        if self.chunk_margin_latents is None:
            yield from self.decode(latents).split(per_latent * chunk_latents, dim=-1)
            return
        yield from crossfaded_chunks(self.decode, latents, per_latent, chunk_latents, self.chunk_margin_latents,
                                     per_latent)

    @property
    def samples_per_latent(self) -> int:
        return self.geometry.samples_per_latent

    def latent_frames(self, seconds: float) -> int:
        """Latent frames the encoder produces for `seconds` of audio."""
        return self.geometry.latent_frames(seconds)

    def num_samples(self, latent_frames: int) -> int:
        """Samples decode() returns for `latent_frames` latent frames (at decoded_sample_rate)."""
        return round(self.geometry.num_samples(latent_frames) * self.decoded_sample_rate / self.sample_rate)

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

    def check_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, *geometry.latent_shape(T)] (a missing batch axis is added) or a ValueError."""
        expected = self.geometry.latent_shape(latents.shape[-1])
        if latents.ndim == len(expected):
            latents = latents[None]
        if tuple(latents.shape[1:]) != expected:
            layout = "C,T" if len(expected) == 2 else "C,F,T"
            raise ValueError(
                f"expected audio latents [B,{layout}] = [B,{','.join(map(str, expected[:-1]))},T], "
                f"got shape {list(latents.shape)}"
            )
        return latents
