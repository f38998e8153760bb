"""JoVA's training objective: flow matching on each modality, mouth-weighted on video.

Each modality gets its OWN noise level per sample (sigma_video, sigma_audio drawn
independently, then shifted), so the model learns every combination, including one
modality nearly clean while the other is noisy — what audio-to-video and video-to-audio
generation ask of it at inference. The schedule (noising, target, timestep scale) comes
from jova_core.sampling.schedule, the mouth weighting from jova_core.mouth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..mouth.loss import mouth_weighted_flow_loss
from ..sampling.schedule import add_noise, shift_sigma, timesteps_from_sigma, velocity_target


@dataclass
class FlowNoise:
    """The random draw of one training step: noise and noise levels for both modalities."""

    video: torch.Tensor  # like the video latents
    audio: torch.Tensor  # like the audio latents
    sigma_video: torch.Tensor  # [B], already shifted
    sigma_audio: torch.Tensor  # [B]
    drop_text: torch.Tensor  # [B] bool: train this sample without its prompt (zeros)


def draw_noise(batch: dict[str, torch.Tensor], seeds: list[int], shift: float, caption_dropout: float = 0.0) -> FlowNoise:
    """Noise for each sample from its own seed, so a sample gets the same draw whichever
    process (and whichever position in a per-process batch) it lands on."""
    parts: dict[str, list[torch.Tensor]] = {"video": [], "audio": [], "sv": [], "sa": [], "drop": []}
    for i, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(seed)
        u = torch.rand(3, generator=g, dtype=torch.float64)
        parts["sv"].append(shift_sigma(u[0], shift))
        parts["sa"].append(shift_sigma(u[1], shift))
        parts["drop"].append(u[2] < caption_dropout)
        parts["video"].append(torch.randn(batch["video"][i].shape, generator=g))
        parts["audio"].append(torch.randn(batch["audio"][i].shape, generator=g))
    return FlowNoise(
        torch.stack(parts["video"]), torch.stack(parts["audio"]),
        torch.stack(parts["sv"]).float(), torch.stack(parts["sa"]).float(), torch.stack(parts["drop"]),
    )


def flow_losses(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    noise: FlowNoise,
    mouth_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(video loss, audio loss) for one batch; both are means over the batch.

    batch: "video" [B,16,F,H,W], "audio" [B,C,T], "text" [B,L,D], "mouth_mask" [B,F,H,W]
    (latent-grid mouth boxes, 1 inside; optional when mouth_weight is 0), "fps" [B] (all
    equal). The video loss weights squared errors by (1 + mouth_weight * mask) (see
    jova_core.mouth.mouth_weighted_flow_loss).
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
        text = torch.where(noise.drop_text.to(device).view(-1, 1, 1), torch.zeros_like(text), text)
    pred_v, pred_a = model(
        video=add_noise(video, nv, sv),
        audio=add_noise(audio, na, sa),
        t_video=timesteps_from_sigma(sv).to(device),
        t_audio=timesteps_from_sigma(sa).to(device),
        text=text,
        fps=float(fps[0]),
    )
    target_v, target_a = velocity_target(video, nv), velocity_target(audio, na)
    if mouth_weight and batch.get("mouth_mask") is None:
        raise ValueError("mouth_weight > 0 needs latent mouth masks in the batch ('mouth_mask'); recache the clips")
    # mouth_weight 0 (or no mask) is exactly the plain mean squared error there.
    loss_v = mouth_weighted_flow_loss(pred_v.float(), target_v, batch.get("mouth_mask"), mouth_weight)
    loss_a = F.mse_loss(pred_a.float(), target_a)
    return loss_v, loss_a
