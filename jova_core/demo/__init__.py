"""The bundled CPU demo: a tiny JoVA trained on synthetic talking-astronaut clips.

The shipped checkpoint (jova_core/assets/jova_demo.safetensors, made by
jova_core/assets/demo_recipe.json) was trained with this repository's trainer on clips
from jova_core.train.synthetic, through the weight-free demo codecs
(jova_core.codecs.demo) and the hash text encoder (jova_core.text.demo).

    settings.py   DemoSettings (stored in the checkpoint's metadata), the model, the reference image
    generate.py   sample_demo: one clip's latents (DemoLatents: decode whole, or write_mp4 chunk by chunk);
                  generate_demo: one clip decoded
    evaluate.py   evaluate_lip_sync: lip sync of outputs over seeds
The command line (``python -m jova_core demo``) is jova_core/cli/demo.py.
"""

from .evaluate import evaluate_lip_sync, summarize_lip_sync
from .generate import DemoClip, DemoLatents, demo_prompt, generate_demo, sample_demo
from .settings import (
    DEFAULT_TRANSCRIPT,
    DEMO_CHECKPOINT,
    DEMO_REFERENCE,
    DemoSettings,
    load_demo_model,
    load_demo_settings,
    reference_frame,
    save_reference_frame,
    synthetic_reference_frame,
)

__all__ = [
    "DEFAULT_TRANSCRIPT",
    "DEMO_CHECKPOINT",
    "DEMO_REFERENCE",
    "DemoClip",
    "DemoSettings",
    "demo_prompt",
    "evaluate_lip_sync",
    "generate_demo",
    "sample_demo",
    "DemoLatents",
    "load_demo_model",
    "load_demo_settings",
    "reference_frame",
    "save_reference_frame",
    "summarize_lip_sync",
    "synthetic_reference_frame",
]
