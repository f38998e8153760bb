"""Wan2.1 video VAE (diffusers `AutoencoderKLWan`) behind the VideoCodec interface.

Reads the original `Wan2.1_VAE.pth` or ComfyUI's `wan_2.1_vae.safetensors` (same key
names) fully offline: the architecture comes from the config shipped in
`configs/wan2.1_vae.json`, the renaming from diffusers' own single-file converter, and
every key is checked before loading (no silent random initialisation).
"""

from __future__ import annotations

import json
import os

import torch
from diffusers import AutoencoderKLWan
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

from ..geometry import VideoLatentGeometry
from ..weights import build_exactly, read_state_dict, strip_prefix
from .base import VideoCodec

CONFIG_PATH = os.path.join(os.path.dirname(__file__), "configs", "wan2.1_vae.json")
# Keys only the Wan VAE family has; used to tell it apart from other files.
_SIGNATURE_KEYS = ("encoder.conv1.weight", "decoder.conv1.weight", "conv1.weight", "conv2.weight")


def wan_vae_config() -> dict:
    with open(CONFIG_PATH) as f:
        return json.load(f)


def wan_vae_geometry(config) -> VideoLatentGeometry:
    """The latent grid of an AutoencoderKLWan config: z_dim channels, 2 per temporal
    downsampling, 2 per spatial level times the pixel patchify (Wan2.2's 2x2)."""
    spatial = 2 ** (len(config.dim_mult) - 1) * (config.patch_size or 1)
    return VideoLatentGeometry(config.z_dim, 2 ** sum(config.temperal_downsample), spatial, name="Wan VAE")


def is_wan_vae_state_dict(state_dict: dict[str, torch.Tensor]) -> bool:
    return all(k in state_dict for k in _SIGNATURE_KEYS) and any(k.startswith("encoder.downsamples.") for k in state_dict)


def wan_vae_from_state_dict(
    state_dict: dict[str, torch.Tensor], source: str, config: dict | None = None, dtype=None, device="cpu"
) -> AutoencoderKLWan:
    """AutoencoderKLWan holding exactly `state_dict` (original Wan key names), eval mode."""
    state_dict = strip_prefix(state_dict, ("vae.", "first_stage_model.", "model."))
    if not is_wan_vae_state_dict(state_dict):
        sample = ", ".join(sorted(state_dict)[:5])
        raise ValueError(
            f"{source} is not a Wan2.1 VAE (no encoder.conv1 / encoder.downsamples.* / conv1 / conv2 keys; "
            f"it starts with: {sample}). Pick Wan2.1_VAE.pth or wan_2.1_vae.safetensors "
            "(the Wan2.2 VAE and other VAEs are not supported)."
        )
    converted = convert_wan_vae_to_diffusers(state_dict)
    cfg = {k: v for k, v in (config or wan_vae_config()).items() if not k.startswith("_")}
    # The width comes from the file (tiny test models); the rest of the architecture is Wan2.1's.
    cfg["base_dim"] = state_dict["encoder.conv1.weight"].shape[0]
    vae = build_exactly(lambda: AutoencoderKLWan(**cfg), converted, source, dtype)
    return vae.to(device).eval()


class WanVideoCodec(VideoCodec):
    """Wan2.1 VAE with the published per-channel latent normalisation z_n = (z - mean) / std."""

    def __init__(self, vae: AutoencoderKLWan):
        self.vae = vae
        self.geometry = wan_vae_geometry(vae.config)
        self.latents_mean = torch.tensor(vae.config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.latents_std = torch.tensor(vae.config.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    def to(self, device=None, dtype=None) -> "WanVideoCodec":
        self.vae.to(device=device, dtype=dtype)
        return self

    def configure_tiling(self, tile_pixels: int = 256, overlap_pixels: int = 64) -> None:
        """Tile size/overlap (pixels) for decode(tiled=True); smaller tiles use less memory."""
        if tile_pixels % self.spatial_stride or not 0 <= overlap_pixels < tile_pixels:
            raise ValueError(
                f"tile_pixels must be a multiple of {self.spatial_stride} and overlap_pixels in [0, tile_pixels); "
                f"got {tile_pixels}, {overlap_pixels}"
            )
        stride = tile_pixels - overlap_pixels
        was_tiling = self.vae.use_tiling
        self.vae.enable_tiling(tile_pixels, tile_pixels, stride, stride)
        self.vae.use_tiling = was_tiling  # tiling is chosen per decode() call

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        frames = self.as_batch(frames)
        pixels = (frames.permute(0, 4, 1, 2, 3) * 2.0 - 1.0).to(self.device, self.dtype)  # [B,3,T,H,W] in -1..1
        z = self.vae.encode(pixels).latent_dist.mode().float()
        return (z - self.latents_mean.to(z.device)) / self.latents_std.to(z.device)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor:
        self.check_latents(latents)
        z = latents.float() * self.latents_std.to(latents.device) + self.latents_mean.to(latents.device)
        previous = self.vae.use_tiling
        self.vae.use_tiling = tiled
        try:
            pixels = self.vae.decode(z.to(self.device, self.dtype)).sample
        finally:
            self.vae.use_tiling = previous
        return ((pixels.float().clamp(-1.0, 1.0) + 1.0) / 2.0).permute(0, 2, 3, 4, 1)  # [B,T,H,W,3]


def load_wan_video_codec(path: str, dtype=None, device="cpu") -> WanVideoCodec:
    state_dict = read_state_dict(path, what="a Wan2.1 VAE (Wan2.1_VAE.pth or wan_2.1_vae.safetensors)")
    return WanVideoCodec(wan_vae_from_state_dict(state_dict, path, dtype=dtype, device=device))
