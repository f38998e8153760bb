"""JoVA's training objective: flow matching on each modality, mouth-weighted on video.

Each modality gets its OWN noise level per sample (sigma_video, sigma_audio drawn
independently, then shifted), so the model learns every combination, including one
modality nearly clean while the other is noisy — what audio-to-video and video-to-audio
generation ask of it at inference. A recipe can also hold one modality exactly clean
(sigma 0, no loss on it) for a fraction of the samples: the a2v / v2a conditioning of
the sampler's modes, trained directly, which is how a small model learns to make the
mouth follow the sound (jova_core/assets/README.md). Or it can hold the start of a
clip clean (its first video latent frames and the audio of the same seconds, t = 0 per
frame, no loss on them) while the rest is noised: continuing a clip, as ``extend`` asks
with context "clean". The schedule (noising, target, timestep scale) comes
from jova_core.sampling.schedule, the mouth weighting from jova_core.mouth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..mouth.loss import mouth_weighted_flow_loss
from ..sampling.extend import context_audio_frames
from ..sampling.modes import reference_condition
from ..sampling.schedule import add_noise, shift_sigma, timesteps_from_sigma, velocity_target


@dataclass
class FlowNoise:
    """The random draw of one training step: noise and noise levels for both modalities."""

    video: torch.Tensor  # like the video latents
    audio: torch.Tensor  # like the audio latents
    sigma_video: torch.Tensor  # [B], already shifted
    sigma_audio: torch.Tensor  # [B]
    drop_text: torch.Tensor  # [B] bool: train this sample with the empty prompt instead of its own
    use_reference: torch.Tensor  # [B] bool: condition this sample on its first latent frame
    clean_video: torch.Tensor  # [B] bool: video given clean (sigma 0, no video loss): v2a
    clean_audio: torch.Tensor  # [B] bool: audio given clean (sigma 0, no audio loss): a2v
    # [B] long: video latent frames held clean at the start of each sample, with the audio of
    # the same seconds (t = 0 on them, no loss on them); 0 = none. Continuing a clip: extend.
    context_frames: torch.Tensor


def draw_noise(
    batch: dict[str, torch.Tensor],
    seeds: list[int],
    shift: float,
    caption_dropout: float = 0.0,
    reference_probability: float = 0.0,
    clean_audio_probability: float = 0.0,
    clean_video_probability: float = 0.0,
    clean_context_probability: float = 0.0,
    clean_context_frames: int = 1,
) -> FlowNoise:
    """Noise for each sample from its own seed, so a sample gets the same draw whichever
    process (and whichever position in a per-process batch) it lands on. At most one
    modality of a sample is held clean (the two probabilities must sum to <= 1). Holding
    the first `clean_context_frames` video latent frames (and their audio) is drawn on its
    own, after the rest, so it leaves every other draw as it was; with clean audio it is
    what extend's audio-driven pass asks (a2v with held video frames)."""
    if clean_audio_probability + clean_video_probability > 1.0:
        raise ValueError("clean_audio_probability + clean_video_probability must be <= 1")
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("video", "audio", "sv", "sa", "drop", "ref", "cv", "ca",
                                                            "ctx")}
    for i, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(seed)
        u = torch.rand(5, generator=g, dtype=torch.float64)
        clean_audio = u[4] < clean_audio_probability
        clean_video = ~clean_audio & (u[4] < clean_audio_probability + clean_video_probability)
        parts["sv"].append(torch.where(clean_video, 0.0, shift_sigma(u[0], shift)))
        parts["sa"].append(torch.where(clean_audio, 0.0, shift_sigma(u[1], shift)))
        parts["drop"].append(u[2] < caption_dropout)
        parts["ref"].append(u[3] < reference_probability)
        parts["cv"].append(clean_video)
        parts["ca"].append(clean_audio)
        parts["video"].append(torch.randn(batch["video"][i].shape, generator=g))
        parts["audio"].append(torch.randn(batch["audio"][i].shape, generator=g))
        context = torch.rand((), generator=g, dtype=torch.float64) < clean_context_probability
        parts["ctx"].append(torch.where(context, clean_context_frames, 0))
    return FlowNoise(
        torch.stack(parts["video"]), torch.stack(parts["audio"]),
        torch.stack(parts["sv"]).float(), torch.stack(parts["sa"]).float(), torch.stack(parts["drop"]),
        torch.stack(parts["ref"]), torch.stack(parts["cv"]), torch.stack(parts["ca"]), torch.stack(parts["ctx"]),
    )


def _reference_channels(model, video: torch.Tensor, use: torch.Tensor) -> torch.Tensor | None:
    """The model's condition channels: each chosen sample's own first latent frame as its
    reference (built by the sampler's own reference_condition), zeros for the others."""
    config = getattr(model, "module", model).config
    channels = config.video_condition_channels
    if not use.any():
        return None
    if not channels:
        raise ValueError("reference_probability > 0 needs a model with video_condition_channels (e.g. 20)")
    condition = reference_condition(video[:, :, :1], tuple(video.shape), channels, config.reference_frames)
    return condition * use.view(-1, 1, 1, 1, 1).to(condition.dtype)


