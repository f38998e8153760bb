"""The pack's ComfyUI nodes (V3 schema), all in the "JoVA" menu category."""

from .decode import JoVADecode
from .defaults import JoVAModelDefaults
from .errors import raise_plain_value_errors
from .extend import JoVAExtend
from .latent import JoVAEmptyLatent
from .loaders import (
    JoVAAudioCodecLoader,
    JoVADemoReferenceImage,
    JoVAModelLoader,
    JoVAT5GemmaLoader,
    JoVATextEncoderLoader,
    JoVAVideoCodecLoader,
)
from .lora import JoVALoraLoader
from .mouth import JoVAMouthMaskPreview
from .mux import JoVAMux
from .sampler import JoVASampler
from .text import JoVATextEncode

NODES = (
    JoVAModelLoader,
    JoVALoraLoader,
    JoVAAudioCodecLoader,
    JoVAVideoCodecLoader,
    JoVATextEncoderLoader,
    JoVAT5GemmaLoader,
    JoVADemoReferenceImage,
    JoVATextEncode,
    JoVAModelDefaults,
    JoVAEmptyLatent,
    JoVASampler,
    JoVAExtend,
    JoVADecode,
    JoVAMux,
    JoVAMouthMaskPreview,
)

for _node in NODES:  # ComfyUI would name the pack's own error classes by its folder's path
    raise_plain_value_errors(_node)
del _node
