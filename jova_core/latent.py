"""The JoVA LATENT: video and audio latents of one clip with its timing, as one dict.

It is a ComfyUI core LATENT dict (so LATENT sockets carry it), made and read only here:

    "samples"             video latents [B, C, F, H, W] in the model's (normalised) latent space
    "jova_audio"          audio latents [B, C, T] or [B, C, F, T]
    "jova_fps"            float, the clip's frame rate
    "jova_frames"         int, pixel frames of the clip
    "jova_width", "jova_height"  int, pixels
    "jova_video_absent"   bool, the mode generated no video (t2a): "samples" are placeholders
    "jova_audio_absent"   bool, the mode generated no audio (t2v, i2v)
    "jova_audio_sampled"  bool, "jova_audio" holds real sound (a sampler's or given), not zeros
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .fit import ClipGeometry


@dataclass
class JoVALatent:
    video: torch.Tensor  # [B, C, F, H, W]
    audio: torch.Tensor  # [B, C, T] or [B, C, F, T]
    fps: float
    frames: int  # pixel frames
    width: int
    height: int
    video_absent: bool = False
    audio_absent: bool = False
    audio_sampled: bool = False

    @classmethod
    def empty(cls, clip: ClipGeometry) -> "JoVALatent":
        """Zero latents of a clip's shapes (what the sampler starts from)."""
        return cls(torch.zeros(clip.video_shape), torch.zeros(clip.audio_shape), float(clip.fps), clip.frames,
                   clip.width, clip.height)

    @classmethod
    def from_dict(cls, latent: dict, hint: str = "make it with JoVA Empty Latent") -> "JoVALatent":
        """Read a LATENT dict; for one that is not a JoVA latent a one-line ValueError ending in `hint`."""
        if not isinstance(latent, dict) or "jova_audio" not in latent or "samples" not in latent:
            raise ValueError(f"'latent' is not a JoVA latent: {hint}")
        return cls(
            video=latent["samples"], audio=latent["jova_audio"], fps=float(latent["jova_fps"]),
            frames=int(latent["jova_frames"]), width=int(latent["jova_width"]), height=int(latent["jova_height"]),
            video_absent=bool(latent.get("jova_video_absent", False)),
            audio_absent=bool(latent.get("jova_audio_absent", False)),
            audio_sampled=bool(latent.get("jova_audio_sampled", False)),
        )

    def to_dict(self, keep: dict | None = None) -> dict:
        """The LATENT dict; entries of `keep` (the dict this one came from) that are not
        JoVA's own pass through unchanged."""
        return {
            **(keep or {}),
            "samples": self.video,
            "jova_audio": self.audio,
            "jova_fps": float(self.fps),
            "jova_frames": int(self.frames),
            "jova_width": int(self.width),
            "jova_height": int(self.height),
            "jova_video_absent": self.video_absent,
            "jova_audio_absent": self.audio_absent,
            "jova_audio_sampled": self.audio_sampled,
        }

    @property
    def seconds(self) -> float:
        return self.frames / self.fps