def flow_losses(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    noise: FlowNoise,
    mouth_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(video loss, audio loss) for one batch; both are means over the batch.

    batch: "video" [B,16,F,H,W], "audio" [B,C,T], "text" [B,L,D], "mouth_mask" [B,F,H,W]
    (latent-grid mouth boxes, 1 inside; optional when mouth_weight is 0), "fps" [B] (all
    equal), "empty_text" [L,D] (the encoded empty prompt; needed when samples drop their
    text). The video loss weights squared errors by (1 + mouth_weight * mask) (see
    jova_core.mouth.mouth_weighted_flow_loss). A modality held clean in a sample adds 0
    to that modality's loss (its velocity would be pure noise to guess): the means stay
    over the whole batch, so processes of a data-parallel run still average exactly. So do
    a sample's held context frames (noise.context_frames): they go in exactly clean, at
    t = 0 through per-frame timesteps, and add 0 to both losses.
    """
    video, audio = batch["video"].float(), batch["audio"].float()
    device = video.device
    sv, sa = noise.sigma_video.to(device), noise.sigma_audio.to(device)
    nv, na = noise.video.to(device), noise.audio.to(device)
    fps = batch["fps"].flatten()
    if not torch.all(fps == fps[0]):
        raise ValueError(f"clips in one batch must share a frame rate, got {fps.tolist()}")
    text = batch["text"]
    if noise.drop_text.any():
        if batch.get("empty_text") is None:
            raise ValueError("caption dropout needs the encoded empty prompt in the batch ('empty_text' [L, D]); "
                             "cache the clips with jova_core.train.encode.cached_dataset, which writes it")
        # Exactly the negative prompt guidance contrasts with at inference: the encoder's "".
        text = torch.where(noise.drop_text.to(device).view(-1, 1, 1), batch["empty_text"].to(text), text)
    reference = _reference_channels(model, video, noise.use_reference.to(device))
    x_v, x_a = add_noise(video, nv, sv), add_noise(audio, na, sa)
    t_v, t_a = timesteps_from_sigma(sv).to(device), timesteps_from_sigma(sa).to(device)
    keep_v = (~noise.clean_video.to(device)).view(-1, 1, 1, 1, 1).float()
    keep_a = (~noise.clean_audio.to(device)).view(-1, *([1] * (audio.dim() - 1))).float()
    if noise.context_frames.any():
        held_v, held_a = context_masks(model, noise.context_frames, video.shape[2], audio.shape[-1], float(fps[0]))
        held_v, held_a = held_v.to(device), held_a.to(device)
        frames_v = held_v.view(video.shape[0], 1, -1, 1, 1)  # broadcast over [B, C, F, H, W]
        frames_a = held_a.view(audio.shape[0], *([1] * (audio.dim() - 2)), -1)  # over [B, C, (F,) T]
        x_v, x_a = torch.where(frames_v, video, x_v), torch.where(frames_a, audio, x_a)
        t_v = torch.where(held_v, 0.0, t_v[:, None].expand_as(held_v))  # [B, F]: 0 on the held frames
        t_a = torch.where(held_a, 0.0, t_a[:, None].expand_as(held_a))  # [B, T]
        keep_v, keep_a = keep_v * ~frames_v, keep_a * ~frames_a
    pred_v, pred_a = model(video=x_v, audio=x_a, t_video=t_v, t_audio=t_a, text=text, reference=reference,
                           fps=float(fps[0]))
    target_v, target_a = velocity_target(video, nv), velocity_target(audio, na)
    if mouth_weight and batch.get("mouth_mask") is None:
        raise ValueError("mouth_weight > 0 needs latent mouth masks in the batch ('mouth_mask'); recache the clips")
    # mouth_weight 0 (or no mask) is exactly the plain mean squared error there.
    loss_v = mouth_weighted_flow_loss(pred_v.float() * keep_v, target_v * keep_v, batch.get("mouth_mask"), mouth_weight)
    loss_a = F.mse_loss(pred_a.float() * keep_a, target_a * keep_a)
    return loss_v, loss_a


def context_masks(model, context_frames: torch.Tensor, video_frames: int, audio_frames: int,
                  fps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Which latent frames each sample holds clean: ([B, video_frames], [B, audio_frames])
    bool, its first context_frames[b] video latent frames and the audio latent frames of
    the same seconds, counted by sampling.extend's context_audio_frames (the rule by which
    ``extend`` holds a chunk's audio), so training holds what inference holds."""
    geometry = getattr(model, "module", model).config.geometry
    held = [int(k) for k in context_frames.tolist()]
    audio_held = [context_audio_frames(k, fps, geometry.video.temporal_stride, geometry.audio.latent_rate,
                                       geometry.audio_patch[1]) if k else 0 for k in held]
    if max(held) >= video_frames:
        raise ValueError(f"clean_context_frames {max(held)} leaves no video latent frame to generate in clips of "
                         f"{video_frames}: lower it below {video_frames} or train on longer clips")
    if max(audio_held) >= audio_frames:
        raise ValueError(f"clean_context_frames {max(held)} holds {max(audio_held)} audio latent frames, all of the "
                         f"clips' {audio_frames}: lower it or train on longer clips")
    video = torch.arange(video_frames)[None] < torch.tensor(held)[:, None]
    audio = torch.arange(audio_frames)[None] < torch.tensor(audio_held)[:, None]
    return video, audio
