"""Folding a PEFT LoRA adapter into the weights it adapts.

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

import torch

PEFT_PREFIX = "base_model.model."
_A, _B = ".lora_A.weight", ".lora_B.weight"
_EMBEDDED = re.compile(r"\.lora_[AB]\.")


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
        rank = down.shape[0]
        scale = alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)
        weight = merged[target]
        merged[target] = (weight.float() + scale * (up @ down)).to(weight.dtype)
    return merged
