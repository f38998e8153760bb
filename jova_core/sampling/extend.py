"""Long clips: extend a JoVA latent chunk by chunk, video and sound together.

Each chunk is one ``sample`` call over a clip the model can take (`chunk_frames` video
latent frames). Its first `overlap` video latent frames are the last ones of the clip so
far, and its first audio latent frames are the clip's audio from the same moment on;
both are held (``sample``'s video_context / audio_context), so motion, voice and sound
continue across the seam. The chunk's audio starts at the audio latent frame nearest the
context's first video frame, so the temporally aligned RoPE lines the two up as in the
original clip (to within half an audio latent frame, or half an audio patch for models
that patch audio in time, e.g. converted JavisDiT++: its 2-D AudioLDM2 latents are held on
every frequency bin; at least one audio latent frame is held, which with a one-frame
overlap can shift the audio by up to one latent frame).

    clip so far   video |==========|vvv|        audio |~~~~~~~~~~~~|aaaa|
    chunk                      |vvv|------|                    |aaaa|------|
    result        video |==========|vvv|------| audio |~~~~~~~~~~~~|aaaa|------|

The overlap is shared, not duplicated: the held frames come back exactly as they were
and only the chunk's new frames are appended, so the long latent is one continuous
latent that the codecs decode in one go (no seam in the decoded sound: the audio decoder
sees no cut, so nothing needs a crossfade).

Every chunk's steps count on one progress bar (StepInfo.step / total over all chunks);
a callback that raises stops the loop (interruption).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch

from ..defaults import GuidanceSchedule
from ..latent import JoVALatent
from .sampler import StepInfo, sample
from .seed import MAX_SEED, check_seed


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Where one chunk sits in the long latent (all in latent frames of the result)."""

    video_start: int  # first video latent frame (the first held one)
    video_frames: int  # video latent frames of the chunk, held ones included
    video_held: int  # of which held (the overlap); the seam is at video_start + video_held
    audio_start: int
    audio_frames: int
    audio_held: int


