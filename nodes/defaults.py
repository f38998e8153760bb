"""JoVA Model Defaults: the generation settings a model's file carries (a converted
JavisDiT++: its own inference settings), as values to wire into JoVA Empty Latent,
JoVA Sampler and the negative prompt's text encoder."""

from __future__ import annotations

from comfy_api.latest import io

from .display import show_text
from .types import CATEGORY, JoVAModel


def describe_defaults(defaults) -> str:
    rule = "size-dependent" if defaults.shift_rule != "fixed" else "fixed"
    return (
        f"{defaults.width}x{defaults.height}, {defaults.frames} frames at {defaults.fps:g} fps "
        f"({defaults.seconds:g} s); {defaults.steps} {defaults.sampler} steps, shift {defaults.default_shift:.3f} "
        f"({rule}{'' if defaults.sigma_max == 1 else f', from sigma {defaults.sigma_max:g}'}), cfg video {defaults.video_guidance()} / audio {defaults.cfg_audio:g}. From: {defaults.source}"
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
            inputs=[JoVAModel.Input("model", tooltip="A model whose file carries generation defaults "
                                                     "(a JavisDiT++ converted with jova_core convert).")],
            outputs=[
                io.Int.Output("width", tooltip="Pixel width the model's inference asks for (Empty Latent rounds it)."),
                io.Int.Output("height", tooltip="Pixel height the model's inference asks for."),
                io.Float.Output("seconds", tooltip="Clip length: frames / fps."),
                io.Float.Output("fps", tooltip="Frame rate."),
                io.Int.Output("steps", tooltip="Sampling steps."),
                io.Float.Output("shift", tooltip="Sigma shift for this size and length."),
                io.Float.Output("cfg_video", tooltip="Guidance scale of the video."),
                io.Float.Output("cfg_audio", tooltip="Guidance scale of the audio."),
                io.String.Output("negative_prompt", tooltip="The model's own negative prompt, for the negative text encoder."),
                io.String.Output("info", tooltip="These settings and where they come from, as text."),
            ],
            hidden=[io.Hidden.unique_id],
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
            defaults.cfg_video, defaults.cfg_audio, defaults.negative_prompt, info, ui=show_text(cls, info),
        )
