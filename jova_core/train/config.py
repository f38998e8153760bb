"""The training recipe: one JSON file, read into a dataclass (unknown keys are an error).

Relative paths in the file (and the default cache_dir "cache" and output_dir "output")
are relative to the file's own folder, so a recipe can sit next to its data and be run
from anywhere.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from dataclasses import dataclass, field

# A setting's annotation -> the JSON values it takes, and how a message names them.
_TYPES = {"str": (str, "a string"), "dict": (dict, "an object {...}"), "int": (int, "a whole number"),
          "float": ((int, float), "a number"), "bool": (bool, "true or false")}
# Folders and files named in a recipe, read relative to the recipe's own folder.
_PATHS = ("data_dir", "cache_dir", "output_dir", "init_checkpoint", "empty_text_embedding")


@dataclass
class TrainConfig:
    # -- data ------------------------------------------------------------------------
    # Folder of clips (MP4 with sound) and the captions file (JSON or CSV) naming them.
    data_dir: str = ""
    captions: str = "captions.json"
    # Instead of a folder: clips made on the fly by jova_core.train.synthetic, e.g.
    # {"clips": 320, "seconds": 2.0417, "fps": 24, "size": 128, "first_seed": 0, "head_motion": 0}
    # (head_motion: sway amplitude as a fraction of the frame, default 0.015).
    synthetic: dict = field(default_factory=dict)
    # Where preprocessed latents / text embeddings / mouth masks are kept (resumable).
    cache_dir: str = "cache"
    # Checkpoints, logs and the final transformer go here.
    output_dir: str = "output"

    # -- model -----------------------------------------------------------------------
    # Start from a native JoVA checkpoint (e.g. made by `init-from-wan`), or, when empty,
    # from a fresh model of `preset` with `model_overrides` (JoVAConfig fields).
    init_checkpoint: str = ""
    preset: str = "tiny"
    model_overrides: dict = field(default_factory=dict)
    # Codecs: "demo" (weight-free, CPU) or paths to the real Wan2.1 VAE / MMAudio files.
    video_codec: str = "demo"
    audio_codec: str = "demo"
    audio_vocoder: str = ""
    # Text encoder: "demo" (jova_core.text.demo.DemoTextEncoder, for the CPU demo);
    # "precomputed" (each clip's `text_embedding` file named in the captions); or
    # "umt5:<path>" (umT5-XXL as Wan2.1 uses it: a transformers folder, ComfyUI's
    # umt5_xxl_*.safetensors or Wan2.1's models_t5_umt5-xxl-enc-bf16.pth; needs transformers).
    text_encoder: str = "demo"

    # -- objective -------------------------------------------------------------------
    # Timestep shift for training sigmas (Waver trains with 3.0); independent per modality.
    shift: float = 3.0
    # Weight lambda of the mouth area in the video loss (paper: 5; 0 = plain flow loss).
    mouth_weight: float = 5.0
    audio_loss_weight: float = 1.0
    # Fraction of samples trained with the text replaced by the encoded empty prompt ""
    # (the negative prompt that classifier-free guidance contrasts with at inference).
    caption_dropout: float = 0.0
    # With text_encoder "precomputed" and caption_dropout > 0: a safetensors file holding
    # the same encoder's hidden states of the empty prompt "" (as jova_core.text.precomputed reads).
    empty_text_embedding: str = ""
    # Fraction of samples given their own first latent frame as the reference image
    # (image-to-video+audio training; needs a model with video_condition_channels). The
    # others get zero condition channels (text-to-video+audio).
    reference_probability: float = 0.0
    # Fractions of samples trained with the audio (a2v) or the video (v2a) given exactly
    # clean, as the sampler's "a2v" / "v2a" modes give it; the other modality is noised.
    clean_audio_probability: float = 0.0
    clean_video_probability: float = 0.0
    # Fraction of samples that continue a clip: their first clean_context_frames video
    # latent frames and the audio latents of the same seconds (sampling.extend's
    # context_audio_frames) are given exactly clean, at t = 0 through the model's
    # per-frame timesteps and with no loss on them, and the rest is noised as usual: what
    # `extend` with context "clean" asks of the model. Drawn on its own: with clean audio
    # it is extend's audio-driven pass (a2v with held video frames). clean_context_frames
    # must be fewer than the clips' video latent frames.
    clean_context_probability: float = 0.0
    clean_context_frames: int = 1

    # -- optimisation ----------------------------------------------------------------
    steps: int = 1000
    # Global batch (all processes together); must divide by the number of processes.
    batch_size: int = 1
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    # 0 = full fine-tune; > 0 = LoRA of this rank through peft on every linear of the blocks.
    lora_rank: int = 0
    lora_alpha: float = 0.0  # 0 = same as the rank
    gradient_checkpointing: bool = False
    # "no" (float32) or "bf16" autocast (weights and optimizer stay float32).
    mixed_precision: str = "no"
    seed: int = 0

    # -- bookkeeping -----------------------------------------------------------------
    save_every: int = 500
    log_every: int = 10
    # Continue from the newest checkpoint in output_dir when there is one.
    resume: bool = True
    # Extra safetensors metadata for the final transformer file (non-string values are
    # written as JSON), e.g. the demo's generation settings under "jova_demo".
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.type not in _TYPES:
                continue
            value = getattr(self, f.name)
            types, name = _TYPES[f.type]
            if not isinstance(value, types) or (isinstance(value, bool) and f.type != "bool"):
                raise ValueError(f"the training setting {f.name!r} must be {name}, got {json.dumps(value)}")
        if self.mixed_precision not in ("no", "bf16"):
            raise ValueError(f"mixed_precision must be 'no' or 'bf16', got {self.mixed_precision!r}")
        if self.steps < 0 or self.batch_size < 1:
            raise ValueError("steps must be >= 0 and batch_size >= 1")
        if self.mouth_weight < 0:
            raise ValueError("mouth_weight must be >= 0")
        if not 0.0 <= self.caption_dropout < 1.0:
            raise ValueError("caption_dropout must be in [0, 1)")
        if self.text_encoder == "precomputed" and self.caption_dropout > 0 and not self.empty_text_embedding:
            raise ValueError(
                "caption_dropout > 0 with text_encoder 'precomputed' needs empty_text_embedding: a safetensors file "
                "with your text encoder's hidden states of the empty prompt \"\" (the negative prompt at inference), "
                "saved like the clips' text_embedding files"
            )
        if self.empty_text_embedding and self.text_encoder != "precomputed":
            raise ValueError(f"empty_text_embedding is read only with text_encoder 'precomputed'; the "
                             f"{self.text_encoder!r} encoder encodes the empty prompt itself, so drop the field")
        if not 0.0 <= self.reference_probability <= 1.0:
            raise ValueError("reference_probability must be in [0, 1]")
        clean = (self.clean_audio_probability, self.clean_video_probability)
        if min(clean) < 0.0 or sum(clean) > 1.0:
            raise ValueError("clean_audio_probability and clean_video_probability must be >= 0 and sum to <= 1")
        if not 0.0 <= self.clean_context_probability <= 1.0:
            raise ValueError(f"clean_context_probability must be in [0, 1], got {self.clean_context_probability}")
        if self.clean_context_frames < 1:
            raise ValueError(f"clean_context_frames must be >= 1 video latent frame held clean, got "
                             f"{self.clean_context_frames}")

    @classmethod
    def from_file(cls, path: str, **overrides) -> "TrainConfig":
        """The recipe at `path` (a JSON object of settings) with `overrides`; every mistake
        in it is a one-line ValueError (FileNotFoundError when it is missing) naming it.
        Its folders, the default cache_dir and output_dir included, are relative to it."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"recipe {path} not found")
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})") from None
        except UnicodeDecodeError:
            raise ValueError(f"{path} is not a UTF-8 text file; a recipe is a JSON object of settings") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} holds a JSON {type(data).__name__}; a recipe is one object of settings, "
                             '{"data_dir": "clips", "steps": 1000, ...}')
        data.update(overrides)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in sorted(set(data) - set(fields)):
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "the settings are listed in jova_core/train/config.py"
            raise ValueError(f"{path}: unknown training setting {key!r}; {hint}")
        base = os.path.dirname(os.path.abspath(path))
        for key in _PATHS:
            value = data.get(key, fields[key].default)
            if value and isinstance(value, str):
                data[key] = os.path.join(base, value)
        for key in ("video_codec", "audio_codec", "audio_vocoder"):
            if data.get(key) and isinstance(data[key], str) and data[key] != "demo":
                data[key] = os.path.join(base, data[key])
        if str(data.get("text_encoder", "")).startswith("umt5:"):
            data["text_encoder"] = "umt5:" + os.path.join(base, data["text_encoder"][len("umt5:"):])
        try:
            return cls(**data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)
