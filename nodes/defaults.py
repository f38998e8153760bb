"""JoVA Model Defaults: the generation settings a model's file carries (a converted
JavisDiT++: its own inference settings), as values to wire into JoVA Empty Latent,
JoVA Sampler and the negative prompt's text encoder."""

from __future__ import annotations

from comfy_api.latest import io, ui

from .types import CATEGORY, JoVAModel


def describe_defaults(defaults) -> str:
    shift = defaults.default_shift
    rule = "size-dependent" if defaults.shift_rule != "fixed" else "fixed"
    return (
        f"{defaults.width}x{defaults.height}, {defaults.frames} frames at {defaults.fps:g} fps "
        f"({defaults.seconds:g} s); {defaults.steps} {defaults.sampler} steps, shift {shift:.3f} ({rule}), "
        f"cfg video {defaults.cfg_video:g} / audio {defaults.cfg_audio:g}. From: {defaults.source}"
    )


class JoVAModelDefaults(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVAModelDefaults",
            display_name="JoVA Model Defaults",
            category=CATEGORY,
            description=(
                "The settings the model's own inference uses (a converted JavisDiT++ carries them): "
                "connect them to JoVA Empty Latent's and JoVA Sampler's inputs, and the negative prompt "
                "to the negative text encoder. The shift is the one for this size (JavisDiT++ scales it)."
            ),
            inputs=[JoVAModel.Input("model")],
            outputs=[
                io.Int.Output("width"), io.Int.Output("height"), io.Float.Output("seconds"), io.Float.Output("fps"),
                io.Int.Output("steps"), io.Float.Output("shift"), io.Float.Output("cfg_video"),
                io.Float.Output("cfg_audio"), io.String.Output("negative_prompt"), io.String.Output("info"),
            ],
        )

    @classmethod
    def execute(cls, model) -> io.NodeOutput:
        defaults = model.defaults
        if defaults is None:
            raise ValueError(
                f"{model.source} carries no generation defaults (only converted JavisDiT++ files do); "
                "set the sizes, steps, shift and guidance by hand"
            )
        info = describe_defaults(defaults)
        return io.NodeOutput(
            defaults.width, defaults.height, defaults.seconds, defaults.fps, defaults.steps, defaults.default_shift,
            defaults.cfg_video, defaults.cfg_audio, defaults.negative_prompt, info, ui=ui.PreviewText(info),
        )
