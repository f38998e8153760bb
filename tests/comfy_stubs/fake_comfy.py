"""Stand-ins for ``comfy.model_management``, ``comfy.model_patcher`` and ``comfy.utils``.

One file, three namespaces (the harness turns each class below into a module). They
record what the pack asked for, so tests can check that sampling honours interruption,
reports progress with a preview, and goes through model management.
"""

from __future__ import annotations

import torch


class model_management:
    class InterruptProcessingException(BaseException):
        pass

    interrupt_processing = False
    loaded: list = []

    @staticmethod
    def get_torch_device():
        return torch.device("cpu")

    @staticmethod
    def unet_offload_device():
        return torch.device("cpu")

    @staticmethod
    def intermediate_device():
        return torch.device("cpu")

    @staticmethod
    def is_device_cpu(device):
        return torch.device(device).type == "cpu"

    @staticmethod
    def get_free_memory(dev=None, torch_free_too=False):
        return 64 * 1024**3

    @staticmethod
    def soft_empty_cache(force=False):
        pass

    @staticmethod
    def free_memory(memory_required, device, keep_loaded=()):
        pass

    @staticmethod
    def interrupt_current_processing(value=True):
        model_management.interrupt_processing = value

    @staticmethod
    def processing_interrupted():
        return model_management.interrupt_processing

    @staticmethod
    def throw_exception_if_processing_interrupted():
        if model_management.interrupt_processing:
            model_management.interrupt_processing = False
            raise model_management.InterruptProcessingException()

    @staticmethod
    def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                        force_full_load=False):
        for patcher in models:
            patcher.model.to(patcher.load_device)
            patcher.model.device = patcher.load_device  # as ComfyUI's ModelPatcher.load does
            model_management.loaded.append((patcher, force_full_load))


class model_patcher:
    class ModelPatcher:
        def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
            self.model = model
            self.load_device = load_device
            self.offload_device = offload_device
            self.size = size

        def clone(self):
            """A patcher on the same model (ComfyUI: model management treats them as one model)."""
            n = type(self)(self.model, self.load_device, self.offload_device, self.size)
            n.parent = self
            return n

        def is_clone(self, other):
            return getattr(other, "model", None) is self.model

        def model_size(self):
            return sum(t.numel() * t.element_size() for t in self.model.state_dict().values())


class utils:
    progress: list = []

    class ProgressBar:
        def __init__(self, total, node_id=None):
            self.total = total
            self.current = 0

        def update_absolute(self, value, total=None, preview=None):
            if total is not None:
                self.total = total
            self.current = min(value, self.total)
            utils.progress.append((self.current, self.total, preview))

        def update(self, value):
            self.update_absolute(self.current + value)
