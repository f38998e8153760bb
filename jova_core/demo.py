"""The bundled CPU demo: a tiny JoVA trained on synthetic talking-astronaut clips.

``python -m jova_core demo --out demo.mp4 [--transcript "ba ma da"] [--seed N]``

The shipped checkpoint (jova_core/assets/jova_demo.safetensors, made by
jova_core/assets/demo_recipe.json) was trained with this repository's trainer on clips
from jova_core.train.synthetic, through the weight-free demo codecs
(jova_core.codecs.demo) and the hash text encoder (jova_core.text_demo). Everything the
demo needs to generate (clip size, frame rate, captions, sampler settings) is stored in
the checkpoint's metadata under "jova_demo", so the demo and the nodes read one source.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from dataclasses import dataclass, fields
from typing import Callable

import torch

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
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
        return (steps or self.steps) * (2 if self.audio_driven_pass else 1)

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], source: str) -> "DemoSettings":
        if "jova_demo" not in metadata:
            raise ValueError(f"{source} has no 'jova_demo' settings in its metadata: it is not a demo checkpoint")
        data = json.loads(metadata["jova_demo"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class DemoClip:
    frames: torch.Tensor  # [T, H, W, 3] float 0..1
    waveform: torch.Tensor  # [1, N] float
    sample_rate: int
    fps: float
    prompt: str


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
    from .checkpoint import load_native

    return load_native(_checkpoint_path(path))


def load_demo_settings(path: str | None = None) -> DemoSettings:
    from .checkpoint import read_metadata

    path = _checkpoint_path(path)
    return DemoSettings.from_metadata(read_metadata(path), path)


def demo_prompt(transcript: str, settings: DemoSettings) -> str:
    """The JoVA prompt the demo model was trained with, for this transcript."""
    from .text import format_prompt
    from .text_demo import DemoTextEncoder

    count = len(DemoTextEncoder.transcript_syllables(transcript))
    if count > settings.max_syllables:
        raise ValueError(
            f"the transcript has {count} syllables; the demo clip ({settings.num_frames / settings.fps:.1f} s) "
            f"holds at most {settings.max_syllables}"
        )
    return format_prompt(settings.video_caption, settings.audio_caption.replace("{syllables}", str(count)), transcript)


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

    settings = load_demo_settings(checkpoint)
    save_file({"frame": synthetic_reference_frame(settings).contiguous()}, path, metadata=_reference_key(settings))


def _reference_key(settings: DemoSettings) -> dict[str, str]:
    return {
        "reference_seed": str(settings.reference_seed), "size": f"{settings.height}x{settings.width}",
        "fps": str(settings.fps), "head_motion": str(settings.head_motion),
    }


def synthetic_reference_frame(settings: DemoSettings) -> torch.Tensor:
    from .train.synthetic import make_talking_clip

    if settings.height != settings.width:
        raise ValueError("the demo's synthetic reference frames are square")
    clip = make_talking_clip(
        settings.reference_seed, seconds=1.0 / settings.fps, fps=settings.fps, size=settings.height, head_motion=settings.head_motion
    )
    return clip.frames[0]


def generate_demo(
    transcript: str = DEFAULT_TRANSCRIPT,
    seed: int = 0,
    steps: int | None = None,
    checkpoint: str | None = None,
    model=None,
    callback: Callable | None = None,
    joint_only: bool = False,
) -> DemoClip:
    """One demo clip: text -> joint sampling (then, if the model's settings ask for it,
    an audio-driven video pass) -> demo codecs. callback: see sampling.sample; its
    StepInfo counts the steps of both passes (DemoSettings.sampling_steps). joint_only
    skips the audio-driven pass (for comparisons)."""
    from .codecs.demo import DemoAudioCodec, DemoVideoCodec
    from .sampling import sample
    from .text_demo import DemoTextEncoder

    settings = load_demo_settings(checkpoint)
    if joint_only:
        settings = dataclasses.replace(settings, audio_driven_pass=False)
    model = model if model is not None else load_demo_model(checkpoint)
    config = model.config
    encoder = DemoTextEncoder(config.text_dim, config.text_len)
    prompt = demo_prompt(transcript, settings)
    video_codec, audio_codec = DemoVideoCodec(), DemoAudioCodec()
    video_shape = (1, *video_codec.latent_shape(settings.num_frames, settings.height, settings.width))
    steps = steps or settings.steps
    total = settings.sampling_steps(steps)
    common = dict(
        text=encoder(prompt),
        negative_video=encoder(""),  # the empty prompt: what caption dropout trained
        reference=video_codec.encode(reference_frame(settings)[None, None]),
        video_shape=video_shape,
        steps=steps, sampler=settings.sampler, shift=settings.shift,
        cfg_video=settings.cfg_video, cfg_audio=settings.cfg_audio, seed=seed, fps=settings.fps,
    )

    def counting_from(done: int):
        if callback is None:
            return None
        return lambda info: callback(dataclasses.replace(info, step=done + info.step, total=total))

    with torch.no_grad():
        video, audio = sample(
            model, mode="i2va", audio_shape=(1, audio_codec.latent_channels, settings.audio_latent_frames),
            callback=counting_from(0), **common,
        )
        if settings.audio_driven_pass:
            video, _ = sample(model, mode="a2v", audio_latents=audio, callback=counting_from(steps), **common)
        frames = video_codec.decode(video)[0]
        waveform = audio_codec.decode(audio)[0]
    return DemoClip(frames, waveform, audio_codec.sample_rate, settings.fps, prompt)


def clip_lip_sync(frames: torch.Tensor, waveform: torch.Tensor, sample_rate: int, fps: float):
    """The mouth module's landmark lip-sync score of one clip (SyncScore)."""
    from .mouth import audio_envelope, detect_face_landmarks, sync_score

    landmarks = detect_face_landmarks(frames, fps=fps)
    envelope = audio_envelope(waveform, sample_rate, fps, frames.shape[0])
    return sync_score(landmarks.main.mouth_aperture(), envelope)


