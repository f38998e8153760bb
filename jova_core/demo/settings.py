"""The demo model's settings and files: the bundled checkpoint, how it generates
(DemoSettings, stored in the checkpoint's metadata under "jova_demo" so the demo and the
nodes read one source) and its reference image."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields

import torch

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
DEMO_CHECKPOINT = os.path.join(ASSETS, "jova_demo.safetensors")
# The shipped checkpoint's reference frame, so that running the demo needs neither
# scikit-image nor mediapipe (which the synthetic clip generator uses).
DEMO_REFERENCE = os.path.join(ASSETS, "demo_reference.safetensors")
DEFAULT_TRANSCRIPT = "ba ma da"


@dataclass
class DemoSettings:
    """How the demo model was trained to generate (stored in its metadata as JSON)."""

    height: int = 128
    width: int = 128
    fps: float = 24.0
    num_frames: int = 49
    audio_latent_frames: int = 63
    video_caption: str = ""
    # "{syllables}" is replaced by the transcript's syllable count.
    audio_caption: str = ""
    steps: int = 20
    sampler: str = "unipc"
    shift: float = 3.0
    cfg_video: float = 3.0
    cfg_audio: float = 3.0
    max_syllables: int = 10
    # The reference image: frame 0 of jova_core.train.synthetic's clip with this seed
    # (mouth closed); the model was trained to animate its first frame ("i2va").
    reference_seed: int = 0
    # Head sway of the synthetic clips the model was trained on (make_talking_clip's
    # head_motion); the reference frame is made with the same value.
    head_motion: float = 0.015
    # After the joint pass, regenerate the video with the generated audio held clean
    # ("a2v", same seed and steps): the mouth then follows the sound the model made,
    # which a small model's joint pass does not manage (jova_core/assets/README.md).
    audio_driven_pass: bool = False

    def sampling_steps(self, steps: int | None = None) -> int:
        """Model passes x solver steps: what a progress bar counts."""
        return (self.steps if steps is None else steps) * (2 if self.audio_driven_pass else 1)

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], source: str) -> "DemoSettings":
        if "jova_demo" not in metadata:
            raise ValueError(f"{source} has no 'jova_demo' settings in its metadata: it is not a demo checkpoint")
        data = json.loads(metadata["jova_demo"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _checkpoint_path(path: str | None) -> str:
    path = path or DEMO_CHECKPOINT
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"demo checkpoint {path} not found; the repository ships it under jova_core/assets/ "
            "(recreate it with the commands in jova_core/assets/README.md)"
        )
    return path


def load_demo_model(path: str | None = None):
    """The demo transformer (float32, CPU, eval)."""
    from ..checkpoint import load_native

    return load_native(_checkpoint_path(path))


def load_demo_settings(path: str | None = None) -> DemoSettings:
    from ..checkpoint import read_metadata

    path = _checkpoint_path(path)
    return DemoSettings.from_metadata(read_metadata(path), path)


def reference_frame(settings: DemoSettings) -> torch.Tensor:
    """The demo's reference image [H, W, 3] 0..1 (see DemoSettings.reference_seed).

    The shipped frame is read from DEMO_REFERENCE; a checkpoint trained with other
    settings gets its frame from the synthetic generator (needs scikit-image + mediapipe).
    """
    from safetensors import safe_open

    with safe_open(DEMO_REFERENCE, framework="pt") as f:
        if f.metadata() == _reference_key(settings):
            return f.get_tensor("frame")
    return synthetic_reference_frame(settings)


def save_reference_frame(checkpoint: str | None = None, path: str = DEMO_REFERENCE) -> None:
    """Write the checkpoint's reference frame (made by the synthetic generator) where
    reference_frame() looks for it, so the demo runs without scikit-image or mediapipe."""
    from safetensors.torch import save_file

    from ..files import atomic_output

    settings = load_demo_settings(checkpoint)
    with atomic_output(path, overwrite=True) as partial:
        save_file({"frame": synthetic_reference_frame(settings).contiguous()}, partial, metadata=_reference_key(settings))


def _reference_key(settings: DemoSettings) -> dict[str, str]:
    return {
        "reference_seed": str(settings.reference_seed), "size": f"{settings.height}x{settings.width}",
        "fps": str(settings.fps), "head_motion": str(settings.head_motion),
    }


def synthetic_reference_frame(settings: DemoSettings) -> torch.Tensor:
    from ..train.synthetic import make_talking_clip

    if settings.height != settings.width:
        raise ValueError("the demo's synthetic reference frames are square")
    clip = make_talking_clip(
        settings.reference_seed, seconds=1.0 / settings.fps, fps=settings.fps, size=settings.height, head_motion=settings.head_motion
    )
    return clip.frames[0]


