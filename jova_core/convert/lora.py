"""LoRA adapter files as key maps: their factors per adapted layer, and folding a PEFT
adapter into the weights it adapts.

`lora_pairs` reads the layouts adapters are published in:
    PEFT / diffusers : <module>.lora_A[.<adapter>].weight, <module>.lora_B[.<adapter>].weight
    kohya / ComfyUI  : <module>.lora_down.weight, <module>.lora_up.weight, <module>.alpha
    (module names behind "diffusion_model.", "transformer.", "base_model.model." or, with
    dots written as underscores, kohya's "lora_unet_"), giving per module
    W' = W + strength * scale * up @ down with scale = alpha / rank (1 without alpha).
Which model layer a module name means is jova_core.lora's business.

JavisDiT++ training saves a release folder with `model/` (the full weights) and, when
it trains with LoRA (its audio-video SFT and DPO stages do), `lora/`: a PEFT adapter
(adapter_config.json + adapter_model.safetensors/.bin) that its inference merges into
the weights before sampling. Converting the folder does the same merge:
    W += scale * B @ A,  scale = lora_alpha / r  (lora_alpha / sqrt(r) with rsLoRA),
where r is read from A's shape, so per-module ranks need no special handling.
ColossalAI may also have saved the PEFT-wrapped layers into `model/` itself (base weights
as `<layer>.base_layer.weight`, the adapter as `<layer>.lora_A.default.weight`);
`split_peft_wrapping` undoes that, and the adapter is then taken from `lora/`, whose
config gives its scale.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

PEFT_PREFIX = "base_model.model."
_A, _B = ".lora_A.weight", ".lora_B.weight"
_EMBEDDED = re.compile(r"\.lora_[AB]\.")


# <module>.<factor>[.<PEFT adapter name>].weight, or <module>.alpha
_FACTOR = re.compile(r"^(?P<module>.+?)\.(?P<factor>lora_A|lora_B|lora_down|lora_up)(?:\.[A-Za-z0-9_-]+)?\.weight$")
_DOWN = ("lora_A", "lora_down")
# What trainers and UIs put in front of the module names (kohya's lora_unet_ is kept: its
# names need the model's own names to undo the underscores).
LORA_PREFIXES = ("base_model.model.", "model.diffusion_model.", "diffusion_model.", "transformer.")
KOHYA_PREFIX = "lora_unet_"


def lora_scale(alpha: float | None, rank: int, rslora: bool = False) -> float:
    """alpha / rank (alpha / sqrt(rank) with rsLoRA); 1 when the file gives no alpha."""
    if alpha is None:
        return 1.0
    return alpha / (math.sqrt(rank) if rslora else rank)


@dataclass
class LoraPair:
    """One adapted Linear: W' = W + scale * up @ down."""

    down: torch.Tensor  # [rank, in_features]
    up: torch.Tensor  # [out_features, rank]
    scale: float


def _strip_lora_prefix(module: str) -> str:
    for prefix in LORA_PREFIXES:
        if module.startswith(prefix):
            return module[len(prefix):]
    return module


def lora_pairs(state_dict: dict[str, torch.Tensor], alpha: float | None = None, rslora: bool = False) -> dict[str, LoraPair]:
    """Module name (prefixes stripped; kohya names keep "lora_unet_") -> its LoRA pair.

    `alpha` is the file-wide alpha (a trainer's or PEFT config's) for modules without an
    `.alpha` tensor; `rslora` scales by sqrt(rank) (PEFT's use_rslora). Raises ValueError naming keys that are not LoRA factors or alphas,
    and modules with only one factor."""
    factors: dict[str, dict[str, torch.Tensor]] = {}
    alphas: dict[str, float] = {}
    strange = []
    for key, tensor in state_dict.items():
        if key.endswith(".alpha"):
            alphas[_strip_lora_prefix(key[: -len(".alpha")])] = float(tensor)
        elif match := _FACTOR.match(key):
            role = "down" if match["factor"] in _DOWN else "up"
            factors.setdefault(_strip_lora_prefix(match["module"]), {})[role] = tensor
        else:
            strange.append(key)
    if strange:
        raise ValueError(f"keys that are not LoRA factors (lora_A/B, lora_down/up, alpha): {short_list(strange)}")
    halves = sorted(m for m, f in factors.items() if len(f) != 2)
    if halves:
        raise ValueError(f"LoRA modules with only one of their two factors: {short_list(halves)}")
    pairs = {}
    for module, f in sorted(factors.items()):
        down, up = f["down"], f["up"]
        if down.dim() != 2 or up.dim() != 2:
            raise ValueError(f"LoRA module {module} adapts a convolution ({list(down.shape)}); only Linear layers take LoRAs here")
        if down.shape[0] != up.shape[1]:
            raise ValueError(f"LoRA module {module}: down {list(down.shape)} and up {list(up.shape)} ranks differ")
        pairs[module] = LoraPair(down, up, lora_scale(alphas.get(module, alpha), down.shape[0], rslora))
    return pairs


def short_list(names: list[str], shown: int = 6) -> str:
    names = sorted(names)
    return ", ".join(names[:shown]) + (f" ... (+{len(names) - shown} more)" if len(names) > shown else "")


def split_peft_wrapping(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(state dict with PEFT's `base_layer.` infix removed and its LoRA tensors left out,
    names of the LoRA tensors left out)."""
    base, embedded = {}, []
    for key, value in state_dict.items():
        if _EMBEDDED.search(key):
            embedded.append(key)
        else:
            base[key.replace(".base_layer.", ".")] = value
    return base, embedded


def merge_peft_lora(state_dict: dict[str, torch.Tensor], adapter: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    """`state_dict` with every LoRA pair of `adapter` (PEFT key names) merged into the
    Linear weight it adapts; the other tensors are shared, not copied."""
    unsupported = [k for k in ("use_dora", "alpha_pattern", "fan_in_fan_out") if config.get(k)]
    if unsupported:
        raise ValueError(f"this LoRA adapter uses {unsupported}, which the merge does not implement")
    alpha = config["lora_alpha"]
    pairs = {k[: -len(_A)] for k in adapter if k.endswith(_A)}
    leftovers = set(adapter) - {p + _A for p in pairs} - {p + _B for p in pairs}
    if leftovers:
        raise KeyError(f"LoRA adapter keys that are not lora_A/lora_B pairs: {sorted(leftovers)[:8]}")
    merged = dict(state_dict)
    for pair in sorted(pairs):
        module = pair[len(PEFT_PREFIX):] if pair.startswith(PEFT_PREFIX) else pair
        target = f"{module}.weight"
        if target not in merged or merged[target].dim() != 2:
            raise KeyError(f"the LoRA adapter targets {module!r}, which is not a Linear layer of the checkpoint")
        down, up = adapter[pair + _A].float(), adapter[pair + _B].float()  # [r, in], [out, r]
        scale = lora_scale(alpha, down.shape[0], bool(config.get("use_rslora")))
        weight = merged[target]
        merged[target] = (weight.float() + scale * (up @ down)).to(weight.dtype)
    return merged
