"""Weight-free demo codecs for the CPU demo model.

Fixed, deterministic transforms with the SAME latent geometry as the real codecs, so the
model, the mouth mask and every node treat demo and real codecs alike:

DemoVideoCodec (like Wan2.1: 16 channels, causal 4x time, 8x8 space)
    RGB -> YCbCr; per 8x8 block the orthonormal 2-D DCT, keeping the 10 lowest-frequency
    luma coefficients and 3 per chroma plane (zig-zag order) = 16 channels, each divided by
    its standard deviation measured on scikit-image's sample photos. Latent frame k is
    pixel frame 4k (frame 0 alone, as in Wan's causal VAE). Decode is the exact inverse
    transform of the kept coefficients (a low-pass, slightly blocky image) with linear
    interpolation in time between latent frames, so motion stays smooth.

DemoAudioCodec (like MMAudio 16k: 20 channels at 31.25 Hz)
    16 kHz log10-mel (80 bins, 62.5 Hz, the MMAudio 16k front end) -> 2x average pooling in
    time -> an orthonormal DCT over mel bins keeping 20 coefficients, standardised with
    fixed statistics measured on a synthetic syllable signal. Decode inverts the
    projection, upsamples in time, maps mel back to a linear spectrogram (least squares)
    and runs Griffin-Lim (torchaudio). Voice timbre is rough but syllables are audible.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F
import torchaudio.functional as AF

from ..geometry import MMAUDIO_16K
from .base import AudioCodec, VideoCodec
from .mel import MEL_16K, MelFrontEnd

# Zig-zag order of the lowest DCT frequencies (row, col) kept per 8x8 block.
_LUMA_COEFFS = ((0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1), (3, 0))
_CHROMA_COEFFS = ((0, 0), (0, 1), (1, 0))
# Per-channel standard deviations of those coefficients (luma centred at 0.5) over
# scikit-image's astronaut, chelsea, coffee and rocket at 128 and 256 px.
_VIDEO_SCALE = (1.6, 0.42, 0.34, 0.15, 0.19, 0.2, 0.12, 0.12, 0.11, 0.085, 0.6, 0.1, 0.075, 0.68, 0.11, 0.085)
# RGB -> YCbCr (BT.601, full range; chroma centred at 0).
_RGB_TO_YCBCR = (
    (0.299, 0.587, 0.114),
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)

# log10-mel standardisation and per-channel statistics of the projected coefficients,
# measured on jova_core.codecs.signals.syllables (synthetic voiced syllables).
_MEL_MEAN, _MEL_STD = -2.3, 1.5
_AUDIO_MEAN = (0.0, 3.2, -2.5, 0.9, -1.2, -0.6, 0.2, -0.7, 0.2, -0.5, -0.1, 0.1, -0.5, 0.1, -0.3, -0.1, 0.0, -0.35, 0.0, -0.25)
_AUDIO_SCALE = (5.5, 2.5, 2.2, 1.6, 1.3, 0.8, 0.75, 0.65, 0.5, 0.55, 0.35, 0.4, 0.5, 0.3, 0.35, 0.25, 0.25, 0.35, 0.25, 0.3)
_GRIFFIN_LIM_ITERS = 32


def dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix [n, n]: row k is frequency k."""
    position = torch.arange(n, dtype=torch.float64)
    frequency = torch.arange(n, dtype=torch.float64)[:, None]
    matrix = torch.cos(math.pi * (position + 0.5) * frequency / n) * math.sqrt(2.0 / n)
    matrix[0] /= math.sqrt(2.0)
    return matrix.float()


