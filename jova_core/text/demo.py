"""A tiny deterministic text encoder for the CPU demo (no umT5 needed, nothing to download).

A JoVA prompt (jova_core.text.prompt: "<Video Caption>: ... <Audio Caption>: ...
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
import unicodedata
import zlib

import torch

from .base import TextEncoder
from .prompt import SECTIONS, split_prompt

_WORD_RE = re.compile(r"[a-z0-9']+")
# A syllable: leading consonants, then its vowels; trailing consonants join the last one.
_SYLLABLE_RE = re.compile(r"[^aeiouy]*[aeiouy]+(?:[^aeiouy]+$)?|[^aeiouy]+$")


def unreadable(text: str) -> list[str]:
    """The characters of `text` the demo encoder would silently drop (anything but a-z,
    digits, apostrophes, white space and punctuation: accented or other scripts' letters,
    emoji, symbols), each once, in order."""
    seen = []
    for char in text:
        readable = _WORD_RE.fullmatch(char.lower()) or char.isspace() or unicodedata.category(char).startswith("P")
        if not readable and char not in seen:
            seen.append(char)
    return seen


def _check_readable(transcript: str) -> None:
    unread = unreadable(transcript)
    if unread:
        raise ValueError(f"the demo voice cannot say {' '.join(unread)!r}: its transcript takes the letters a-z, "
                         "digits, apostrophes, spaces and punctuation, e.g. \"ba ma da\"")


def syllables(word: str) -> list[str]:
    """"bamako" -> ["ba", "ma", "ko"]; a word without vowels stays whole."""
    return _SYLLABLE_RE.findall(word) or [word]


class DemoTextEncoder(TextEncoder):
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
        """The syllables the encoder reads from a transcript, in order. A transcript with
        characters it cannot read (other letters, emoji; see `unreadable`) is refused, as
        is one with nothing to say: the demo voice would silently skip them."""
        _check_readable(transcript)
        pieces = [part for word in _WORD_RE.findall(transcript.lower()) for part in syllables(word)]
        if not pieces:
            raise ValueError(f"the transcript {transcript!r} has no syllables to say; write some, e.g. \"ba ma da\"")
        return pieces

    def tokenize(self, prompt: str) -> list[tuple[int, int, bool, str]]:
        """(section index, position in section, starts a word, piece) for every piece:
        words of the captions, syllables of the transcript."""
        tokens = []
        sections = split_prompt(prompt)
        _check_readable(sections["Transcript"])
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
