"""How visible the joins of an extended clip are (bench/long_clip.py, tests/test_extend.py).

For decoded frames [T, H, W, 3] and a mono waveform [N], with the seams of
``sampling.extend`` (the first new latent frame of each chunk):

    video_ratio  mean frame-to-frame change (mean |frame[t+1] - frame[t]|) across the
                 seams, over its median elsewhere; a video latent frame spans
                 `temporal_stride` pixel-frame steps, so every step from the last held
                 latent frame's pixel frame to the first new one counts as the seam.
    flux_ratio   the same for audio spectral flux (L2 norm of the change of the STFT
                 magnitude between hops), hops within one audio latent frame of a seam.
    jump_ratio   the largest sample-to-sample jump within one audio latent frame of a
                 seam, over the largest elsewhere (<= 1: no click).
1 means a seam looks like any other moment.
"""

from __future__ import annotations

import torch

_N_FFT, _HOP = 512, 128


def seam_positions(chunks, temporal_stride: int, samples_per_latent: int) -> tuple[list[int], list[int]]:
    """(pixel frame, waveform sample) of each chunk's first new latent frame."""
    frames = [(c.video_start + c.video_held) * temporal_stride for c in chunks]
    samples = [(c.audio_start + c.audio_held) * samples_per_latent for c in chunks]
    return frames, samples


def seam_ratios(frames: torch.Tensor, waveform: torch.Tensor, video_seams: list[int], audio_seams: list[int],
                temporal_stride: int, samples_per_latent: int) -> dict[str, float]:
    """video_ratio, flux_ratio, jump_ratio (module docstring) of one clip."""
    change = (frames[1:].float() - frames[:-1].float()).abs().mean(dim=(1, 2, 3))  # step t -> t+1
    at_video = torch.zeros_like(change, dtype=torch.bool)
    for seam in video_seams:
        at_video[max(0, seam - temporal_stride) : seam] = True

    wave = waveform.reshape(-1).float()
    spec = torch.stft(wave, _N_FFT, _HOP, window=torch.hann_window(_N_FFT), return_complex=True, center=True).abs()
    flux = (spec[:, 1:] - spec[:, :-1]).norm(dim=0)  # hop h -> h+1, centred at sample (h + 1) * HOP
    centres = torch.arange(1, flux.shape[0] + 1) * _HOP
    near_flux = _near(centres, audio_seams, samples_per_latent)

    jump = (wave[1:] - wave[:-1]).abs()
    near_jump = _near(torch.arange(jump.shape[0]), audio_seams, samples_per_latent)
    return {
        "video_ratio": _ratio(change[at_video].mean(), change[~at_video].median()),
        "flux_ratio": _ratio(flux[near_flux].mean(), flux[~near_flux].median()),
        "jump_ratio": _ratio(jump[near_jump].max(), jump[~near_jump].max()),
    }


def _near(positions: torch.Tensor, seams: list[int], radius: int) -> torch.Tensor:
    mask = torch.zeros_like(positions, dtype=torch.bool)
    for seam in seams:
        mask |= (positions - seam).abs() <= radius
    return mask


def _ratio(num: torch.Tensor, den: torch.Tensor) -> float:
    return float(num / den.clamp_min(1e-12))
