"""Deterministic speech-like test signal (no data files needed): used to calibrate the demo
audio codec and by the codec tests and benchmark."""

from __future__ import annotations

import math

import torch

# (F1, F2) formants in Hz of a few vowels.
_VOWELS = ((730, 1090), (270, 2290), (300, 870), (530, 1840), (570, 840))


def syllables(seconds: float, sample_rate: int = 16_000, seed: int = 0) -> torch.Tensor:
    """Speech-like mono signal [1, N]: voiced vowels (harmonics shaped by two formants) with
    noise-burst consonants between them and short pauses; peak about 0.5."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * sample_rate)
    out = torch.zeros(n)
    t0 = int(0.05 * sample_rate)
    while t0 < n:
        burst = int(0.04 * sample_rate)
        vowel = int((0.12 + 0.1 * torch.rand(1, generator=g).item()) * sample_rate)
        end = min(n, t0 + burst + vowel)
        noise = torch.randn(burst, generator=g) * 0.08
        out[t0 : min(n, t0 + burst)] = noise[: max(0, min(n, t0 + burst) - t0)]
        f1, f2 = _VOWELS[int(torch.randint(len(_VOWELS), (1,), generator=g))]
        f0 = 110 + 60 * torch.rand(1, generator=g).item()
        length = end - (t0 + burst)
        if length > 0:
            t = torch.arange(length) / sample_rate
            pitch = f0 * (1 + 0.1 * torch.sin(2 * math.pi * 3 * t))
            phase = 2 * math.pi * torch.cumsum(pitch, 0) / sample_rate
            voiced = torch.zeros(length)
            for h in range(1, int(4000 // f0)):
                f = h * f0
                gain = math.exp(-((f - f1) / 150) ** 2) + 0.6 * math.exp(-((f - f2) / 200) ** 2) + 0.02
                voiced += gain * torch.sin(h * phase)
            envelope = torch.sin(math.pi * torch.arange(length) / length)
            out[t0 + burst : end] = 0.5 * voiced / voiced.abs().max() * envelope
        t0 = end + int((0.03 + 0.08 * torch.rand(1, generator=g).item()) * sample_rate)
    return out[None]
