"""JoVA Empty Latent: a clip's size and length -> empty video and audio latents that match.

The JoVA LATENT is a core LATENT dict whose "samples" are the video latents
[B, C, F, H, W] in the model's (normalised) latent space, with the audio latents and
the clip's timing alongside:
    "jova_audio" [B, C_audio, T] (or [B, C_audio, F, T]), "jova_fps" float, "jova_frames" int (pixel frames),
    "jova_width", "jova_height" int (pixels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from comfy_api.latest import io, ui

from ..jova_core.codecs.base import VideoCodec, valid_num_frames, valid_video_size
from ..jova_core.defaults import GenerationDefaults
from .types import CATEGORY, JoVAModel


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


def clip_geometry(config, width: int, height: int, seconds: float, fps: float, batch_size: int = 1,
                  defaults: GenerationDefaults | None = None) -> ClipGeometry:
    """Round a requested clip to sizes the codecs and the transformer's patches accept.

    Width/height: nearest multiples of spatial stride x patch size (Wan2.1: 8 x 2 = 16).
    Frames: 1 + k x temporal stride, at most seconds x fps (the causal video VAE keeps
    the first frame alone). Audio: the latent frames the audio encoder makes for the
    clip's duration, so decoded sound and video have the same length, unless the model's
    `defaults` carry its own rule (JavisDiT++ rounds up, and the decoder's output is cut
    to the clip). Models with 2-D audio latents [B, C, F, T] (JavisDiT++'s AudioLDM2)
    take F from their defaults.
    """
    if config.video_patch_size[0] != 1:
        raise ValueError(f"video temporal patch {config.video_patch_size[0]} is not supported (Wan2.1 uses 1)")
    bins = defaults.audio_latent_bins if defaults is not None else 0
    if config.audio_patch_size[0] != 1 and not bins:
        raise ValueError(
            "this model's audio branch takes 2-D (frequency x time) audio latents, e.g. JavisDiT++'s "
            "AudioLDM2 latents, but its file does not say how many frequency bins: convert the JavisDiT++ "
            "release with this version of ComfyUI-JoVA (jova_core convert --format javisdit)"
        )
    # Every video codec (Wan2.1 VAE, demo) shares Wan's latent geometry.
    spatial_stride = VideoCodec.spatial_stride
    multiple = spatial_stride * config.video_patch_size[1]
    if config.video_patch_size[1] != config.video_patch_size[2]:
        raise ValueError(f"non-square video patches {config.video_patch_size} are not supported")
    stride_t = config.video_temporal_stride
    frames, height_r, width_r = valid_video_size(max(1, round(seconds * fps)), height, width, multiple)
    frames = valid_num_frames(frames, stride_t)
    audio_patch = config.audio_patch_size[1]
    if defaults is not None:
        audio_len = defaults.audio_latent_frames(frames / fps, config.audio_latent_rate)
    else:  # as the audio encoder counts: whole latent frames in the clip's duration
        audio_len = math.floor(frames / fps * config.audio_latent_rate + 1e-6)
    audio_len = audio_len // audio_patch * audio_patch
    video_shape = (batch_size, config.video_in_channels, 1 + (frames - 1) // stride_t,
                   height_r // spatial_stride, width_r // spatial_stride)
    audio_bins = (bins,) if config.audio_patch_size[0] != 1 else ()
    audio_shape = (batch_size, config.audio_in_channels, *audio_bins, max(audio_patch, audio_len))
    return ClipGeometry(width_r, height_r, frames, fps, video_shape, audio_shape)


def describe(geometry: ClipGeometry, width: int, height: int, seconds: float) -> str:
    lines = []
    if (geometry.width, geometry.height) != (width, height):
        lines.append(f"size {width}x{height} rounded to {geometry.width}x{geometry.height}")
    if abs(geometry.seconds - seconds) > 1e-6:
        lines.append(f"length {seconds:g} s rounded to {geometry.frames} frames = {geometry.seconds:.3f} s")
    lines.append(
        f"{geometry.width}x{geometry.height}, {geometry.frames} frames at {geometry.fps:g} fps; "
        f"video latent {list(geometry.video_shape)}, audio latent {list(geometry.audio_shape)}"
    )
    return "\n".join(lines)


class JoVAEmptyLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVAEmptyLatent",
            display_name="JoVA Empty Latent",
            category=CATEGORY,
            description="Empty video + audio latents of one duration for the model; rounding is reported.",
            inputs=[
                JoVAModel.Input("model", tooltip="Sets channels, strides and the audio latent rate."),
                io.Int.Input("width", default=832, min=16, max=4096, step=16),
                io.Int.Input("height", default=480, min=16, max=4096, step=16),
                io.Float.Input("seconds", default=5.0, min=0.05, max=120.0, step=0.05),
                io.Float.Input("fps", default=16.0, min=1.0, max=120.0, step=1.0),
                io.Int.Input("batch_size", default=1, min=1, max=64),
            ],
            outputs=[io.Latent.Output("latent"), io.String.Output("info")],
        )

    @classmethod
    def execute(cls, model, width: int, height: int, seconds: float, fps: float, batch_size: int = 1) -> io.NodeOutput:
        geometry = clip_geometry(model.config, width, height, seconds, fps, batch_size, model.defaults)
        info = describe(geometry, width, height, seconds)
        latent = {
            "samples": torch.zeros(geometry.video_shape),
            "jova_audio": torch.zeros(geometry.audio_shape),
            "jova_fps": float(fps),
            "jova_frames": geometry.frames,
            "jova_width": geometry.width,
            "jova_height": geometry.height,
        }
        return io.NodeOutput(latent, info, ui=ui.PreviewText(info))
