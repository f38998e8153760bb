"""The ODE solvers: diffusers' flow-matching schedulers, driven by our own sigma schedule.

We hand each scheduler sigmas already shifted by ``schedule.shift_sigma`` (so the
shift formula lives in one place) and tell it shift = 1. Each modality being generated
gets its own instance, because multistep solvers (UniPC) keep a history of past
model outputs per latent tensor.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from .schedule import NUM_TRAIN_TIMESTEPS

SOLVERS = ("euler", "unipc", "renoise")


class RenoiseSolver:
    """The few-step sampler of distilled models (DMD-2 style; daVinci-MagiHuman's distill
    `step_ddim`): from the velocity at sigma take x0 = x - sigma v, then jump to the next
    level with FRESH noise, x_next = (1 - sigma_next) x0 + sigma_next noise. Noise comes from
    the sampler's seeded CPU generator, so a seed gives the same clip everywhere."""

    def __init__(self, sigmas: torch.Tensor, generator: torch.Generator | None):
        self.sigmas = torch.cat([sigmas.double(), sigmas.new_zeros(1, dtype=torch.float64)]).float()
        self.timesteps = self.sigmas[:-1] * NUM_TRAIN_TIMESTEPS
        self.generator = generator
        self._index = 0

    def step(self, velocity: torch.Tensor, timestep, sample: torch.Tensor) -> SimpleNamespace:
        sigma, sigma_next = float(self.sigmas[self._index]), float(self.sigmas[self._index + 1])
        self._index += 1
        x0 = sample - sigma * velocity
        if sigma_next == 0:
            return SimpleNamespace(prev_sample=x0)
        noise = torch.randn(sample.shape, generator=self.generator, dtype=torch.float32).to(sample.device)
        return SimpleNamespace(prev_sample=(1 - sigma_next) * x0 + sigma_next * noise)


def make_solver(name: str, sigmas: torch.Tensor, device: torch.device | str = "cpu",
                generator: torch.Generator | None = None):
    """A fresh diffusers scheduler of kind `name` that steps through `sigmas` then to 0.

    sigmas: [steps] decreasing noise levels (``schedule.sampling_sigmas``).
    The returned scheduler's ``.sigmas`` is [steps + 1] ending in 0; UniPC nudges a first
    sigma of exactly 1 down by 1e-6 (its log-SNR is infinite there), so read the
    sigmas back from the scheduler rather than from the input. "renoise" (RenoiseSolver, not
    a diffusers scheduler) draws its fresh noise from `generator`.
    """
    if name == "renoise":
        return RenoiseSolver(sigmas, generator)
    if name == "euler":
        solver = FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=1.0)
    elif name == "unipc":
        # Wan2.1's solver: UniPC-BH2, order 2, on flow sigmas with an x0 ("flow") prediction.
        solver = UniPCMultistepScheduler(
            num_train_timesteps=NUM_TRAIN_TIMESTEPS,
            prediction_type="flow_prediction",
            use_flow_sigmas=True,
            flow_shift=1.0,
            solver_order=2,
        )
    else:
        raise ValueError(f"unknown sampler {name!r}; choose one of {list(SOLVERS)}")
    solver.set_timesteps(sigmas=sigmas.double().cpu().numpy(), device=device)
    # Step by position, not by looking timesteps up (UniPC's integer timesteps can repeat).
    solver.set_begin_index(0)
    return solver
