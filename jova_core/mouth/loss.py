"""JoVA's mouth-area loss: flow matching with extra weight on the mouth's latent cells."""

from __future__ import annotations

import torch


def _mask_on_latent_grid(mask: torch.Tensor, latent_shape: torch.Size) -> torch.Tensor:
    """Bring a mask to [B, T_lat, H_lat, W_lat]: add a missing batch dim, and repeat a
    coarser (patch / token) grid up to the latent grid when its sizes divide it."""
    batch, _, frames, height, width = latent_shape
    if mask.dim() == 3:
        mask = mask[None]
    if mask.dim() != 4:
        raise ValueError(
            f"latent_mask must be [B, T, H, W] or [T, H, W] (latent or token grid), got shape {tuple(mask.shape)}"
        )
    if mask.shape[0] not in (1, batch):
        raise ValueError(f"latent_mask batch {mask.shape[0]} does not match the latents' batch {batch}")
    for dim, size in zip((1, 2, 3), (frames, height, width)):
        if mask.shape[dim] != size:
            if size % mask.shape[dim]:
                raise ValueError(
                    f"latent_mask grid {tuple(mask.shape[1:])} fits neither the latent grid "
                    f"{(frames, height, width)} nor a patch grid dividing it"
                )
            mask = mask.repeat_interleave(size // mask.shape[dim], dim=dim)
    return mask


def mouth_weighted_flow_loss(
    pred: torch.Tensor, target: torch.Tensor, latent_mask: torch.Tensor | None, weight: float
) -> torch.Tensor:
    """mean((1 + weight * M) * (pred - target)^2) over all video latent elements.

    pred, target: predicted and target velocities [B, C, T_lat, H_lat, W_lat].
    latent_mask M: [B, T_lat, H_lat, W_lat] or [T_lat, H_lat, W_lat] (shared by the
        batch), 0..1, on the latent grid or on the transformer's token grid (e.g.
        [B, T_lat, H_lat/2, W_lat/2] for patch (1, 2, 2)), which is repeated up to the
        latent grid; it is broadcast over channels.
    weight: the paper's lambda; 0 (or no mask) is plain flow matching MSE.
    """
    if pred.shape != target.shape or pred.dim() != 5:
        raise ValueError(f"pred and target must be video latents [B, C, T, H, W] of one shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    squared_error = (pred.float() - target.float()) ** 2
    if latent_mask is None or weight == 0:
        return squared_error.mean()
    mask = _mask_on_latent_grid(latent_mask.to(squared_error.device, torch.float32), pred.shape)
    return ((1.0 + weight * mask[:, None]) * squared_error).mean()