class DemoVideoCodec(VideoCodec):
    def __init__(self):
        basis_1d = dct_matrix(self.spatial_stride)
        planes = [(0, _LUMA_COEFFS), (1, _CHROMA_COEFFS), (2, _CHROMA_COEFFS)]
        kernels = torch.zeros(self.latent_channels, 3, self.spatial_stride, self.spatial_stride)
        channel = 0
        for plane, coeffs in planes:
            for row, col in coeffs:
                kernels[channel, plane] = torch.outer(basis_1d[row], basis_1d[col])
                channel += 1
        # Fold the per-channel scale into the analysis kernels; synthesis uses the unscaled transpose.
        scale = torch.tensor(_VIDEO_SCALE).view(-1, 1, 1, 1)
        self.analysis = kernels / scale
        self.synthesis = kernels * scale
        self.rgb_to_ycbcr = torch.tensor(_RGB_TO_YCBCR)
        self.ycbcr_to_rgb = torch.linalg.inv(self.rgb_to_ycbcr)
        self.luma_offset = torch.tensor([0.5, 0.0, 0.0]).view(1, 3, 1, 1)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        frames = self.as_batch(frames).cpu()
        batch = frames.shape[0]
        keyframes = frames[:, :: self.temporal_stride]  # causal: latent k <- pixel frame 4k
        t_lat = keyframes.shape[1]
        rgb = keyframes.reshape(-1, *keyframes.shape[2:]).permute(0, 3, 1, 2)  # [B*T_lat, 3, H, W]
        ycbcr = torch.einsum("ij,bjhw->bihw", self.rgb_to_ycbcr, rgb) - self.luma_offset
        coeffs = F.conv2d(ycbcr, self.analysis, stride=self.spatial_stride)  # [B*T_lat, 16, H/8, W/8]
        return coeffs.reshape(batch, t_lat, *coeffs.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor:
        """`tiled` is accepted for interface parity; blocks are independent, so it changes nothing."""
        self.check_latents(latents)
        latents = latents.float().cpu()
        batch, _, t_lat, h, w = latents.shape
        # Linear interpolation between latent frames k and k+1 for pixel frames 4k .. 4k+4.
        pixel_t = torch.arange(self.num_frames(t_lat), dtype=torch.float32) / self.temporal_stride
        lower = pixel_t.floor().long().clamp(max=t_lat - 1)
        upper = (lower + 1).clamp(max=t_lat - 1)
        weight = (pixel_t - lower).view(1, 1, -1, 1, 1)
        latents = latents[:, :, lower] * (1 - weight) + latents[:, :, upper] * weight  # [B,16,T,h,w]
        flat = latents.permute(0, 2, 1, 3, 4).reshape(-1, self.latent_channels, h, w)
        ycbcr = F.conv_transpose2d(flat, self.synthesis, stride=self.spatial_stride) + self.luma_offset
        rgb = torch.einsum("ij,bjhw->bihw", self.ycbcr_to_rgb, ycbcr).clamp(0.0, 1.0)
        return rgb.reshape(batch, -1, 3, *rgb.shape[2:]).permute(0, 1, 3, 4, 2).contiguous()

    def decode_chunks(self, latents: torch.Tensor, chunk_latents: int = 8) -> Iterator[torch.Tensor]:
        """Exactly decode()'s frames, `chunk_latents` latent frames' worth at a time: pixel
        frames 4k .. 4k+3 interpolate latent frames k and k+1 only, so each window is decoded
        with the next latent frame and its last interpolation point dropped."""
        self.check_latents(latents)
        total = latents.shape[2]
        for start in range(0, total, chunk_latents):
            stop = min(start + chunk_latents, total)
            frames = self.decode(latents[:, :, start:min(stop + 1, total)])
            yield frames if stop == total else frames[:, : (stop - start) * self.temporal_stride]


class DemoAudioCodec(AudioCodec):
    geometry = MMAUDIO_16K
    # decode_chunks: Griffin-Lim finds each window's phase with 0.26 s of context each side.
    chunk_margin_latents = 8

    def __init__(self):
        self.mel = MelFrontEnd(MEL_16K)
        self.projection = dct_matrix(MEL_16K.n_mels)[: self.latent_channels]  # [20, 80], orthonormal rows
        self.mean = torch.tensor(_AUDIO_MEAN).view(1, -1, 1)
        self.scale = torch.tensor(_AUDIO_SCALE).view(1, -1, 1)
        self.window = torch.hann_window(MEL_16K.n_fft)

    @torch.no_grad()
    def encode(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        mono = self.prepare_waveform(waveform, sample_rate).cpu()
        log_mel = (self.mel(mono) - _MEL_MEAN) / _MEL_STD  # [B, 80, F] at 62.5 Hz
        pooled = F.avg_pool1d(log_mel, kernel_size=2)  # [B, 80, F // 2] at 31.25 Hz
        coeffs = torch.einsum("km,bmt->bkt", self.projection, pooled)
        return (coeffs - self.mean) / self.scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        latents = self.check_latents(latents).float().cpu()
        coeffs = latents * self.scale + self.mean
        pooled = torch.einsum("km,bkt->bmt", self.projection, coeffs)  # [B, 80, T]
        log_mel = F.interpolate(pooled, scale_factor=2, mode="linear", align_corners=False)
        mel_magnitude = self.mel.log_to_magnitude(log_mel * _MEL_STD + _MEL_MEAN)
        linear = self.mel.mel_to_linear(mel_magnitude)  # [B, 513, 2T]
        cfg = self.mel.config
        num_samples = self.num_samples(latents.shape[-1])
        offset = self.mel.frame_offset  # Griffin-Lim frames are centred; ours sit `offset` samples later
        waveform = AF.griffinlim(
            linear, window=self.window, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.n_fft,
            power=1.0, n_iter=_GRIFFIN_LIM_ITERS, momentum=0.99, length=num_samples - offset, rand_init=False,
        )
        waveform = F.pad(waveform, (offset, 0))
        return waveform.clamp(-1.0, 1.0)[:, None]  # [B, 1, N]
