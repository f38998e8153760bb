"""The JOVA_MODEL object: a transformer plus how to place it on the GPU for sampling.

Two placements:
- "whole model": ComfyUI's model management loads the whole transformer onto the GPU
  (unloading other models first if needed) and offloads it when something else needs
  the memory.
- "block swap": the transformer's ends and its first N blocks stay on the GPU during
  sampling; each remaining block is moved in just before it runs and back out after.
  Slower, but the GPU holds only N blocks (the choice for 24 GB cards and the big preset).

LoRAs (the JoVA LoRA Loader) make a new handle sharing the transformer, with a clone of
the ModelPatcher (ComfyUI's model management sees one model and counts the adapters'
bytes) and the adapters it carries; they are attached while the model is on the device
and removed after, so each handle samples with exactly its own chain of LoRAs.
"""

from __future__ import annotations

import copy
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import comfy.model_management
import comfy.model_patcher
import torch

from ..jova_core.lora import AppliedLora, LoraAdapter
from ..jova_core.offload import BlockSwap, module_bytes

OFFLOAD_POLICIES = ("whole model", "block swap")


@dataclass
class JoVAModelHandle:
    transformer: torch.nn.Module
    source: str  # the file it came from, or a description of the built-in demo
    offload: str = "whole model"
    blocks_on_gpu: int = 0
    loras: tuple[tuple[LoraAdapter, float], ...] = ()  # (adapter, strength), applied in order
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

    @property
    def hosting(self):
        """What the transformer takes and expects (jova_core.model.hosted)."""
        return self.transformer.hosting

    def with_lora(self, adapter: LoraAdapter, strength: float) -> "JoVAModelHandle":
        """A handle on the same transformer that samples with `adapter` added to this one's LoRAs."""
        handle = copy.copy(self)
        handle.loras = self.loras + ((adapter, float(strength)),)
        handle.patcher = self.patcher.clone()
        handle.patcher.size = self.patcher.size + adapter.nbytes()
        return handle

    @contextmanager
    def on_device(self):
        """The transformer (with this handle's LoRAs) ready to run on ComfyUI's torch device
        for the duration of the block."""
        with ExitStack() as stack:
            if self.offload == "whole model":
                comfy.model_management.load_models_gpu([self.patcher], force_full_load=True)
                self._attach_loras(stack)  # the adapters' factors go where the layers now are
            else:
                # Over the model's swappable_blocks() (jova_core.model.hosted).
                swap = BlockSwap(self.transformer, self.blocks_on_gpu, self.patcher.load_device, self.patcher.offload_device)
                comfy.model_management.free_memory(swap.resident_bytes(), self.patcher.load_device)
                self._attach_loras(stack)  # before the swap, so they travel with their blocks
                swap.attach()
                stack.callback(comfy.model_management.soft_empty_cache)
                stack.callback(swap.detach)
            yield self.transformer

    def _attach_loras(self, stack: ExitStack) -> None:
        for adapter, strength in self.loras:
            stack.callback(AppliedLora(self.transformer, adapter, strength).remove)
