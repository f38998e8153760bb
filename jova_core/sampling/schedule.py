"""The flow-matching noise schedule, in one place for the sampler and the trainer.

Convention (Wan2.1 / SD3 rectified flow): a clean latent x0 and Gaussian noise are
mixed linearly, ``x_t = (1 - sigma) * x0 + sigma * noise`` with sigma in [0, 1]
(0 = clean), the model predicts the velocity ``noise - x0``, and it reads the time as
``t = 1000 * sigma``. Because x_t is linear in sigma, ``x0 = x_t - sigma * velocity``.

Where the schedule starts is a model's setting: JoVA / Wan2.1 sample from sigma_max = 1
(pure noise); daVinci-MagiHuman's scheduler from sigma_max = 0.999 (Wan2.2's
FlowUniPCMultistepScheduler: linspace(0.999, 0) before the shift, first sigma 0.9998), and
reads its timestep as the truncated integer int(1000 sigma) (`integer_timestep`).
"""

from __future__ import annotations

import torch

# Wan's timestep scale: the model is told t = NUM_TRAIN_TIMESTEPS * sigma.
NUM_TRAIN_TIMESTEPS = 1000


def shift_sigma(sigma, shift: float):
    """Move sigma towards 1 (more time at high noise): shift*s / (1 + (shift-1)*s).

    Works on floats, numpy arrays and tensors; shift=1 is the identity. This is the
    Wan2.1 / SD3 ``flow_shift``; larger latents (more tokens) want a larger shift.
    """
    if shift <= 0:
        raise ValueError(f"shift must be positive, got {shift}")
    return shift * sigma / (1 + (shift - 1) * sigma)


def sampling_sigmas(steps: int, shift: float, sigma_max: float = 1.0) -> torch.Tensor:
    """The sigmas [steps] at which the sampler calls the model, from shift(sigma_max) down to
    shift(sigma_max / steps).

    Evenly spaced in the unshifted time from sigma_max to 0, then shifted; the final sigma 0
    (clean) is implicit: the solver steps from the last of these to 0. sigma_max is 1 for
    JoVA / Wan2.1, 0.999 for daVinci-MagiHuman (GenerationDefaults.sigma_max).
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0 < sigma_max <= 1:
        raise ValueError(f"sigma_max must be in (0, 1], got {sigma_max}")
    uniform = torch.linspace(sigma_max, 0.0, steps + 1, dtype=torch.float64)[:-1]
    return shift_sigma(uniform, shift)


def timesteps_from_sigma(sigma: torch.Tensor | float) -> torch.Tensor:
    """The model's timestep for a noise level: t = 1000 * sigma (float, not rounded)."""
    return torch.as_tensor(sigma, dtype=torch.float32) * NUM_TRAIN_TIMESTEPS


def integer_timestep(sigma: float) -> int:
    """The truncated integer timestep int(1000 sigma) of Wan2.2-style schedulers
    (daVinci-MagiHuman compares its guidance switch against it)."""
    return int(float(sigma) * NUM_TRAIN_TIMESTEPS)


def _per_sample(sigma: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """sigma (scalar or [B]) shaped [B, 1, ...] to broadcast over latents like `like`."""
    sigma = torch.as_tensor(sigma, dtype=like.dtype, device=like.device)
    if sigma.dim() == 0:
        return sigma
    if sigma.dim() != 1 or sigma.shape[0] != like.shape[0]:
        raise ValueError(f"sigma must be a scalar or [B={like.shape[0]}], got shape {list(sigma.shape)}")
    return sigma.reshape(-1, *([1] * (like.dim() - 1)))


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """x_t = (1 - sigma) * x0 + sigma * noise; sigma is a scalar or one per sample [B]."""
    if noise.shape != x0.shape:
        raise ValueError(f"noise {list(noise.shape)} must have the latents' shape {list(x0.shape)}")
    s = _per_sample(sigma, x0)
    return (1 - s) * x0 + s * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """What the model is trained to predict: d x_t / d sigma = noise - x0."""
    return noise - x0


def predicted_x0(x_t: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """The clean latents implied by a velocity at sigma: x0 = x_t - sigma * velocity."""
    return x_t - _per_sample(sigma, x_t) * velocity
