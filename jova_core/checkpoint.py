"""JoVA's native checkpoint format: a safetensors file whose metadata holds the config.

metadata["format"] = "jova", metadata["jova_config"] = JoVAConfig.to_json().
Loading never falls back to random initialisation: a missing or unexpected key, or a
wrong shape, stops with the list of offenders.
"""

from __future__ import annotations

import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import JoVAConfig
from .model.transformer import JoVATransformer

FORMAT_TAG = "jova"


def save_transformer(model: JoVATransformer, path: str, extra_metadata: dict[str, str] | None = None, overwrite: bool = False) -> None:
    """Write `model` as a native JoVA safetensors file (refuses to overwrite unless asked)."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; choose another name or pass overwrite=True")
    metadata = {**(extra_metadata or {}), "format": FORMAT_TAG, "jova_config": model.config.to_json()}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path + ".partial"
    save_file(tensors, tmp, metadata=metadata)
    os.replace(tmp, path)


def read_metadata(path: str) -> dict[str, str]:
    with safe_open(path, framework="pt") as f:
        return f.metadata() or {}


def is_native(path: str) -> bool:
    return path.endswith(".safetensors") and read_metadata(path).get("format") == FORMAT_TAG


def check_state_dict(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Raise with every missing/unexpected key and wrong shape; silent when they match exactly."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = sorted(
        f"{k}: file {list(state_dict[k].shape)} vs model {list(expected[k].shape)}"
        for k in set(expected) & set(state_dict)
        if tuple(state_dict[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong:
        def show(items):
            return ", ".join(items[:8]) + (f" ... (+{len(items) - 8} more)" if len(items) > 8 else "")

        lines = [f"{source} does not match the JoVA model it describes:"]
        if missing:
            lines.append(f"  missing {len(missing)} keys: {show(missing)}")
        if unexpected:
            lines.append(f"  unexpected {len(unexpected)} keys: {show(unexpected)}")
        if wrong:
            lines.append(f"  wrong shapes: {show(wrong)}")
        raise KeyError("\n".join(lines))


def build_from_state_dict(
    config: JoVAConfig, state_dict: dict[str, torch.Tensor], source: str, dtype=None, device="cpu", attention="sdpa"
) -> JoVATransformer:
    """A model of `config` holding exactly `state_dict` (checked key by key), eval mode."""
    with torch.device("meta"):
        model = JoVATransformer(config, attention=attention)
    check_state_dict(model, state_dict, source)
    if dtype is not None:
        state_dict = {k: v.to(dtype) for k, v in state_dict.items()}
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model.to(device).eval()


def load_native(path: str, dtype=None, device="cpu", attention="sdpa") -> JoVATransformer:
    metadata = read_metadata(path)
    if metadata.get("format") != FORMAT_TAG or "jova_config" not in metadata:
        raise ValueError(f"{path} is not a native JoVA checkpoint (no 'jova_config' in its safetensors metadata)")
    config = JoVAConfig.from_json(metadata["jova_config"])
    with safe_open(path, framework="pt") as f:
        state_dict = {k: f.get_tensor(k) for k in f.keys()}
    return build_from_state_dict(config, state_dict, path, dtype=dtype, device=device, attention=attention)
