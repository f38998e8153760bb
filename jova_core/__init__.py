"""jova_core: framework-free PyTorch for JoVA joint video + audio generation.

Public entry points (imported lazily so ``import jova_core`` stays light):
    load_transformer(path, dtype=None, device="cpu", attention="sdpa") -> JoVATransformer
    load_video_codec(path)                     -> video codec (Wan2.1 or Wan2.2 VAE)
    load_audio_codec(vae_path, vocoder_path)   -> audio codec (MMAudio VAE + BigVGAN, AudioLDM2 VAE + HiFi-GAN,
                                                  or the Stable Audio Open VAE alone)
    apply_lora(model, path, strength=1.0)      -> handle; handle.remove() undoes it
    generation_defaults(path)                  -> the settings a model file carries (JavisDiT++), or None
"""

from __future__ import annotations

import importlib

# Relative module names: inside ComfyUI this package is imported under the pack's name.
_ENTRY_POINTS = {
    "load_transformer": ".checkpoint",
    "generation_defaults": ".checkpoint",
    "load_video_codec": ".codecs",
    "load_audio_codec": ".codecs",
    "apply_lora": ".lora",
    "JoVAConfig": ".config",
    "preset_config": ".config",
    "JoVATransformer": ".model.transformer",
}

__all__ = sorted(_ENTRY_POINTS)


def __getattr__(name: str):
    if name in _ENTRY_POINTS:
        return getattr(importlib.import_module(_ENTRY_POINTS[name], __name__), name)
    raise AttributeError(f"module 'jova_core' has no attribute {name!r}")