def plan_chunks(video_frames: int, audio_frames: int, target_video_frames: int, fps: float, temporal_stride: int,
                audio_rate: float, audio_patch: int, chunk_frames: int, overlap: int) -> list[Chunk]:
    """The chunks that take a clip of `video_frames` / `audio_frames` latent frames to
    `target_video_frames` video latent frames. The audio ends where the whole clip's
    would (as the audio encoder counts the final length)."""
    chunks = []
    while video_frames < target_video_frames:
        start = video_frames - overlap
        length = min(chunk_frames, target_video_frames - start)
        seconds_at_start = start * temporal_stride / fps
        # On a whole audio patch (the model takes whole patches; the held audio is cut into
        # the same patches as when it was made), the nearest one.
        audio_start = round(seconds_at_start * audio_rate / audio_patch) * audio_patch
        if audio_start > audio_frames or audio_frames == 0:
            raise ValueError(f"the audio ({audio_frames} latent frames) does not cover the clip's video: "
                             "give a latent whose sound is as long as its video (JoVA Empty Latent makes them so)")
        # At least one audio latent frame is held, even where the held video spans less.
        audio_start = min(audio_start, (audio_frames - 1) // audio_patch * audio_patch)
        audio_end = clip_audio_frames(start + length, fps, temporal_stride, audio_rate, audio_patch)
        # A clip whose sound runs past its video (JavisDiT++ rounds it up) gets at least one patch more.
        audio_end = max(audio_end, (audio_frames // audio_patch + 1) * audio_patch)
        chunks.append(Chunk(start, length, overlap, audio_start, audio_end - audio_start, audio_frames - audio_start))
        video_frames, audio_frames = start + length, audio_end
    return chunks


def clip_audio_frames(video_frames: int, fps: float, temporal_stride: int, audio_rate: float, audio_patch: int) -> int:
    """Audio latent frames of the seconds that `video_frames` video latent frames span from
    a clip's start (their (video_frames - 1) * temporal_stride + 1 pixel frames), as the
    audio encoder counts them: whole latent frames, cut to whole patches."""
    pixels = (video_frames - 1) * temporal_stride + 1
    return math.floor(pixels / fps * audio_rate + 1e-6) // audio_patch * audio_patch


def context_audio_frames(video_held: int, fps: float, temporal_stride: int, audio_rate: float,
                         audio_patch: int) -> int:
    """Audio latent frames held with the first `video_held` video latent frames of a clip:
    those of the same seconds (the audio that plan_chunks holds when a chunk starts at the
    clip's start; later chunks hold within one latent frame of it, as their audio start is
    rounded to the nearest frame), at least one. The trainer's clean_context_probability
    holds these, so the model learns what ``extend`` with context "clean" asks of it."""
    return max(1, clip_audio_frames(video_held, fps, temporal_stride, audio_rate, audio_patch))


def plan_extension(geometry, latent: JoVALatent, seconds: float, overlap: int = 1,
                   chunk_frames: int | None = None) -> list[Chunk]:
    """The chunks ``extend`` takes `latent` to `seconds` with (checked; one-line errors)."""
    have = latent.video.shape[2]
    chunk_frames = have if chunk_frames is None else int(chunk_frames)
    if not 1 <= overlap < chunk_frames:
        raise ValueError(f"overlap must be 1 .. {chunk_frames - 1} latent frames (fewer than a chunk's "
                         f"{chunk_frames}), got {overlap}")
    if overlap > have:
        raise ValueError(f"overlap {overlap} is longer than the clip's {have} latent frames; lower it")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"seconds must be a positive duration, got {seconds}")
    target = geometry.video.latent_frames(max(1, round(seconds * latent.fps)))
    return plan_chunks(have, latent.audio.shape[-1], target, latent.fps, geometry.video.temporal_stride,
                       geometry.audio.latent_rate, geometry.audio_patch[1], chunk_frames, overlap)


def extend(
    model,
    latent: JoVALatent,
    seconds: float,
    *,
    text: torch.Tensor,
    text_audio: torch.Tensor | None = None,
    negative_video: torch.Tensor | None = None,
    negative_audio: torch.Tensor | None = None,
    reference: torch.Tensor | None = None,
    overlap: int = 1,
    chunk_frames: int | None = None,
    steps: int = 30,
    sampler: str = "unipc",
    shift: float = 5.0,
    sigma_max: float = 1.0,
    cfg_video: float | GuidanceSchedule = 5.0,
    cfg_audio: float = 4.0,
    seed: int = 0,
    context: str = "noised",
    audio_driven_pass: bool = False,
    callback: Callable[[StepInfo], None] | None = None,
    batch_guidance: bool = True,
) -> JoVALatent:
    """`latent` continued to `seconds` in all (a new JoVALatent; `latent` is untouched).

    overlap: video latent frames of the clip each chunk continues from (held), >= 1.
    chunk_frames: video latent frames per chunk, held ones included (default: the clip's
        own, i.e. chunks as long as the clip given; keep it to what the model was trained on).
    reference: the reference image's video latent (i2va) for models with reference
        channels; it conditions every chunk (identity). Models without them take none
        here: the held frames already fix the start of each chunk.
    context: how the held frames are held ("noised": the fallback any model takes;
        "clean": t = 0 per frame, for models trained with clean context, as the recipe's
        clean_context_probability trains them). See sampler.py.
    audio_driven_pass: after each chunk's joint pass, regenerate its video with its audio
        held clean ("a2v"), as the demo model's settings ask.
    seed: chunk i draws its noise with seed + 1 + i (the clip given was made with `seed`).
        The other arguments are ``sample``'s.
    """
    if latent.video_absent or latent.audio_absent or not latent.audio_sampled:
        raise ValueError("extend continues clips with both video and sound: give the latent of a JoVA Sampler "
                         "that generated both (t2va, i2va, a2v or v2a)")
    check_seed(seed)
    geometry = model.hosting.geometry
    chunks = plan_extension(geometry, latent, seconds, overlap, chunk_frames)
    passes = 2 if audio_driven_pass else 1
    total = len(chunks) * steps * passes
    mode = "i2va" if reference is not None else "t2va"
    if reference is not None and model.hosting.reference != "condition-channels":
        raise ValueError("this model has no reference channels; extend it without a reference "
                         "(the held frames carry the picture)")

    video, audio = latent.video.float(), latent.audio.float()
    common = dict(text=text, text_audio=text_audio, negative_video=negative_video, negative_audio=negative_audio,
                  reference=reference, steps=steps, sampler=sampler, shift=shift, sigma_max=sigma_max,
                  cfg_video=cfg_video, cfg_audio=cfg_audio, fps=latent.fps, context=context, batch_guidance=batch_guidance)
    for i, chunk in enumerate(chunks):
        video_context = video[:, :, chunk.video_start : chunk.video_start + chunk.video_held]
        audio_context = audio[..., chunk.audio_start : chunk.audio_start + chunk.audio_held]
        video_shape = (*video.shape[:2], chunk.video_frames, *video.shape[3:])
        audio_shape = (*audio.shape[:-1], chunk.audio_frames)
        chunk_seed = (seed + 1 + i) % (MAX_SEED + 1)
        done = i * steps * passes
        new_video, new_audio = sample(
            model, mode=mode, video_shape=video_shape, audio_shape=audio_shape, video_context=video_context,
            audio_context=audio_context, seed=chunk_seed, callback=_counting(callback, done, total), **common,
        )
        if audio_driven_pass:
            new_video, _ = sample(
                model, mode="a2v", audio_latents=new_audio, video_shape=video_shape, video_context=video_context,
                seed=chunk_seed, callback=_counting(callback, done + steps, total), **common,
            )
        video = torch.cat([video, new_video[:, :, chunk.video_held :].to(video.device)], dim=2)
        audio = torch.cat([audio, new_audio[..., chunk.audio_held :].to(audio.device)], dim=-1)
    return dataclasses.replace(latent, video=video, audio=audio, frames=geometry.video.num_frames(video.shape[2]))


def _counting(callback, done: int, total: int):
    """The callback with steps counted over all chunks."""
    if callback is None:
        return None
    return lambda info: callback(dataclasses.replace(info, step=done + info.step, total=total))
