"""A tiny deterministic text encoder for the CPU demo (no umT5 needed, nothing to download).

A JoVA prompt (jova_core.text.format_prompt: "<Video Caption>: ... <Audio Caption>: ...
<Transcript>: ...") is split into its three sections and each section into lower-case
words; transcript words are further split into syllables (each run of consonants with
the vowels after it: "bamako" -> ba ma ko), because syllables are what the mouth shows.
Every piece becomes one token whose feature vector is the concatenation of FIXED parts
(no trained weights, so the encoder ships as code only and gives the same vectors on
every machine):

    [ section one-hot (3) | starts a word (1) | position within its section (sinusoid)
      | piece identity (hash-seeded random unit vector) ]

The position part is what lets a model read the ORDER of the transcript's syllables (and
so when the mouth must open); keeping it separate from the word part (concatenated, not
added) makes it easy for a small text MLP to pick apart. The transformer's own per-branch
text MLP is what learns to use these features.

Output: [B, text_len, text_dim] float32, zero-padded after the last word.
"""

from __future__ import annotations

import math
import re
import zlib

import torch

SECTIONS = ("Video Caption", "Audio Caption", "Transcript")
_SECTION_RE = re.compile(r"<(Video Caption|Audio Caption|Transcript)>:")
_WORD_RE = re.compile(r"[a-z0-9']+")
# A syllable: leading consonants, then its vowels; trailing consonants join the last one.
_SYLLABLE_RE = re.compile(r"[^aeiouy]*[aeiouy]+(?:[^aeiouy]+$)?|[^aeiouy]+$")


def split_prompt(prompt: str) -> dict[str, str]:
    """Section name -> text. Text before any section tag counts as the video caption."""
    parts = _SECTION_RE.split(prompt)
    sections = {name: "" for name in SECTIONS}
    sections["Video Caption"] = parts[0].strip()
    for name, text in zip(parts[1::2], parts[2::2]):
        sections[name] = (sections[name] + " " + text).strip()
    return sections


def syllables(word: str) -> list[str]:
    """"bamako" -> ["ba", "ma", "ko"]; a word without vowels stays whole."""
    return _SYLLABLE_RE.findall(word) or [word]


class DemoTextEncoder:
    """Fixed section + word-start + position + hash features for the pieces of a prompt.

    text_dim is split as: section one-hot (3) | word start (1) | position sinusoid
    (position_dim) | piece hash (the rest). Pieces of each section are numbered from 0,
    so the transcript's n-th syllable gets the same position features whatever the
    captions say.
    """

    name = "demo-hash-v2"
    _FLAGS = len(SECTIONS) + 1  # section one-hot + word start

    def __init__(self, text_dim: int, text_len: int, position_dim: int | None = None):
        position_dim = position_dim if position_dim is not None else max(4, (text_dim // 4) // 2 * 2)
        self.word_dim = text_dim - self._FLAGS - position_dim
        if self.word_dim < 4 or position_dim % 2:
            raise ValueError(
                f"text_dim {text_dim} is too small for the demo text encoder: it needs 4 flag "
                f"features, an even number of position features ({position_dim}) and at least 4 piece features"
            )
        self.text_dim, self.text_len, self.position_dim = text_dim, text_len, position_dim

    @property
    def fingerprint(self) -> str:
        """Identifies the exact features, so cached embeddings are redone when it changes."""
        return f"{self.name}:{self.text_dim}:{self.text_len}:{self.position_dim}"

    @staticmethod
    def transcript_syllables(transcript: str) -> list[str]:
        """The syllables the encoder reads from a transcript, in order."""
        return [part for word in _WORD_RE.findall(transcript.lower()) for part in syllables(word)]

    def tokenize(self, prompt: str) -> list[tuple[int, int, bool, str]]:
        """(section index, position in section, starts a word, piece) for every piece:
        words of the captions, syllables of the transcript."""
        tokens = []
        sections = split_prompt(prompt)
        for s, name in enumerate(SECTIONS):
            pieces = []
            for word in _WORD_RE.findall(sections[name].lower()):
                parts = syllables(word) if name == "Transcript" else [word]
                pieces += [(i == 0, part) for i, part in enumerate(parts)]
            tokens += [(s, i, start, piece) for i, (start, piece) in enumerate(pieces)]
        return tokens

    def word_vector(self, word: str) -> torch.Tensor:
        # crc32 seeds torch's CPU generator: stable across runs, processes and machines.
        g = torch.Generator().manual_seed(zlib.crc32(word.encode("utf-8")))
        v = torch.randn(self.word_dim, generator=g)
        return v / v.norm()

    def position_vector(self, position: int) -> torch.Tensor:
        half = self.position_dim // 2
        # Wavelengths from ~3 to ~60 tokens: neighbouring syllables differ clearly.
        freqs = torch.exp(-math.log(20.0) * torch.arange(half) / max(half - 1, 1)) * 2.0
        angles = position * freqs
        return torch.cat([torch.cos(angles), torch.sin(angles)]) / math.sqrt(half)

    def encode_one(self, prompt: str) -> torch.Tensor:
        tokens = self.tokenize(prompt)
        if len(tokens) > self.text_len:
            raise ValueError(
                f"the prompt has {len(tokens)} words/syllables but the demo text encoder holds {self.text_len}; "
                "shorten the captions or transcript"
            )
        out = torch.zeros(self.text_len, self.text_dim)
        flags = self._FLAGS
        for row, (section, position, word_start, piece) in enumerate(tokens):
            out[row, section] = 1.0
            out[row, len(SECTIONS)] = float(word_start)
            out[row, flags : flags + self.position_dim] = self.position_vector(position)
            out[row, flags + self.position_dim :] = self.word_vector(piece)
        return out

    def __call__(self, prompts: str | list[str]) -> torch.Tensor:
        """prompts -> [B, text_len, text_dim] float32."""
        if isinstance(prompts, str):
            prompts = [prompts]
        return torch.stack([self.encode_one(p) for p in prompts])
