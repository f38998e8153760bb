"""JoVA Empty Latent: a clip's size and length -> empty video and audio latents that match.

The JoVA LATENT and its keys: jova_core/latent.py; the rounding: jova_core/fit.py.
"""

from __future__ import annotations

from comfy_api.latest import io

from ..jova_core.fit import clip_geometry, describe
from ..jova_core.latent import JoVALatent
from .display import show_text
from .types import CATEGORY, JoVAModel


class JoVAEmptyLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVAEmptyLatent",
            display_name="JoVA Empty Latent",
            category=CATEGORY,
            description="Empty video + audio latents of one duration for the model; the rounding is shown on the node.",
            inputs=[
                JoVAModel.Input("model", tooltip="Sets channels, strides and the audio latent rate."),
                io.Int.Input("width", default=832, min=16, max=4096, step=16,
                             tooltip="Pixels; rounded to a multiple of the latent stride x patch size (16 for Wan2.1)."),
                io.Int.Input("height", default=480, min=16, max=4096, step=16,
                             tooltip="Pixels; rounded to a multiple of the latent stride x patch size (16 for Wan2.1)."),
                io.Float.Input("seconds", default=5.0, min=0.05, max=120.0, step=0.05,
                               tooltip="Clip length; frames are rounded down to 4k+1 (the video VAE keeps the first "
                                       "frame alone), the audio latent to the same duration. For lip sync to your "
                                       "audio, its length."),
                io.Float.Input("fps", default=16.0, min=1.0, max=120.0, step=1.0,
                               tooltip="Frames per second of the clip (Wan2.1 models: 16)."),
                io.Int.Input("batch_size", default=1, min=1, max=64, tooltip="Clips generated at once."),
            ],
            outputs=[io.Latent.Output("latent", tooltip="Video and audio latents plus the clip's timing."),
                     io.String.Output("info", tooltip="The rounding and the latent shapes (also shown on the node).")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, width: int, height: int, seconds: float, fps: float, batch_size: int = 1) -> io.NodeOutput:
        clip = clip_geometry(model.hosting.geometry, width, height, seconds, fps, batch_size, model.defaults)
        info = describe(clip, width, height, seconds)
        return io.NodeOutput(JoVALatent.empty(clip).to_dict(), info, ui=show_text(cls, info))
