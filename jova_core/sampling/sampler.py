"""The sampling loop: noise -> video and/or audio latents with per-modality guidance.

One step, for each modality being generated (see modes.py for which are):

    v_cond  = model(x_video, x_audio, t, text=text, text_audio=text_audio)
    v_neg   = model(x_video, x_audio, t, text=negative_video, text_audio=negative_audio)
    v       = v_neg + cfg * (v_cond - v_neg)        (cfg_video for video, cfg_audio for audio)
    x       = solver.step(v, x)                     (one diffusers scheduler per modality)

The unconditional pass is one model call carrying both negatives (the video branch reads
``text``, the audio branch ``text_audio``); it is skipped when no generated modality
has a guidance scale other than 1. With `batch_guidance` (the default) the conditional
and negative passes are one forward over a doubled batch [cond; negative]: the weights
are read once per step and every matmul is twice as tall, for the same velocities up to
float rounding. It falls back to two forwards when the prompts' hidden states differ in
shape or when the doubled batch does not fit in the device's memory. A modality that is
given is fed clean, at t = 0, and returned unchanged.

Part of a generated modality can be held too: `video_context` / `audio_context` are the
clean first latent frames of the clip (an earlier clip's end, an audio prefix), and the
rest is generated to continue them. `context` says how they are held:
  "clean"   fed clean, at t = 0, with the model's per-latent-frame timesteps (the rest at
            t); for models trained with clean context frames. Refused for a model that
            takes no timestep (hosting.timesteps "none", e.g. daVinci-MagiHuman).
  "noised"  the fallback for models never trained so (or that take no per-frame time):
            before every model call the context frames are replaced by the context noised
            to the current sigma with their own initial noise, all frames at t (as the
            reference frame of ``modes.hold_first_frame``).
Either way the returned latents begin with the context exactly.

The model is any hosted model (jova_core.model.hosted): the sampler reads what it needs
(geometry, reference kind, modes, one or two text streams) from ``model.hosting`` and calls
it with the same keywords whatever it is; a model without timesteps ignores them.
The video guidance scale may change with the noise level (a GuidanceSchedule, e.g.
daVinci-MagiHuman's 5 then 2 at t <= 500).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..defaults import GuidanceSchedule
from .modes import ABSENT, GENERATE, GIVEN, first_frame_latent, get_mode, hold_first_frame, reference_condition
from .schedule import add_noise, integer_timestep, predicted_x0, sampling_sigmas, timesteps_from_sigma
from .seed import seeded_generator
from .solvers import make_solver

log = logging.getLogger(__name__)

@dataclass
class StepInfo:
    """What the callback sees after each step (tensors on the model's device, float32)."""

    step: int  # index of the step just taken, 0 .. total-1
    total: int
    sigma: float  # the noise level this step denoised from
    video: torch.Tensor | None  # latents after the step (None when absent)
    audio: torch.Tensor | None
    video_x0: torch.Tensor | None  # the guided clean prediction at `sigma`, for previews
    audio_x0: torch.Tensor | None


@torch.no_grad()
def sample(
    model,
    *,
    text: torch.Tensor,
    text_audio: torch.Tensor | None = None,
    negative_video: torch.Tensor | None = None,
    negative_audio: torch.Tensor | None = None,
    mode: str = "t2va",
    video_shape: tuple[int, ...] | None = None,
    audio_shape: tuple[int, ...] | None = None,
    video_latents: torch.Tensor | None = None,
    audio_latents: torch.Tensor | None = None,
    reference: torch.Tensor | None = None,
    steps: int = 30,
    sampler: str = "unipc",
    shift: float = 5.0,
    sigma_max: float = 1.0,
    cfg_video: float | GuidanceSchedule = 5.0,
    cfg_audio: float = 4.0,
    seed: int = 0,
    fps: float | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    video_context: torch.Tensor | None = None,
    audio_context: torch.Tensor | None = None,
    context: str = "clean",
    batch_guidance: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Generate video and/or audio latents with a hosted model (JoVA, daVinci-MagiHuman).

    model: a hosted model (jova_core.model.hosted: a JoVATransformer or a
        MagiHumanTransformer); runs on the device of its parameters.
    text: [B or 1, L, text_dim] prompt hidden states, read by the video branch (and by the
        audio branch unless `text_audio` is given).
    negative_video / negative_audio: hidden states of the negative prompts of each
        branch (e.g. the encoded empty prompt). Either defaults to the other; at least one
        is needed when a generated modality has cfg != 1.
    mode: "t2va", "i2va", "a2v", "v2a", "t2v", "i2v" or "t2a" (table in modes.py).
    video_shape: (B, C, F, H, W) of the video latents to generate.
    audio_shape: (B, C, T) or (B, C, F, T) of the audio latents to generate.
    video_latents / audio_latents: clean latents of a given modality ("v2a" / "a2v").
    reference: the reference image's video latent [B or 1, C, 1, H, W] ("i2va", "i2v",
        optionally "a2v").
    steps, sampler ("euler" | "unipc" | "renoise", the distilled models' step), shift: the solver, its number of model
        evaluations and the sigma shift (sigma' = shift*s / (1 + (shift-1)*s)).
    sigma_max: where the unshifted schedule starts (1; daVinci-MagiHuman 0.999, its
        GenerationDefaults.sigma_max; schedule.sampling_sigmas).
    cfg_video, cfg_audio: classifier-free guidance scale of each modality (1 = none);
        cfg_video may be a GuidanceSchedule (a scale that changes at an integer timestep
        int(1000 sigma)).
    seed: 0 .. 2**64 - 1; noise comes from a CPU torch.Generator seeded with it
        (seed.py; the video noise drawn first, then the audio noise, each only when
        generated), so a seed gives the same noise on every device and bit-identical
        results on CPU.
    fps: video frame rate, for the time-aligned audio RoPE.
    callback: called with a StepInfo after every step (progress, previews); raising
        from it stops sampling (interruption) and the exception propagates.
    video_context: [B or 1, C, k, H, W] clean latents of the first k video latent frames
        to hold (a generated video only); audio_context: [B or 1, C, (F,) k] the same for
        the first k audio latent frames. context: "clean" or "noised" (module docstring).
    batch_guidance: one forward over [cond; negative] per step instead of two (see above).
    Returns (video latents, audio latents), float32 on the model's device: None for an
    absent modality, the given latents unchanged for a given one.
    """
    # A plain scale is the schedule that never changes: one form for the checks and the steps.
    video_guidance = cfg_video if isinstance(cfg_video, GuidanceSchedule) else GuidanceSchedule(cfg_video, cfg_video)
    _check_settings(steps, video_guidance, cfg_audio, fps)
    setup = _Setup(model, mode, video_shape, audio_shape, video_latents, audio_latents, reference)
    video_context = setup.context("video", video_context, context)
    audio_context = setup.context("audio", audio_context, context)
    if setup.video_role == GENERATE and setup.audio_role == GENERATE and setup.video_shape[0] != setup.audio_shape[0]:
        raise ValueError(f"video batch {setup.video_shape[0]} and audio batch {setup.audio_shape[0]} differ")
    batch = (setup.video_shape or setup.audio_shape)[0]
    for name, hidden in (("text", text), ("text_audio", text_audio), ("negative_video", negative_video),
                         ("negative_audio", negative_audio)):
        if hidden is not None and hidden.dim() == 3 and hidden.shape[0] not in (1, batch):
            raise ValueError(
                f"{name} holds {hidden.shape[0]} prompts but the latent batch is {batch}: "
                "give one prompt, or one per latent (the latent's batch size)"
            )
    device = setup.device

    if not setup.hosting.separate_audio_text and (
        text_audio is not None or (negative_audio is not None and negative_video is not None
                                   and not torch.equal(negative_audio, negative_video))
    ):
        raise ValueError(f"{setup.hosting.name} reads one text for video and audio: give one prompt and one "
                         "negative (no separate audio text or negative_audio)")
    video_guided = video_guidance.early != 1 or video_guidance.late != 1
    guided = (setup.video_role == GENERATE and video_guided) or (setup.audio_role == GENERATE and cfg_audio != 1)
    if guided and negative_video is None and negative_audio is None:
        raise ValueError(
            "classifier-free guidance (cfg_video/cfg_audio != 1) needs negative_video and/or "
            "negative_audio text hidden states (e.g. the encoded empty prompt); or set both cfg to 1"
        )
    cond = dict(text=text.to(device), text_audio=None if text_audio is None else text_audio.to(device))
    uncond = None
    if guided:
        neg_video = negative_video if negative_video is not None else negative_audio
        neg_audio = negative_audio if negative_audio is not None else negative_video
        uncond = dict(text=neg_video.to(device), text_audio=neg_audio.to(device))

    # Noise on the CPU from one generator, so the seed means the same on every device.
    generator = seeded_generator(seed)
    video = audio = None
    video_noise = audio_noise = None
    if setup.video_role == GENERATE:
        video_noise = torch.randn(setup.video_shape, generator=generator, dtype=torch.float32).to(device)
        video = video_noise
    elif setup.video_role == GIVEN:
        video = setup.video_given
    if setup.audio_role == GENERATE:
        audio_noise = torch.randn(setup.audio_shape, generator=generator, dtype=torch.float32).to(device)
        audio = audio_noise
    elif setup.audio_role == GIVEN:
        audio = setup.audio_given

    base_sigmas = sampling_sigmas(steps, shift, sigma_max)
    video_solver = make_solver(sampler, base_sigmas, device, generator) if setup.video_role == GENERATE else None
    audio_solver = make_solver(sampler, base_sigmas, device, generator) if setup.audio_role == GENERATE else None
    solver = video_solver or audio_solver
    sigmas = solver.sigmas.tolist()  # [steps + 1], as the solver steps them (ends at 0)
    clean = torch.zeros((), device=device)
    passes = _GuidancePasses(model, cond, uncond, batch_guidance)

    for i in range(steps):
        sigma = sigmas[i]
        t = timesteps_from_sigma(sigma).to(device)
        if setup.held_first is not None:
            video = hold_first_frame(video, setup.held_first, video_noise[:, :, :1], setup.held_sigma(sigma))
        t_video = t if setup.video_role == GENERATE else clean
        t_audio = t if setup.audio_role == GENERATE else clean
        if video_context is not None:
            video, t_video = hold_context(video, video_context, video_noise, sigma, t, 2, context)
        if audio_context is not None:
            audio, t_audio = hold_context(audio, audio_context, audio_noise, sigma, t, -1, context)
        inputs = dict(video=video, audio=audio, t_video=t_video, t_audio=t_audio, reference=setup.condition, fps=fps)
        if uncond is None:
            v_video, v_audio = model(**inputs, **cond)
        else:
            (v_video, v_audio), (n_video, n_audio) = passes(inputs)
            v_video = _guide(v_video, n_video, video_guidance.at(integer_timestep(sigma)))
            v_audio = _guide(v_audio, n_audio, cfg_audio)

        video_x0 = audio_x0 = None
        if video_solver is not None:
            video_x0 = predicted_x0(video, v_video.float(), sigma)
            video = video_solver.step(v_video.float(), video_solver.timesteps[i], video).prev_sample
        if audio_solver is not None:
            audio_x0 = predicted_x0(audio, v_audio.float(), sigma)
            audio = audio_solver.step(v_audio.float(), audio_solver.timesteps[i], audio).prev_sample
        if callback is not None:
            callback(StepInfo(i, steps, sigma, video, audio, video_x0, audio_x0))

    if setup.held_first is not None:
        video = hold_first_frame(video, setup.held_first, video_noise[:, :, :1], 0.0)
    if video_context is not None:
        video = _with_prefix(video, video_context, 2)
    if audio_context is not None:
        audio = _with_prefix(audio, audio_context, -1)
    return video, audio


CONTEXT_MODES = ("clean", "noised")


def hold_context(x: torch.Tensor, prefix: torch.Tensor, noise: torch.Tensor, sigma: float, t: torch.Tensor,
                 dim: int, how: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents `x` with their first frames (along `dim`) held to the clean `prefix`, and
    the model's timestep for them: "clean" -> the prefix itself, t per frame [1, frames]
    (0 on the prefix); "noised" -> the prefix noised to `sigma` with its frames of
    `noise`, the scalar t."""
    k = prefix.shape[dim]
    if how == "noised":
        return _with_prefix(x, add_noise(prefix, noise.narrow(dim, 0, k), sigma), dim), t
    per_frame = t.reshape(1, 1).repeat(1, x.shape[dim])
    per_frame[:, :k] = 0
    return _with_prefix(x, prefix, dim), per_frame


def _with_prefix(x: torch.Tensor, prefix: torch.Tensor, dim: int) -> torch.Tensor:
    k = prefix.shape[dim]
    return torch.cat([prefix.to(x.dtype), x.narrow(dim, k, x.shape[dim] - k)], dim=dim)


class _GuidancePasses:
    """The conditional and negative forwards of a guided step: one batched forward when
    the two prompts stack (and memory allows), else two."""

    def __init__(self, model, cond: dict, uncond: dict | None, batched: bool):
        self.model, self.cond, self.uncond = model, cond, uncond
        self.texts = self._stacked_texts() if batched and uncond is not None else None

    def _stacked_texts(self) -> dict | None:
        """{text, text_audio}: (cond, negative) of equal shapes, or None when they cannot be."""
        config = getattr(self.model, "config", None)
        pairs = {}
        for key in ("text", "text_audio"):
            cond = self.cond[key] if self.cond[key] is not None else self.cond["text"]  # what the model reads
            neg = self.uncond[key]
            if cond.shape[2:] != neg.shape[2:]:
                return None
            if cond.shape[1] != neg.shape[1]:
                # Cross-attention text is zero-padded to text_len by the model anyway, so padding
                # the shorter prompt to the longer one changes nothing; joint text attends to
                # every token, so prompts of different lengths there are run separately.
                length = max(cond.shape[1], neg.shape[1])
                if getattr(config, "text_attention", None) != "cross" or length > config.text_len:
                    return None
                cond, neg = (F.pad(t, (0, 0, 0, length - t.shape[1])) for t in (cond, neg))
            pairs[key] = (cond, neg)
        return pairs

    def __call__(self, inputs: dict):
        """((cond video, cond audio), (negative video, negative audio)) velocities."""
        if self.texts is not None:
            try:
                return self._batched(inputs)
            except torch.OutOfMemoryError:
                self.texts = None
                log.warning("batched guidance does not fit in memory; running the two passes one after the other")
        return self.model(**inputs, **self.cond), self.model(**inputs, **self.uncond)

    def _batched(self, inputs: dict):
        latents = inputs["video"] if inputs["video"] is not None else inputs["audio"]
        batch = latents.shape[0]
        doubled = dict(inputs)
        for key in ("video", "audio", "reference"):
            if inputs[key] is not None:
                doubled[key] = torch.cat([inputs[key], inputs[key]])
        for key, (cond, neg) in self.texts.items():
            doubled[key] = torch.cat([cond.expand(batch, -1, -1), neg.expand(batch, -1, -1)])
        out = self.model(**doubled)
        return tuple(None if v is None else v[:batch] for v in out), tuple(None if v is None else v[batch:] for v in out)


def _check_settings(steps, video_guidance: GuidanceSchedule, cfg_audio, fps) -> None:
    if int(steps) < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    scales = [("cfg_audio", cfg_audio), ("cfg_video", video_guidance.early), ("cfg_video (late)", video_guidance.late)]
    for name, scale in scales:
        if not math.isfinite(scale):
            raise ValueError(f"{name} is {scale}; set a finite guidance scale (1 = none, typically 3 to 7)")
    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be the clip's positive frame rate (e.g. 16), got {fps}")


def _guide(cond: torch.Tensor | None, uncond: torch.Tensor | None, scale: float) -> torch.Tensor | None:
    if cond is None:
        return None
    cond, uncond = cond.float(), uncond.float()
    return uncond + scale * (cond - uncond)


class _Setup:
    """The checked inputs of one sample() call: roles, shapes, device, reference handling."""

    def __init__(self, model, mode_name, video_shape, audio_shape, video_latents, audio_latents, reference):
        mode = get_mode(mode_name)
        self.video_role, self.audio_role = mode.video, mode.audio
        params = list(model.parameters()) if hasattr(model, "parameters") else []
        self.device = params[0].device if params else torch.device("cpu")
        hosting = getattr(model, "hosting", None)
        if hosting is None:
            raise ValueError("the model needs `hosting` (jova_core.model.hosted): load it with the JoVA Model Loader")
        hosting.check_mode(mode_name)
        self.hosting, self.config = hosting, getattr(model, "config", None)

        self.video_shape, self.video_given = self._modality(
            mode_name, "video", mode.video, video_shape, video_latents, (5,), "(B, C, F, H, W)"
        )
        self.audio_shape, self.audio_given = self._modality(
            mode_name, "audio", mode.audio, audio_shape, audio_latents, (3, 4), "(B, C, T) or (B, C, F, T)"
        )

        self.condition = None  # the model's reference channels, when it has them
        self.held_first = None  # the reference latent frame to pin, when it has not
        channels = hosting.reference == "condition-channels"
        self.held_clean = hosting.reference == "clean-first-frame"
        extra = self.config.video_condition_channels if channels else 0
        if reference is None:
            if mode.reference == "required":
                raise ValueError(f"mode {mode_name!r} needs `reference`: the reference image's video latent")
        elif mode.reference == "refused":
            hint = " (use 'i2va' or 'i2v' for image-conditioned generation)" if mode.video == GENERATE else ""
            raise ValueError(f"mode {mode_name!r} takes no reference image{hint}")
        elif extra:
            self.condition = reference_condition(
                reference.to(self.device, torch.float32), self.video_shape, extra, self.config.reference_frames
            )
        else:
            self.held_first = first_frame_latent(reference.to(self.device, torch.float32), self.video_shape)
        if extra and self.condition is None and self.video_role != ABSENT:
            # No reference: the model's condition channels are zeros (the model's default);
            # spelled out so cond and uncond passes see the same input.
            self.condition = torch.zeros(
                self.video_shape[0], extra, *self.video_shape[2:], device=self.device, dtype=torch.float32
            )

    def held_sigma(self, sigma: float) -> float:
        """The noise level the pinned first frame carries at a step's `sigma`."""
        return 0.0 if self.held_clean else sigma

    def context(self, name: str, prefix: torch.Tensor | None, how: str) -> torch.Tensor | None:
        """The checked clean prefix of a generated modality, on the device, batch-expanded."""
        if prefix is None:
            return None
        if how not in CONTEXT_MODES:
            raise ValueError(f"context must be one of {list(CONTEXT_MODES)}, got {how!r}")
        if how == "clean" and self.hosting.timesteps == "none":
            raise ValueError(f"{self.hosting.name} takes no timesteps, so it cannot be told which frames are clean: "
                             "hold the context with context \"noised\"")
        role = self.video_role if name == "video" else self.audio_role
        if role != GENERATE:
            raise ValueError(f"{name}_context holds the start of a generated {name}; this mode does not generate {name}")
        if name == "video" and self.held_first is not None:
            raise ValueError("give either a reference image or video_context to a model without reference channels: "
                             "both pin the first video frame")
        shape = self.video_shape if name == "video" else self.audio_shape
        dim = 2 if name == "video" else len(shape) - 1
        fits = prefix.dim() == len(shape) and prefix.shape[0] in (1, shape[0]) and 1 <= prefix.shape[dim] < shape[dim]
        if not fits or any(prefix.shape[i] != shape[i] for i in range(1, len(shape)) if i != dim):
            raise ValueError(f"{name}_context must be the first k < {shape[dim]} latent frames of the {name} "
                             f"{list(shape)} (same channels and size), got {list(prefix.shape)}")
        return prefix.to(self.device, torch.float32).expand(shape[0], *prefix.shape[1:])

    def _modality(self, mode_name, name, role, shape, latents, ranks, layout):
        if role == ABSENT:
            if shape is not None or latents is not None:
                raise ValueError(f"mode {mode_name!r} has no {name}; do not pass {name}_shape / {name}_latents")
            return None, None
        if role == GIVEN:
            if latents is None:
                raise ValueError(f"mode {mode_name!r} needs {name}_latents (the clean {name} latents to hold)")
            if shape is not None and tuple(shape) != tuple(latents.shape):
                raise ValueError(f"{name}_shape {tuple(shape)} disagrees with {name}_latents {tuple(latents.shape)}")
            shape, given = tuple(latents.shape), latents.to(self.device, torch.float32)
        else:
            if latents is not None:
                raise ValueError(
                    f"mode {mode_name!r} generates {name}; {name}_latents are only taken by "
                    f"{'v2a' if name == 'video' else 'a2v'}"
                )
            if shape is None:
                raise ValueError(f"mode {mode_name!r} needs {name}_shape {layout}")
            shape, given = tuple(int(n) for n in shape), None
        if len(shape) not in ranks:
            raise ValueError(f"{name} latents must be {layout}, got {shape}")
        geometry = self.hosting.geometry
        what = f"{name}_latents" if role == GIVEN else f"{name} latents ({name}_shape)"
        check = geometry.check_video_latents if name == "video" else geometry.check_audio_latents
        check(shape, what)
        return shape, given
