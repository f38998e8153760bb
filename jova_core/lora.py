"""LoRA adapters applied to a loaded JoVA transformer at a strength, and removed exactly.

An adapter is not merged into the weights: each adapted Linear gets a low-rank branch
added to its output,
    y = W x + b + strength * scale * up (down x),
which is the merged layer's output ((W + strength * scale * up @ down) x + b) up to
float rounding. Why a branch rather than a merge:
  - the base weights are never written, so `remove()` leaves them bit-identical;
  - weights stored in fp8 (diffusers' layerwise casting) are not patched in fp8: the
    branch runs in the model's compute dtype (bf16), as its factors are kept;
  - adapters stack, at any strength (negative ones too), without a copy of the weights.
The factors are non-persistent buffers of a small module attached to the block (or the
branch end) the layer belongs to, so they move with it (block swap moves blocks one at
a time) and `state_dict()` never holds them.

`read_lora` maps a file's module names onto the model's Linear layers: JoVA's own names
(the trainer's adapters), and Wan2.1 LoRAs in its original names, diffusers' names or
kohya's ``lora_unet_`` names, which land on the video branch and, with `apply_to_audio`,
also on the audio branch's copy of the layer (convert.wan.jova_names says which). A
module that matches nothing refuses the whole file, naming it: a LoRA for another model
is an error, never half-applied.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .identify import identify
from .convert.lora import KOHYA_PREFIX, LoraPair, short_list, lora_pairs
from .convert.wan import diffusers_name_to_original, jova_names
from .weights import peek, read_state_dict

# safetensors metadata of the trainer's adapter files: {"format": ADAPTER_FORMAT, "lora_alpha": "..."}
ADAPTER_FORMAT = "jova-lora"
_applied = itertools.count()


@dataclass
class LoraAdapter:
    """A LoRA file resolved against a model: JoVA Linear name -> factors and scale."""

    source: str
    pairs: dict[str, LoraPair]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for p in self.pairs.values() for t in (p.down, p.up))


def read_lora(path: str, model: nn.Module, apply_to_audio: bool = False) -> LoraAdapter:
    """The adapter in `path` (a file, or a PEFT folder with adapter_config.json) mapped onto
    `model`'s Linear layers. Raises ValueError (one line) for a file that is not a LoRA,
    a module that matches no layer, or factors whose shapes do not fit their layer."""
    name = os.path.basename(path.rstrip("/\\"))
    keys, metadata = peek(path, "a LoRA file")
    kind = identify(keys, metadata)
    if kind.name != "lora":
        raise ValueError(
            f"{name} is not a LoRA: this looks like {kind.description}; "
            "pick a LoRA file (the JoVA trainer's lora.safetensors or a Wan2.1 T2V LoRA)"
        )
    alpha, rslora = _file_alpha(path, metadata)
    try:
        pairs = lora_pairs(read_state_dict(path, what="a LoRA file"), alpha, rslora)
    except ValueError as err:
        raise ValueError(f"{name} is not a LoRA this loader reads: {err}") from None
    if not pairs:
        raise ValueError(f"{name} holds no LoRA factors")
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    index = _name_index(linears, apply_to_audio)
    resolved: dict[str, LoraPair] = {}
    unmatched = []
    for module, pair in pairs.items():
        targets = index.get(module) or index.get(diffusers_name_to_original(module))
        if not targets:
            unmatched.append(module)
            continue
        for target in targets:
            weight = linears[target].weight
            if tuple(weight.shape) != (pair.up.shape[0], pair.down.shape[1]):
                raise ValueError(
                    f"{name}: {module} is a [{pair.up.shape[0]}, {pair.down.shape[1]}] adapter but {target} is "
                    f"{list(weight.shape)}; the LoRA is for a model of another size"
                )
            resolved[target] = pair
    if unmatched:
        raise ValueError(
            f"{name}: {len(unmatched)} of its {len(pairs)} LoRA modules match no layer of this JoVA model "
            f"({short_list(unmatched)}); use a LoRA made for Wan2.1 T2V of this size or for this JoVA model"
        )
    return LoraAdapter(path, resolved)


def _file_alpha(path: str, metadata: dict[str, str]) -> tuple[float | None, bool]:
    """The file-wide alpha (and rsLoRA flag): the trainer's metadata, or the
    adapter_config.json PEFT saves beside its adapter file."""
    if "lora_alpha" in metadata:
        return float(metadata["lora_alpha"]), False
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    config_path = os.path.join(folder, "adapter_config.json")
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        return config.get("lora_alpha"), bool(config.get("use_rslora"))
    return None, False


def _name_index(linears: dict[str, nn.Module], apply_to_audio: bool) -> dict[str, list[str]]:
    """Every module name a LoRA file may use for a layer -> the JoVA layers it adapts."""
    index = {name: [name] for name in linears}
    for name in linears:
        wan = _wan_name(name)
        if wan is None:
            continue
        video, audio = jova_names(wan)
        if video != name:
            continue
        index[wan] = [video] + ([audio] if apply_to_audio and audio in linears else [])
    for name in list(index):  # kohya writes the dots of a name as underscores
        index[KOHYA_PREFIX + name.replace(".", "_")] = index[name]
    return index


def _wan_name(jova_name: str) -> str | None:
    """The Wan2.1 name of a video-branch layer (blocks.N.video.X -> blocks.N.X, video.X -> X)."""
    parts = jova_name.split(".")
    if parts[0] == "blocks" and len(parts) > 2 and parts[2] == "video":
        return ".".join(parts[:2] + parts[3:])
    if parts[0] == "video":
        return ".".join(parts[1:])
    return None


class AppliedLora:
    """An adapter attached to a model at a strength; `remove()` detaches it."""

    def __init__(self, model: nn.Module, adapter: LoraAdapter, strength: float = 1.0):
        self.model, self.adapter, self.strength = model, adapter, float(strength)
        self._holders: list[tuple[nn.Module, str]] = []
        self._hooks = []
        dtype = getattr(model, "compute_dtype", None) or torch.float32
        attribute = f"lora_{next(_applied)}"
        modules = dict(model.named_modules())
        by_unit: dict[str, list[str]] = {}
        for target in adapter.pairs:
            by_unit.setdefault(_unit(target), []).append(target)
        for unit_name, targets in by_unit.items():
            holder = nn.Module()
            for i, target in enumerate(targets):
                pair, linear = adapter.pairs[target], modules[target]
                device = linear.weight.device
                holder.register_buffer(f"down{i}", pair.down.to(device, dtype), persistent=False)
                holder.register_buffer(f"up{i}", pair.up.to(device, dtype), persistent=False)
                branch = LowRankBranch(holder, i, pair.scale * self.strength)
                self._hooks.append(linear.register_forward_hook(branch))
            unit = modules[unit_name]
            unit.add_module(attribute, holder)
            self._holders.append((unit, attribute))

    def remove(self) -> None:
        """Detach the adapter: the model computes exactly what it did before (its weights
        were never written). Calling it again does nothing."""
        for hook in self._hooks:
            hook.remove()
        for unit, attribute in self._holders:
            delattr(unit, attribute)
        self._hooks.clear()
        self._holders.clear()


def _unit(layer: str) -> str:
    """The part of the model a layer moves with: its block (blocks.N) or branch end."""
    parts = layer.split(".")
    return ".".join(parts[:2]) if parts[0] == "blocks" else parts[0]


class LowRankBranch:
    """Forward hook adding scale * up(down(x)) to a Linear's output, in the factors' dtype."""

    def __init__(self, holder: nn.Module, index: int, scale: float):
        self.holder, self.index, self.scale = holder, index, scale

    def __call__(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        down = self.holder.get_buffer(f"down{self.index}")  # [rank, in]
        up = self.holder.get_buffer(f"up{self.index}")  # [out, rank]
        low = F.linear(F.linear(args[0].to(down.dtype), down), up)
        return output.add_(low.to(output.dtype), alpha=self.scale)


def apply_lora(model: nn.Module, path: str, strength: float = 1.0, apply_to_audio: bool = False) -> AppliedLora:
    """Apply the LoRA file at `path` to `model` at `strength`; returns the handle whose
    `remove()` undoes it. Several may be applied at once (their branches add up)."""
    return AppliedLora(model, read_lora(path, model, apply_to_audio), strength)
