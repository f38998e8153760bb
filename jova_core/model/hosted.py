"""The one interface between the sampler / nodes and every model the pack hosts.

A hosted model (JoVATransformer, MagiHumanTransformer) is an nn.Module that

- is called with keyword arguments only and returns flow velocities:
      model(video=..., audio=..., t_video=..., t_audio=..., text=..., text_audio=...,
            reference=..., fps=...) -> (video velocity | None, audio velocity | None)
  The velocity is always ``noise - data`` for ``x_t = (1 - sigma) x0 + sigma noise``
  (jova_core.sampling.schedule), so ``x0 = x_t - sigma v`` for every hosted model.
  A model whose `hosting.timesteps` is "none" reads the noise level off the latents and
  ignores t_video / t_audio; a "per-modality" one is told each modality's t = 1000 sigma
  (so a given modality is held clean at t = 0).
- has ``hosting``: a `Hosting` saying what it takes and expects (below);
- has ``swappable_blocks()``: the nn.ModuleList of its repeated blocks, for block swap
  (jova_core.offload), which keeps everything else resident.

The sampler and the nodes read only this: no branches on model classes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from ..defaults import GenerationDefaults
from ..geometry import ModelGeometry

VELOCITY = "noise - data"
TIMESTEPS = ("per-modality", "none")
# How a reference image (one video latent frame) conditions the video:
#   "condition-channels": extra input channels (first-frame latent + mask; modes.reference_condition)
#   "noised-first-frame": latent frame 0 pinned to the reference noised to the current sigma
#   "clean-first-frame":  latent frame 0 overwritten with the CLEAN reference before every
#                         call and at the end (MagiHuman's TI2V: no noise, no mask, no time)
REFERENCE_KINDS = ("condition-channels", "noised-first-frame", "clean-first-frame")


@dataclass(frozen=True)
class Hosting:
    """What a hosted model takes, expects and comes with."""

    name: str  # for messages: "a JoVA transformer", "daVinci-MagiHuman"
    geometry: ModelGeometry  # the latents it takes (jova_core.geometry)
    timesteps: str  # "per-modality" or "none"
    reference: str  # one of REFERENCE_KINDS
    modes: tuple[str, ...]  # the sampling modes it supports (jova_core.sampling.modes)
    modes_note: str  # why these modes (shown when another is asked for)
    text_dim: int  # width of the text hidden states it reads
    text_len: int  # longest prompt in tokens (padding beyond is the text encoder's business)
    separate_audio_text: bool  # may the audio read its own text (e.g. its own negative)?
    trims_text: bool  # reads only the prompt's real tokens (padding cut off before the model)?
    video_codec: str  # the codecs and text encoder it was trained with, for messages and notes
    audio_codec: str
    text_encoder: str
    defaults: GenerationDefaults | None = None  # its own inference settings, when known
    velocity: str = VELOCITY
    # Regexes (re.search on module names) of the modules its own inference keeps in fp32
    # whatever the weight dtype: loading casts only the others, fp8 storage skips them.
    # Empty: the loader's dtype applies to every weight (JoVA).
    fp32_modules: tuple[str, ...] = ()

    def keeps_fp32(self, module_name: str) -> bool:
        return any(re.search(pattern, module_name) for pattern in self.fp32_modules)

    def __post_init__(self) -> None:
        if self.timesteps not in TIMESTEPS:
            raise ValueError(f"timesteps must be one of {TIMESTEPS}, got {self.timesteps!r}")
        if self.reference not in REFERENCE_KINDS:
            raise ValueError(f"reference must be one of {REFERENCE_KINDS}, got {self.reference!r}")

    def check_mode(self, mode: str) -> None:
        if mode not in self.modes:
            raise ValueError(f"{self.name} runs modes {list(self.modes)}, not {mode!r}: {self.modes_note}")


@torch.no_grad()
def cast_weights(model: torch.nn.Module, hosting: Hosting, dtype: torch.dtype | None) -> None:
    """Cast `model`'s floating-point weights in place as its own inference holds them: those
    of `hosting.fp32_modules` to fp32, the others to `dtype` (None: as they are)."""
    for name, module in model.named_modules():
        target = torch.float32 if hosting.keeps_fp32(name) else dtype
        if target is None:
            continue
        for key, tensor in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            if tensor is not None and tensor.is_floating_point() and tensor.dtype != target:
                tensor.data = tensor.data.to(target)


@runtime_checkable
class HostedModel(Protocol):
    hosting: Hosting

    def __call__(self, **inputs) -> tuple[torch.Tensor | None, torch.Tensor | None]: ...

    def swappable_blocks(self) -> torch.nn.ModuleList: ...
