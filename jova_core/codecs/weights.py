"""Reading codec weight files safely (safetensors, or torch.load with weights_only=True)."""

from __future__ import annotations

import os

import torch
from safetensors.torch import load_file

# Containers some releases wrap their state dict in (BigVGAN: "generator"; trainers: "state_dict").
_CONTAINER_KEYS = ("generator", "state_dict", "model", "module")


def read_state_dict(path: str, what: str) -> dict[str, torch.Tensor]:
    """Flat {name: tensor} from `path`; `what` names the expected content in error messages."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what}: no file at {path!r}")
    if path.endswith(".safetensors"):
        state = load_file(path, device="cpu")
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # mmap needs the zip format; legacy files load without it
            state = torch.load(path, map_location="cpu", weights_only=True)
    while isinstance(state, dict) and len(state) <= 4:
        inner = next((state[k] for k in _CONTAINER_KEYS if isinstance(state.get(k), dict)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a flat tensor state dict; expected {what}")
    return state


def strip_prefix(state_dict: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Remove the first of `prefixes` that every key carries (repackaged files add one)."""
    for prefix in prefixes:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            return {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict
