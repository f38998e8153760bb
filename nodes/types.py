"""The pack's own socket types (objects no core node consumes) and its menu category."""

from comfy_api.latest import io

CATEGORY = "JoVA"

# A loaded JoVA transformer plus how it is to be placed on the GPU (JoVAModelHandle).
JoVAModel = io.Custom("JOVA_MODEL")
# An audio codec: MMAudio VAE + vocoder, or the demo codec (jova_core.codecs).
JoVAAudioCodec = io.Custom("JOVA_AUDIO_CODEC")
# A video codec from jova_core.codecs (the demo codec); Wan2.1 comes as core VAE instead.
JoVAVideoCodec = io.Custom("JOVA_VIDEO_CODEC")
# A text encoder that is not a core CLIP (the demo's hash encoder).
JoVATextEncoder = io.Custom("JOVA_TEXT_ENCODER")
