"""JoVA Empty Latent: a clip's size and length -> empty video and audio latents that match.

The JoVA LATENT and its keys: jova_core/latent.py; the rounding: jova_core/fit.py.
"""

from __future__ import annotations

from comfy_api.latest import io, ui

from ..jova_core.fit import clip_geometry, describe
from ..jova_core.latent import JoVALatent
from .types import CATEGORY, JoVAModel


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
        clip = clip_geometry(model.config.geometry, width, height, seconds, fps, batch_size, model.defaults)
        info = describe(clip, width, height, seconds)
        return io.NodeOutput(JoVALatent.empty(clip).to_dict(), info, ui=ui.PreviewText(info))
