"""JoVA Text Encode: three text boxes -> one JoVA prompt -> conditioning for both branches."""

from __future__ import annotations

from comfy_api.latest import io

from ..jova_core.text import format_prompt
from .types import CATEGORY, JoVATextEncoder

# The real token count of padded hidden states, in the conditioning's options.
TEXT_LENGTH_KEY = "jova_text_length"


class JoVATextEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVATextEncode",
            display_name="JoVA Text Encode",
            category=CATEGORY,
            description=(
                "Assembles the prompt in the text encoder's format and encodes it once; both branches read it. "
                "JoVA's umT5: '<Video Caption>: ... <Audio Caption>: ... <Transcript>: ...' (the transcript "
                "is left out when empty); T5Gemma (daVinci-MagiHuman): plain text, the boxes joined with the "
                "transcript in quotes. Use a second instance, e.g. with empty boxes, for the negative."
            ),
            inputs=[
                io.Clip.Input("clip", optional=True, tooltip="umT5-XXL from the core CLIPLoader with type 'wan'."),
                JoVATextEncoder.Input("text_encoder", optional=True,
                                      tooltip="A pack text encoder instead of a CLIP (the CPU demo's)."),
                io.String.Input("video_caption", multiline=True, default="",
                                tooltip="What is seen: people, place, camera."),
                io.String.Input("audio_caption", multiline=True, default="",
                                tooltip="What is heard: voice, music, ambience."),
                io.String.Input("transcript", multiline=True, default="",
                                tooltip="The words spoken; leave empty for clips without speech."),
            ],
            outputs=[io.Conditioning.Output("conditioning", tooltip="For JoVA Sampler's positive or negative."),
                     io.String.Output("prompt", tooltip="The assembled prompt text that was encoded.")],
        )

    @classmethod
    def execute(cls, video_caption: str, audio_caption: str, transcript: str, clip=None,
                text_encoder=None) -> io.NodeOutput:
        if (clip is None) == (text_encoder is None):
            raise ValueError("connect exactly one of 'clip' (umT5 from CLIPLoader, type 'wan') or 'text_encoder'")
        if not (video_caption.strip() or audio_caption.strip() or transcript.strip()):
            # The negative prompt: every box empty encodes the empty string.
            prompt = ""
        else:
            # The encoder's own format: JoVA's sections for umT5 (a CLIP) and the pack's encoders,
            # plain text for T5Gemma (daVinci-MagiHuman).
            style = "sections" if text_encoder is None else text_encoder.prompt_format
            prompt = format_prompt(video_caption, audio_caption, transcript, style)
        if clip is not None:
            conditioning = clip.encode_from_tokens_scheduled(clip.tokenize(prompt))
        elif hasattr(text_encoder, "encode_with_length"):
            # T5Gemma: padded to its text_len, with the real token count for models that trim.
            hidden, length = text_encoder.encode_with_length(prompt)
            conditioning = [[hidden[None], {"pooled_output": None, TEXT_LENGTH_KEY: length}]]
        else:
            conditioning = [[text_encoder([prompt]), {"pooled_output": None}]]
        return io.NodeOutput(conditioning, prompt)
