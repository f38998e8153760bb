"""The one interface of JoVA's text encoders: what the nodes, the trainer and the demo call."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class TextEncoder(ABC):
    """Inputs (prompts; for the precomputed encoder, files) -> text features
    [B, text_len, text_dim] float32 on the CPU, zero past each input's last token (as
    Wan2.1 pads its prompts), which the transformer's text MLPs read.

    text_dim / text_len: the model's (JoVAConfig); fingerprint: identifies the exact
    features, so cached embeddings are redone when it changes. prompt_format: how
    JoVA Text Encode assembles prompts for it (jova_core.text.prompt).
    """

    text_dim: int
    text_len: int
    # How prompts are assembled for it (jova_core.text.prompt.PROMPT_FORMATS): its model's format.
    prompt_format: str = "sections"

    @property
    @abstractmethod
    def fingerprint(self) -> str: ...

    @abstractmethod
    def encode_one(self, prompt: str) -> torch.Tensor:
        """One input -> [text_len, text_dim] float32."""

    def __call__(self, prompts: str | list[str]) -> torch.Tensor:
        """One input or a list -> [B, text_len, text_dim] float32."""
        if isinstance(prompts, str):
            prompts = [prompts]
        return torch.stack([self.encode_one(p) for p in prompts])