def evaluate_lip_sync(
    num_seeds: int = 20, first_seed: int = 0, checkpoint: str | None = None, steps: int | None = None,
    progress: Callable[[int, int], None] | None = None, joint_only: bool = False,
) -> list[dict]:
    """Lip sync of demo outputs over seeds: for seed s, the transcript of the synthetic
    clip with seed 900000 + s (outside the training seeds, same distribution) and noise
    seed s. Per seed: transcript, confidence, offset_frames, peak_correlation; a seed
    whose output shows no face gets confidence None."""
    from .train.synthetic import make_talking_clip

    settings = load_demo_settings(checkpoint)
    model = load_demo_model(checkpoint)
    rows = []
    for i, seed in enumerate(range(first_seed, first_seed + num_seeds)):
        transcript = make_talking_clip(900_000 + seed, seconds=settings.num_frames / settings.fps, fps=settings.fps, size=32).transcript
        clip = generate_demo(transcript or DEFAULT_TRANSCRIPT, seed, steps, checkpoint, model=model, joint_only=joint_only)
        row = {"seed": seed, "transcript": transcript, "confidence": None, "offset_frames": None, "peak_correlation": None}
        try:
            score = clip_lip_sync(clip.frames, clip.waveform, clip.sample_rate, clip.fps)
            row.update(confidence=score.confidence, offset_frames=score.offset_frames, peak_correlation=score.peak_correlation)
        except ValueError:  # no face found in the generated frames
            pass
        rows.append(row)
        if progress is not None:
            progress(i + 1, num_seeds)
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo.mp4", help="MP4 to write (never overwritten unless --overwrite)")
    parser.add_argument("--transcript", default=DEFAULT_TRANSCRIPT,
                        help=f"syllables to speak, e.g. \"ba ma da\" (default {DEFAULT_TRANSCRIPT!r})")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (same seed, same clip)")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the demo model's setting)")
    parser.add_argument("--checkpoint", help="another demo checkpoint (default: the bundled one)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--joint-only", action="store_true",
                        help="skip the audio-driven video pass the demo model's settings ask for (for comparisons)")
    parser.add_argument("--lip-sync-seeds", type=int, metavar="N",
                        help="instead of writing a clip: generate N clips (seeds 0..N-1, held-out synthetic "
                             "transcripts) and print the landmark lip-sync score of each and their mean as JSON")


def _report_lip_sync(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    with tqdm(total=args.lip_sync_seeds, desc="lip sync", unit="clip") as bar:
        rows = evaluate_lip_sync(args.lip_sync_seeds, args.seed, args.checkpoint, args.steps,
                                 progress=lambda done, total: bar.update(done - bar.n), joint_only=args.joint_only)
    scored = [r["confidence"] for r in rows if r["confidence"] is not None]
    offsets = [abs(r["offset_frames"]) for r in rows if r["offset_frames"] is not None]
    summary = {
        "checkpoint": args.checkpoint or DEMO_CHECKPOINT,
        "joint_only": args.joint_only,
        "seeds": len(rows),
        "faces_found": len(scored),
        "mean_confidence": sum(scored) / len(scored) if scored else None,
        "mean_abs_offset_frames": sum(offsets) / len(offsets) if offsets else None,
        "clips": rows,
    }
    print(json.dumps(summary, indent=1))
    return 0


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.lip_sync_seeds:
        return _report_lip_sync(args)

    from .io import write_mp4

    if os.path.exists(args.out) and not args.overwrite:
        print(f"error: {args.out} exists; choose another --out or pass --overwrite", file=sys.stderr)
        return 1
    try:
        bar = tqdm(desc="sampling", unit="step")

        def step(info) -> None:
            bar.total = info.total  # both passes' steps, as generate_demo counts them
            bar.update(1)

        clip = generate_demo(args.transcript, args.seed, args.steps, args.checkpoint, callback=step, joint_only=args.joint_only)
        bar.close()
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    write_mp4(args.out, clip.frames, clip.fps, clip.waveform, clip.sample_rate, overwrite=args.overwrite)
    print(f"wrote {args.out}: {clip.frames.shape[0]} frames at {clip.fps:g} fps, "
          f"{clip.waveform.shape[-1] / clip.sample_rate:.2f} s of audio; prompt: {clip.prompt}")
    return 0
