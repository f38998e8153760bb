"""Key tables of real public checkpoints (`tests/data/manifests/*.json`), the one place
tests and benchmarks read them from.

Each manifest lists every tensor of a released file: {"keys": {name: [shape, dtype]},
"n_keys", "n_params", "note"}. They are copied into the repository so the tests pass on
a fresh clone with nothing beside it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import torch

MANIFESTS = Path(__file__).resolve().parent / "data" / "manifests"


@lru_cache(maxsize=None)
def manifest(name: str) -> dict:
    """The parsed manifest `name` (file stem, e.g. "wan2.1_vae")."""
    return json.loads((MANIFESTS / f"{name}.json").read_text())


def manifest_state_dict(name: str, keep_dtype: bool = True) -> dict[str, torch.Tensor]:
    """Meta tensors with the shapes (and, by default, dtypes) of a real checkpoint."""
    return {
        key: torch.empty(shape, dtype=getattr(torch, dtype) if keep_dtype else torch.float32, device="meta")
        for key, (shape, dtype) in manifest(name)["keys"].items()
    }
