"""The JOVA_MODEL object: a transformer plus how to place it on the GPU for sampling.

Two placements:
- "whole model": ComfyUI's model management loads the whole transformer onto the GPU
  (unloading other models first if needed) and offloads it when something else needs
  the memory.
- "block swap": the transformer's ends and its first N blocks stay on the GPU during
  sampling; each remaining block is moved in just before it runs and back out after.
  Slower, but the GPU holds only N blocks (the choice for 24 GB cards and the big preset).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import comfy.model_management
import comfy.model_patcher
import torch

OFFLOAD_POLICIES = ("whole model", "block swap")


def module_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


@dataclass
class JoVAModelHandle:
    transformer: torch.nn.Module
    source: str  # the file it came from, or a description of the built-in demo
    offload: str = "whole model"
    blocks_on_gpu: int = 0
    # The generation defaults the model's file carries (jova_core.defaults), or None.
    defaults: object = None
    patcher: object = field(init=False, repr=False)

    def __post_init__(self):
        if self.offload not in OFFLOAD_POLICIES:
            raise ValueError(f"offload must be one of {OFFLOAD_POLICIES}, got {self.offload!r}")
        mm = comfy.model_management
        self.patcher = comfy.model_patcher.ModelPatcher(
            self.transformer, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device(),
            size=module_bytes(self.transformer),
        )

    @property
    def config(self):
        return self.transformer.config

    @contextmanager
    def on_device(self):
        """The transformer ready to run on ComfyUI's torch device for the duration of the block."""
        if self.offload == "whole model":
            comfy.model_management.load_models_gpu([self.patcher], force_full_load=True)
            yield self.transformer
            return
        swap = BlockSwap(self.transformer, self.blocks_on_gpu, self.patcher.load_device, self.patcher.offload_device)
        comfy.model_management.free_memory(swap.resident_bytes(), self.patcher.load_device)
        swap.attach()
        try:
            yield self.transformer
        finally:
            swap.detach()
            comfy.model_management.soft_empty_cache()


class BlockSwap:
    """Keeps everything but blocks[N:] on `device`; those visit it one at a time."""

    def __init__(self, transformer: torch.nn.Module, blocks_on_gpu: int, device, offload_device):
        self.transformer = transformer
        self.blocks = list(transformer.blocks)
        self.keep = max(0, min(int(blocks_on_gpu), len(self.blocks)))
        self.device, self.offload_device = torch.device(device), torch.device(offload_device)
        self._hooks = []

    def resident_bytes(self) -> int:
        swapped = sum(module_bytes(b) for b in self.blocks[self.keep:])
        # One swapped block is on the GPU at a time besides the resident part.
        largest = max((module_bytes(b) for b in self.blocks[self.keep:]), default=0)
        return module_bytes(self.transformer) - swapped + largest

    def attach(self) -> None:
        swapped = self.blocks[self.keep:]
        for block in swapped:
            block.to(self.offload_device)
        for name, child in self.transformer.named_children():
            if name != "blocks":
                child.to(self.device)
        for block in self.blocks[: self.keep]:
            block.to(self.device)
        for p in self.transformer.parameters(recurse=False):
            p.data = p.data.to(self.device)
        for block in swapped:
            self._hooks.append(block.register_forward_pre_hook(self._bring_in))
            self._hooks.append(block.register_forward_hook(self._send_out))

    def detach(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        self.transformer.to(self.offload_device)

    def _bring_in(self, module, args):
        module.to(self.device, non_blocking=True)

    def _send_out(self, module, args, output):
        module.to(self.offload_device)
