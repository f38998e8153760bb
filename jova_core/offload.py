"""Block swap: running a transformer whose blocks do not all fit on the accelerator.

The transformer's ends and its first N blocks (of the hosted model's
``swappable_blocks()``: JoVA's ``blocks``, MagiHuman's ``block.layers``) stay on the device; each later block is
moved in just before it runs and back out after. Slower than holding the whole model,
but the device holds only N blocks plus one visitor (``resident_bytes``).
"""

from __future__ import annotations

import torch


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


class BlockSwap:
    """Keeps everything but blocks[N:] on `device`; those visit it one at a time."""

    def __init__(self, transformer: torch.nn.Module, blocks_on_gpu: int, device, offload_device):
        self.transformer = transformer
        self.blocks = list(transformer.swappable_blocks())  # a hosted model's (jova_core.model.hosted)
        self.keep = max(0, min(int(blocks_on_gpu), len(self.blocks)))
        self.device, self.offload_device = torch.device(device), torch.device(offload_device)
        self._hooks = []

    def resident_bytes(self) -> int:
        """Device memory the swap needs: all but the swapped blocks, plus the largest of them."""
        swapped = sum(module_bytes(b) for b in self.blocks[self.keep:])
        # One swapped block is on the GPU at a time besides the resident part.
        largest = max((module_bytes(b) for b in self.blocks[self.keep:]), default=0)
        return module_bytes(self.transformer) - swapped + largest

    def attach(self) -> None:
        swapped = self.blocks[self.keep:]
        for block in swapped:
            block.to(self.offload_device)
        visiting = {id(t) for block in swapped for t in (*block.parameters(), *block.buffers())}
        for module in self.transformer.modules():  # everything else is resident
            for p in module._parameters.values():
                if p is not None and id(p) not in visiting:
                    p.data = p.data.to(self.device)
            for name, b in module._buffers.items():
                if b is not None and id(b) not in visiting:
                    module._buffers[name] = b.to(self.device)
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
