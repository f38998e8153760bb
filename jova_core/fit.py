"""Fitting a requested clip, and given frames and sound, to what a model and its codecs take.

    clip_geometry   width, height, seconds, fps -> the nearest sizes the codecs and the
                    model's patches accept, and the latent shapes of that clip
    fit_frames      frames of any size -> the clip's size (centre crop, then resize)
    audio_to_latents  a waveform of any length -> latents of the clip's length (cut, or
                    padded with silence before encoding)

Frames are resized here rather than with ComfyUI's ``comfy.utils.common_upscale``:
jova_core runs without ComfyUI (CLI, training), and common_upscale's "bilinear" does not
antialias, so shrinking a large reference photo to the clip size would alias; its
centre crop also rounds differently, which would change the i2va results of saved
workflows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .defaults import GenerationDefaults
from .geometry import ModelGeometry, valid_video_size


@dataclass(frozen=True)
class ClipGeometry:
    width: int
    height: int
    frames: int  # pixel frames
    fps: float
    video_shape: tuple[int, ...]  # [B, C, F, H, W]
    audio_shape: tuple[int, ...]  # [B, C, T] or [B, C, F, T]

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def clip_geometry(geometry: ModelGeometry, width: int, height: int, seconds: float, fps: float,
                  batch_size: int = 1, defaults: GenerationDefaults | None = None) -> ClipGeometry:
    """Round a requested clip to sizes the codecs and the transformer's patches accept.

    Width/height: nearest multiples of spatial stride x patch size (Wan2.1: 8 x 2 = 16).
    Frames: 1 + k x temporal stride, at most seconds x fps (the causal video VAE keeps
    the first frame alone). Audio: the latent frames the audio encoder makes for the
    clip's duration, so decoded sound and video have the same length; or, when the
    model's `defaults` carry their own rule (JavisDiT++ rounds up; decoding cuts the
    sound to the clip), that rule's count.
    """
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"seconds must be a positive number, got {seconds}")
    video, audio = geometry.video, geometry.audio
    if geometry.video_patch[0] != 1:
        raise ValueError(f"video temporal patch {geometry.video_patch[0]} is not supported (Wan2.1 uses 1)")
    patch_f, patch_t = geometry.audio_patch
    if audio.frequency_bins % patch_f or audio.frequency_bins < patch_f:
        raise ValueError(
            f"this model's audio branch takes 2-D (frequency x time) audio latents in patches of {patch_f} "
            f"frequency bins, but its config gives them {audio.frequency_bins}: a JavisDiT++ file converted before "
            "AudioLDM2 support; convert the release again (python -m jova_core convert --format javisdit)"
        )
    multiple = geometry.pixel_multiple
    frames, height_r, width_r = valid_video_size(
        max(1, round(seconds * fps)), height, width, multiple, temporal_stride=video.temporal_stride
    )
    if defaults is not None:
        audio_len = defaults.audio_latent_frames(frames / fps, audio.latent_rate) // patch_t * patch_t
    else:  # as the audio encoder counts: whole latent frames in the clip's duration
        audio_len = math.floor(frames / fps * audio.latent_rate + 1e-6) // patch_t * patch_t
    video_shape = (batch_size, *video.latent_shape(frames, height_r, width_r))
    audio_shape = (batch_size, *audio.latent_shape(max(patch_t, audio_len)))
    return ClipGeometry(width_r, height_r, frames, fps, video_shape, audio_shape)


def describe(geometry: ClipGeometry, width: int, height: int, seconds: float) -> str:
    """What clip_geometry made of a request: its roundings (if any), then the clip."""
    lines = []
    if (geometry.width, geometry.height) != (width, height):
        lines.append(f"size {width}x{height} rounded to {geometry.width}x{geometry.height}")
    if abs(geometry.seconds - seconds) > 1e-6:
        lines.append(f"length {seconds:g} s rounded to {geometry.frames} frames = {geometry.seconds:.3f} s")
    lines.append(f"{geometry.width}x{geometry.height}, {geometry.frames} frames at {geometry.fps:g} fps")
    # The shapes on a line of their own: a node ~400 px wide shows about 66 characters a line,
    # and ComfyUI's frontend breaks longer lines inside words.
    lines.append(f"video latent {list(geometry.video_shape)}, audio latent {list(geometry.audio_shape)}")
    return "\n".join(lines)


def fit_frames(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Frames [T, H, W, 3+] in 0..1 -> [T, height, width, 3]: centre crop to the aspect ratio,
    then an antialiased bilinear resize (none when the crop already has the size)."""
    _, h, w, _ = images.shape
    scale = max(height / h, width / w)
    crop_h, crop_w = min(h, round(height / scale)), min(w, round(width / scale))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    x = images[:, top:top + crop_h, left:left + crop_w, :3].permute(0, 3, 1, 2).float()
    if (crop_h, crop_w) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1).permute(0, 2, 3, 1)


def audio_to_latents(codec, waveform: torch.Tensor, sample_rate: int, latent_frames: int,
                     seconds: float) -> tuple[torch.Tensor, str]:
    """waveform [B, C, N] at `sample_rate` -> the audio codec's latents [B, C, latent_frames]
    for a clip of `seconds`, and a note when the sound did not fit: longer audio is cut,
    shorter audio is padded with silence (before encoding, so the padding is real silence)."""
    waveform, rate = waveform.float(), int(sample_rate)
    have = waveform.shape[-1] / rate
    # One latent frame of headroom so the encoder's rounding never comes up short.
    need = round((seconds + 1.0 / codec.latent_rate) * rate)
    waveform = F.pad(waveform, (0, max(0, need - waveform.shape[-1])))[..., :need]
    latents = codec.encode(waveform, rate)[..., :latent_frames]
    note = "" if abs(have - seconds) < 0.5 / codec.latent_rate else (
        f"driving audio is {have:.2f} s, the clip {seconds:.2f} s: "
        + ("cut to the clip" if have > seconds else "padded with silence"))
    return latents.cpu(), note
