"""Flow-matching sampling for JoVA: the noise schedule, the solvers, the modes, the loop."""

from .modes import MODES, reference_condition
from .sampler import StepInfo, sample
from .seed import MAX_SEED, check_seed, seeded_generator
from .schedule import (
    NUM_TRAIN_TIMESTEPS,
    add_noise,
    predicted_x0,
    sampling_sigmas,
    shift_sigma,
    timesteps_from_sigma,
    velocity_target,
)
from .solvers import SOLVERS

__all__ = [
    "MAX_SEED",
    "MODES",
    "NUM_TRAIN_TIMESTEPS",
    "SOLVERS",
    "StepInfo",
    "add_noise",
    "check_seed",
    "predicted_x0",
    "reference_condition",
    "sample",
    "sampling_sigmas",
    "seeded_generator",
    "shift_sigma",
    "timesteps_from_sigma",
    "velocity_target",
]
