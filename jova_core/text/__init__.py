"""Text: JoVA's prompt format and the text encoders that turn prompts into features.

    format_prompt / split_prompt           the prompt and its sections       (prompt.py)
    TextEncoder                            the one encoder interface         (base.py)
    build_text_encoder(spec, dim, len)     an encoder by name:
        "demo"         the CPU demo's hash features                          (demo.py)
        "umt5:<path>"  umT5-XXL as Wan2.1 uses it (needs transformers)       (umt5.py)
        "t5gemma:<folder>"  T5Gemma's encoder as MagiHuman uses it (transformers)  (t5gemma.py)
        "precomputed"  each clip's own hidden-states file                    (precomputed.py)
"""

from __future__ import annotations

from .base import TextEncoder
from .prompt import format_prompt, split_prompt

TEXT_ENCODERS = ("'demo', 'precomputed', 'umt5:<transformers folder or umT5 weight file>' or "
                 "'t5gemma:<t5gemma-9b-9b-ul2 folder>'")


def build_text_encoder(spec: str, text_dim: int, text_len: int) -> TextEncoder:
    """The text encoder `spec` names (a training recipe's text_encoder), sized for the model."""
    if spec == "demo":
        from .demo import DemoTextEncoder

        return DemoTextEncoder(text_dim, text_len)
    if spec == "precomputed":
        from .precomputed import PrecomputedTextEncoder

        return PrecomputedTextEncoder(text_dim, text_len)
    if spec.startswith("umt5:"):
        from .umt5 import UMT5TextEncoder

        return UMT5TextEncoder(spec[len("umt5:"):], text_len=text_len, text_dim=text_dim)
    if spec.startswith("t5gemma:"):
        from .t5gemma import T5GemmaTextEncoder

        return T5GemmaTextEncoder(spec[len("t5gemma:"):], text_len=text_len, text_dim=text_dim)
    raise ValueError(f"text_encoder {spec!r} is not one the trainer knows; use {TEXT_ENCODERS}")


__all__ = ["TEXT_ENCODERS", "TextEncoder", "build_text_encoder", "format_prompt", "split_prompt"]
