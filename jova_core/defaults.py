"""Generation defaults: the settings a model's own inference uses, carried in its JoVA file.

A converted JavisDiT++ file stores them in its safetensors metadata ("jova_defaults",
see jova_core.checkpoint), so JoVA Empty Latent / JoVA Sampler (through JoVA Model
Defaults) and the library reproduce what JavisDiT++'s inference script does at those
settings: the clip size, the audio length rule, the steps, the size-dependent shift, the
guidance and the negative prompt. (The latent geometry is the model config's, see
jova_core.geometry.) The values themselves live with the converter that
knows the model (jova_core.convert.javisdit.JAVISDIT_DEFAULTS).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from .config import dataclass_from_json

# Shift rules: "fixed" uses `shift` as it is; "javisdit" scales it with the clip's size.
SHIFT_RULES = ("fixed", "javisdit")
# Audio length rules: "codec" = whole latent frames in the clip's duration (JoVA's own);
# "javisdit" = JavisDiT++'s inference rule (see GenerationDefaults.audio_latent_frames).
# (daVinci-MagiHuman's T_a = 25 s + 1 audio tokens for F = 25 s / 4 + 1 video latent frames
# is "codec" at its 25 fps: a clip of 4k + 1 frames lasts (4k + 1) / 25 s -> 4k + 1 tokens.)
AUDIO_LENGTH_RULES = ("codec", "javisdit")
# JavisDiT++'s shift reference: a 512 x 512 picture, and time groups of 17 pixel frames.
JAVISDIT_SHIFT_PIXELS = 512 * 512
JAVISDIT_SHIFT_FRAMES = 17
JAVISDIT_SHIFT_TIME_SCALE = 5.0
# JavisDiT++'s inference draws mel frames at 100 per second, rounded up to a multiple of
# 32, and its AudioLDM2 VAE keeps one latent frame per 4 mel frames.
JAVISDIT_MEL_RATE = 100
JAVISDIT_MEL_MULTIPLE = 32
JAVISDIT_MEL_PER_LATENT = 4


@dataclass(frozen=True)
class GuidanceSchedule:
    """A guidance scale that changes with the noise level: `early` while the integer
    timestep int(1000 sigma) (schedule.integer_timestep) is above `switch_t`, `late` from
    there on (t <= switch_t), as daVinci-MagiHuman compares it."""

    early: float
    late: float
    switch_t: float = 500.0

    def at(self, t: int) -> float:
        """The scale at integer timestep t (truncate 1000 sigma first)."""
        return self.early if t > self.switch_t else self.late

    def __str__(self) -> str:
        return f"{self.early:g} (then {self.late:g} at t <= {self.switch_t:g})"


@dataclass(frozen=True)
class GenerationDefaults:
    fps: float
    width: int  # pixels as the model's inference asks for them (JoVA rounds to multiples of 16)
    height: int
    frames: int  # pixel frames
    steps: int
    sampler: str  # "euler" or "unipc"
    shift: float  # the shift for "fixed"; the base the size scales for "javisdit"
    shift_rule: str
    cfg_video: float
    cfg_audio: float
    negative_prompt: str
    audio_length: str
    source: str = ""  # where the values come from
    # A video guidance scale that takes over at t <= cfg_switch_t (MagiHuman: 5 then 2 below
    # t = 500); None keeps cfg_video throughout.
    cfg_video_late: float | None = None
    cfg_switch_t: float = 500.0
    # Where the unshifted schedule starts (schedule.sampling_sigmas): 1 for JoVA / Wan2.1,
    # 0.999 for daVinci-MagiHuman.
    sigma_max: float = 1.0

    def __post_init__(self) -> None:
        if self.shift_rule not in SHIFT_RULES:
            raise ValueError(f"shift_rule must be one of {SHIFT_RULES}, got {self.shift_rule!r}")
        if self.audio_length not in AUDIO_LENGTH_RULES:
            raise ValueError(f"audio_length must be one of {AUDIO_LENGTH_RULES}, got {self.audio_length!r}")

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    def video_guidance(self, cfg_video: float | None = None) -> "float | GuidanceSchedule":
        """The video guidance the sampler takes: `cfg_video` (default: this model's), scheduled
        to cfg_video_late below cfg_switch_t when the model has such a schedule."""
        scale = self.cfg_video if cfg_video is None else float(cfg_video)
        if self.cfg_video_late is None:
            return scale
        return GuidanceSchedule(scale, self.cfg_video_late, self.cfg_switch_t)

    def shift_for(self, height: int, width: int, frames: int) -> float:
        """The sigma shift for a clip of this pixel size (before JoVA's rounding) and frame count.

        "javisdit": s = shift * sqrt(H W / 512^2) * sqrt(5 floor(F / 17)), from JavisDiT++'s
        rflow scheduler (the resolution and frame-count terms multiply; one frame counts 1).
        Clips of 2..16 frames have floor(F / 17) = 0 there, which would give s = 0; the time
        term is kept at least 1 instead."""
        if self.shift_rule == "fixed":
            return self.shift
        space = math.sqrt(height * width / JAVISDIT_SHIFT_PIXELS)
        groups = max(1, frames // JAVISDIT_SHIFT_FRAMES)
        time = 1.0 if frames == 1 else max(1.0, math.sqrt(JAVISDIT_SHIFT_TIME_SCALE * groups))
        return self.shift * space * time

    @property
    def default_shift(self) -> float:
        return self.shift_for(self.height, self.width, self.frames)

    def audio_latent_frames(self, seconds: float, latent_rate: float) -> int:
        """Audio latent frames to generate for a clip of `seconds`.

        "codec": whole latent frames in the duration. "javisdit": JavisDiT++'s inference
        takes int(seconds / 0.01) mel frames, rounds them up to a multiple of 32 and
        divides by 4 (65 frames at 16 fps: 406 -> 416 mel -> 104 latent frames)."""
        if self.audio_length == "codec":
            return max(1, math.floor(seconds * latent_rate + 1e-6))
        mel = int(seconds / (1.0 / JAVISDIT_MEL_RATE))
        return math.ceil(mel / JAVISDIT_MEL_MULTIPLE) * JAVISDIT_MEL_MULTIPLE // JAVISDIT_MEL_PER_LATENT

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "GenerationDefaults":
        return dataclass_from_json(cls, text, "generation default")
