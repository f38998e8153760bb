"""Seeds: any integer 0 .. 2**64 - 1 (ComfyUI's seed widget range) -> a CPU torch.Generator.

torch seeds its Mersenne Twister with the low 32 bits of the seed only, so seeds 2**32
apart would give the same noise. Below 2**32 torch's own seeding is kept (so every seed
used so far gives the noise it always gave); from 2**32 up the twister's 624-word state is
filled from both 32-bit halves with the reference mt19937 `init_by_array` (the seeding of
Matsumoto and Nishimura's mt19937ar.c, which numpy's RandomState uses for array seeds).
"""

from __future__ import annotations

import struct

import numpy as np
import torch

MAX_SEED = 2**64 - 1
_WORDS = 624  # mt19937 state words
# torch's CPU generator state (CPUGeneratorImplState): initial seed u64, left i32,
# seeded i32, next u64, then the 624 state words, each stored as a u64.
_HEADER = struct.Struct("<QiiQ")
_STATE_BYTES = 5056


def check_seed(seed) -> int:
    """The seed as an int, or a one-line ValueError when it is not one of 0 .. 2**64 - 1."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"the seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"the seed must be from 0 to {MAX_SEED} (2^64 - 1), got {int(seed)}")
    return int(seed)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator for `seed` (0 .. 2**64 - 1): distinct seeds give distinct noise."""
    seed = check_seed(seed)
    generator = torch.Generator("cpu").manual_seed(seed)
    if seed < 2**32:
        return generator
    state = generator.get_state().numpy().copy()
    initial, left, seeded, _ = _HEADER.unpack_from(state.tobytes(), 0)
    if state.size != _STATE_BYTES or initial != seed or (left, seeded) != (1, 1):
        raise RuntimeError(f"this torch {torch.__version__} stores its generator state differently; "
                           "use a seed below 2^32")
    words = np.random.RandomState([seed & 0xFFFFFFFF, seed >> 32]).get_state()[1]  # init_by_array, uint32 [624]
    offset = _HEADER.size
    state[offset : offset + 8 * _WORDS] = np.frombuffer(words.astype("<u8").tobytes(), dtype=np.uint8)
    generator.set_state(torch.from_numpy(state))  # left = 1: the twister regenerates before its first number
    return generator
