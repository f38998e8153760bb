"""LoRA for the JoVA transformer through peft (not our own: peft's layers are tested,
dtype-aware, and give the same adapter keys other tools read).

Adapters go on every linear inside the blocks (attention q/k/v/o of every token group,
cross-attention when present, both FFN layers); the branch ends (patch embedding, text
and time MLPs, heads) stay frozen with the base weights.
"""

from __future__ import annotations

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from safetensors.torch import save_file

from ..files import atomic_output
from ..lora import ADAPTER_FORMAT
from ..model.transformer import JoVATransformer

# peft full-matches this against module names such as "blocks.3.video_text.self_attn.q".
BLOCK_LINEARS = r"blocks\.\d+\.[a-z_]+\.(self_attn\.[qkvo]|cross_attn\.[qkvo]|ffn\.[02])"
ADAPTER = "default"


def add_lora(model: JoVATransformer, rank: int, alpha: float = 0.0) -> JoVATransformer:
    """Inject rank-`rank` adapters in place (alpha 0 means alpha = rank); afterwards only
    adapter weights require grad."""
    config = LoraConfig(r=rank, lora_alpha=alpha or rank, target_modules=BLOCK_LINEARS, lora_dropout=0.0)
    model = inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name)
    return model


def adapter_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if "lora_" in k}


def save_adapter(model: torch.nn.Module, path: str, rank: int, alpha: float = 0.0) -> None:
    """The adapter alone as a small safetensors file (JoVA layer names, PEFT's factor names,
    its alpha in the metadata): what resuming reads, and what jova_core.lora applies to a
    loaded model (the JoVA LoRA Loader node)."""
    tensors = {k: v.detach().contiguous() for k, v in adapter_state_dict(model).items()}
    metadata = {"format": ADAPTER_FORMAT, "lora_rank": str(rank), "lora_alpha": str(float(alpha or rank))}
    with atomic_output(path, overwrite=True) as partial:
        save_file(tensors, partial, metadata=metadata)


def merged_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The plain JoVA state dict with every adapter folded into its base weight."""
    deltas = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            deltas[f"{name}.weight"] = module.get_delta_weight(ADAPTER).detach()
    merged = {}
    for key, value in model.state_dict().items():
        if "lora_" in key:
            continue
        key = key.replace(".base_layer.", ".")
        merged[key] = value + deltas[key].to(value.dtype) if key in deltas else value
    return merged
