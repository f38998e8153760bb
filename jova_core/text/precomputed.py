"""Precomputed text hidden states: the "precomputed" text encoder of the trainer."""

from __future__ import annotations

import torch

from .base import TextEncoder


class PrecomputedTextEncoder(TextEncoder):
    """Text hidden states the user encoded with any tool. Its inputs are files, not
    prompts: one safetensors file per clip (named by the training captions'
    `text_embedding` field) holding the tensor "text" [L, text_dim] (or [1, L, text_dim])
    for the clip's prompt, L <= text_len. Rows past L are filled with zeros, as Wan2.1
    pads its prompt, so L should count the real tokens only."""

    TENSOR_KEY = "text"

    def __init__(self, text_dim: int, text_len: int):
        self.text_dim, self.text_len = text_dim, text_len

    @property
    def fingerprint(self) -> str:
        # Each clip's own file is part of its cache stamp, so edits to it redo that clip.
        return f"precomputed:{self.text_dim}:{self.text_len}"

    def encode_one(self, path: str) -> torch.Tensor:
        """[text_len, text_dim] float32 from one embedding file."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, framework="pt") as f:
                keys = list(f.keys())
                key = self.TENSOR_KEY if self.TENSOR_KEY in keys else (keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise ValueError(f"{path} has no tensor {self.TENSOR_KEY!r} (it has {keys[:6]}); save the prompt's "
                                     f"hidden states under {self.TENSOR_KEY!r}")
                text = f.get_tensor(key)
        except SafetensorError as err:
            raise ValueError(f"{path} is not a readable safetensors file ({err})") from err
        if text.dim() == 3 and text.shape[0] == 1:
            text = text[0]
        if text.dim() != 2 or text.shape[1] != self.text_dim or not 0 < text.shape[0] <= self.text_len or not text.is_floating_point():
            raise ValueError(
                f"{path}: text hidden states must be a float tensor [L, {self.text_dim}] with 1 <= L <= {self.text_len} "
                f"(the model's text_dim and text_len), got {text.dtype} {list(text.shape)}"
            )
        if not torch.isfinite(text).all():
            raise ValueError(f"{path}: the text hidden states hold NaN or inf values")
        out = torch.zeros(self.text_len, self.text_dim)
        out[: text.shape[0]] = text.float()
        return out
