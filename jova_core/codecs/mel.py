"""Log-mel front end that reproduces MMAudio's, built on torchaudio.

MMAudio's two variants differ in more than the sizes: the 16 kHz one takes log10 of the
mel magnitudes, the 44.1 kHz one the natural log. Both reflect-pad the waveform by
(n_fft - hop) / 2 on each side, run an STFT with center=False and a periodic Hann window,
take the magnitude as sqrt(re^2 + im^2 + 1e-9), project it on a Slaney-scale,
Slaney-normalised mel filterbank and clamp at 1e-5 before the log.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int
    n_fft: int  # also the window length
    hop_length: int
    n_mels: int
    f_max: float
    log_base: str  # "10" or "e"

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length


MEL_16K = MelConfig(sample_rate=16_000, n_fft=1024, hop_length=256, n_mels=80, f_max=8_000.0, log_base="10")
MEL_44K = MelConfig(sample_rate=44_100, n_fft=2048, hop_length=512, n_mels=128, f_max=22_050.0, log_base="e")

# Magnitudes below this are clamped before the log (MMAudio's floor).
MAGNITUDE_FLOOR = 1e-5


class MelFrontEnd(nn.Module):
    """waveform [B, N] (or [N]) at `config.sample_rate` -> log-mel [B, n_mels, N // hop]."""

    def __init__(self, config: MelConfig):
        super().__init__()
        self.config = config
        n_freqs = config.n_fft // 2 + 1
        # torchaudio returns [n_freqs, n_mels]; keep [n_mels, n_freqs] to left-multiply spectra.
        fbank = AF.melscale_fbanks(
            n_freqs, f_min=0.0, f_max=config.f_max, n_mels=config.n_mels,
            sample_rate=config.sample_rate, norm="slaney", mel_scale="slaney",
        )
        self.register_buffer("mel_basis", fbank.T.contiguous(), persistent=False)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        self._mel_inverse: torch.Tensor | None = None

    def num_frames(self, num_samples: int) -> int:
        pad = (self.config.n_fft - self.config.hop_length) // 2
        return (num_samples + 2 * pad - self.config.n_fft) // self.config.hop_length + 1

    def magnitude_to_log(self, mel_magnitude: torch.Tensor) -> torch.Tensor:
        clamped = mel_magnitude.clamp(min=MAGNITUDE_FLOOR)
        return torch.log10(clamped) if self.config.log_base == "10" else torch.log(clamped)

    def log_to_magnitude(self, log_mel: torch.Tensor) -> torch.Tensor:
        return torch.pow(10.0, log_mel) if self.config.log_base == "10" else torch.exp(log_mel)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.ndim == 1:
            waveform = waveform[None]
        cfg = self.config
        pad = (cfg.n_fft - cfg.hop_length) // 2
        if waveform.shape[-1] <= pad:
            raise ValueError(
                f"audio of {waveform.shape[-1]} samples is too short for the mel front end "
                f"(needs more than {pad} samples at {cfg.sample_rate} Hz)"
            )
        waveform = F.pad(waveform[:, None].float(), (pad, pad), mode="reflect")[:, 0]
        spectrum = AF.spectrogram(
            waveform, pad=0, window=self.window, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
            win_length=cfg.n_fft, power=None, normalized=False, center=False,
        )  # [B, n_freqs, frames] complex
        magnitude = torch.sqrt(spectrum.real.pow(2) + spectrum.imag.pow(2) + 1e-9)
        return self.magnitude_to_log(torch.matmul(self.mel_basis, magnitude))

    def mel_to_linear(self, mel_magnitude: torch.Tensor) -> torch.Tensor:
        """Least-squares linear magnitude [B, n_freqs, T] for a mel magnitude [B, n_mels, T] (non-negative)."""
        if self._mel_inverse is None or self._mel_inverse.device != self.mel_basis.device:
            self._mel_inverse = torch.linalg.pinv(self.mel_basis)  # [n_freqs, n_mels], computed once
        return torch.matmul(self._mel_inverse, mel_magnitude).clamp(min=0.0)

    @property
    def frame_offset(self) -> int:
        """Samples between a frame's centre under center=True framing and under this front end's padding."""
        return self.config.n_fft // 2 - (self.config.n_fft - self.config.hop_length) // 2

