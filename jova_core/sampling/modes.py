"""What each generation mode generates, holds clean, or leaves out; and the reference image.

    mode   video                      audio                     reference image
    t2va   generated                  generated                 -
    i2va   generated from the image   generated                 required
    a2v    generated (lip sync)       given, held clean (t=0)   optional (image + audio -> video)
    v2a    given, held clean (t=0)    generated                 -
    t2v    generated                  absent                    -
    i2v    generated from the image   absent                    required
    t2a    absent                     generated                 -

A reference image (its Wan2.1 VAE latent, one latent frame) conditions the video in one
of two ways, chosen by the model:
- models with ``config.video_condition_channels`` (the paper's Waver-style input) get
  extra input channels: the first-frame latent on latent frame 0 (zeros elsewhere; or
  on every frame for ``config.reference_frames == "every"``) and a mask of ones on
  latent frame 0 (``reference_condition``). The trainer builds the
  same channels with the same function.
- models without them (e.g. converted Wan2.1 T2V weights) have latent frame 0 pinned to
  the reference: before every model call it is replaced by the reference noised to the
  current sigma with that frame's own initial noise (``hold_first_frame``), i.e. it
  rides the straight flow path from its noise to the reference, and it is exactly the
  reference at the end. The other frames follow it through joint attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .schedule import add_noise

GENERATE, GIVEN, ABSENT = "generate", "given", "absent"


@dataclass(frozen=True)
class Mode:
    video: str  # GENERATE, GIVEN (held clean) or ABSENT
    audio: str
    reference: str  # "required", "optional" or "refused"


MODES: dict[str, Mode] = {
    "t2va": Mode(GENERATE, GENERATE, "refused"),
    "i2va": Mode(GENERATE, GENERATE, "required"),
    "a2v": Mode(GENERATE, GIVEN, "optional"),
    "v2a": Mode(GIVEN, GENERATE, "refused"),
    "t2v": Mode(GENERATE, ABSENT, "refused"),
    "i2v": Mode(GENERATE, ABSENT, "required"),
    "t2a": Mode(ABSENT, GENERATE, "refused"),
}

def get_mode(name: str) -> Mode:
    if name not in MODES:
        raise ValueError(f"unknown mode {name!r}; choose one of {list(MODES)}")
    return MODES[name]


def first_frame_latent(reference: torch.Tensor, video_shape: tuple[int, ...]) -> torch.Tensor:
    """The reference latent as [B, C, 1, H, W] matching video latents of `video_shape`.

    reference: [B or 1, C, H, W] or [B or 1, C, 1, H, W] (the image encoded alone by the
    video VAE: one latent frame).
    """
    if reference.dim() == 4:
        reference = reference[:, :, None]
    b, c, _, h, w = video_shape
    if reference.dim() != 5 or reference.shape[2] != 1 or tuple(reference.shape[3:]) != (h, w) or reference.shape[1] != c:
        raise ValueError(
            f"reference must be the image's video latent [B, {c}, 1, {h}, {w}] (or [B, {c}, {h}, {w}]) "
            f"matching the video latents {list(video_shape)}, got {list(reference.shape)}"
        )
    if reference.shape[0] not in (1, b):
        raise ValueError(f"reference batch {reference.shape[0]} must be 1 or the video batch {b}")
    return reference.expand(b, -1, -1, -1, -1)


def reference_condition(
    reference: torch.Tensor, video_shape: tuple[int, ...], condition_channels: int, frames: str = "first"
) -> torch.Tensor:
    """The model's extra input channels [B, condition_channels, F, H, W] for a reference.

    Channels: [first-frame latent on frame 0 and zeros on later frames (frames="first"),
    or on every frame (frames="every"); mask, ones on frame 0]. The mask takes the model's
    remaining condition channels: one per pixel frame in a latent frame, i.e. the video VAE's
    temporal stride (4 for Wan). `frames` is the model's config.reference_frames.
    """
    b, c, f, h, w = video_shape
    if condition_channels <= c:
        raise ValueError(
            f"the model has {condition_channels} video condition channels; a reference needs the "
            f"{c} latent channels plus its mask channels: this model was not made for a reference image"
        )
    first = first_frame_latent(reference, video_shape)
    condition = first.new_zeros(b, condition_channels, f, h, w)
    if frames == "first":
        condition[:, :c, :1] = first
    elif frames == "every":
        condition[:, :c] = first
    else:
        raise ValueError(f"frames must be 'first' or 'every', got {frames!r}")
    condition[:, c:, :1] = 1
    return condition


def hold_first_frame(video: torch.Tensor, first: torch.Tensor, first_noise: torch.Tensor, sigma) -> torch.Tensor:
    """`video` [B, C, F, H, W] with frame 0 replaced by the reference `first` [B, C, 1, H, W]
    noised to `sigma` with `first_noise` (that frame's initial noise)."""
    return torch.cat([add_noise(first, first_noise, sigma), video[:, :, 1:]], dim=2)
