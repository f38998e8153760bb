"""Wan2.1 and Wan2.2 video VAEs (diffusers `AutoencoderKLWan`) behind the VideoCodec interface.

Reads the original `Wan2.1_VAE.pth` / `Wan2.2_VAE.pth` or ComfyUI's `wan_2.1_vae.safetensors` /
`wan2.2_vae.safetensors` (same key names) fully offline. The variant is read off the file's
contents (latent channels of `conv2`, the post-quant conv: 16 = Wan2.1, 48 = Wan2.2); the
architecture comes from the config shipped in `configs/`, and every key is checked before
loading (no silent random initialisation).

Wan2.2 (MagiHuman's video codec): 48 channels, a 2x2 pixel patchify inside, residual
down/up blocks -> stride 4 x 16 x 16; the same normalisation (mu - mean) / std with its
own 48-value tables (reference magihuman.md "Codecs").
"""

from __future__ import annotations

import json
import os
import re
from typing import Iterator

import torch
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

from ..geometry import VIDEO_GEOMETRIES, VideoLatentGeometry
from ..weights import build_exactly, read_state_dict, strip_prefix
from .base import ModuleCodec, VideoCodec

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "configs")
# Latent channels (z_dim) -> the shipped config of that VAE.
CONFIG_BY_CHANNELS = {16: "wan2.1_vae.json", 48: "wan2.2_vae.json"}
# Keys only the Wan VAE family has; used to tell it apart from other files.
_SIGNATURE_KEYS = ("encoder.conv1.weight", "decoder.conv1.weight", "conv1.weight", "conv2.weight")


def wan_vae_config(channels: int = 16) -> dict:
    """The shipped AutoencoderKLWan config of the Wan VAE with `channels` latent channels."""
    with open(os.path.join(CONFIG_DIR, CONFIG_BY_CHANNELS[channels])) as f:
        return json.load(f)


def wan_vae_channels(state_dict: dict[str, torch.Tensor]) -> int:
    """Latent channels of a Wan VAE state dict (original key names): conv2 maps z -> z."""
    return state_dict["conv2.weight"].shape[0]


def _nested_to_diffusers(key: str) -> str | None:
    """Wan2.2's nested block names -> diffusers', or None for a key outside them.

    The original nests `encoder.downsamples.i.downsamples.j` (and `decoder.upsamples.i.upsamples.j`):
    j < the block's resnet count are residual blocks, the last j its resampler."""
    match = re.match(r"(encoder|decoder)\.(down|up)samples\.(\d+)\.(?:down|up)samples\.(\d+)\.(.+)$", key)
    if match is None:
        return None
    part, way, block, inner, rest = match.groups()
    prefix = f"{part}.{way}_blocks.{block}"
    if rest.startswith(("resample.", "time_conv.")):
        return f"{prefix}.{way}sampler.{rest}"
    rest = rest.replace("shortcut.", "conv_shortcut.")
    for old, new in _RESIDUAL_NAMES.items():
        rest = rest.replace(old, new)
    return f"{prefix}.resnets.{inner}.{rest}"


# Original residual-block layer indices (norm, SiLU, conv, norm, SiLU, dropout, conv) -> diffusers names.
_RESIDUAL_NAMES = {"residual.0.": "norm1.", "residual.2.": "conv1.", "residual.3.": "norm2.", "residual.6.": "conv2."}


def convert_wan22_vae_to_diffusers(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Wan2.2 VAE original key names -> AutoencoderKLWan's. The nested blocks are renamed
    here; everything else (convs in/out, middle, head, quant convs) is named as in Wan2.1,
    so diffusers' own converter renames it."""
    nested = {new: v for k, v in state_dict.items() if (new := _nested_to_diffusers(k)) is not None}
    rest = {k: v for k, v in state_dict.items() if _nested_to_diffusers(k) is None}
    return {**convert_wan_vae_to_diffusers(rest), **nested}


def wan_vae_geometry(config) -> VideoLatentGeometry:
    """The latent grid of an AutoencoderKLWan config: z_dim channels, 2 per temporal
    downsampling, 2 per spatial level times the pixel patchify (Wan2.2's 2x2)."""
    spatial = 2 ** (len(config.dim_mult) - 1) * (config.patch_size or 1)
    found = VideoLatentGeometry(config.z_dim, 2 ** sum(config.temperal_downsample), spatial, name="Wan VAE")
    return next((known for known in VIDEO_GEOMETRIES if known == found), found)


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
            f"{source} is not a Wan VAE (no encoder.conv1 / encoder.downsamples.* / conv1 / conv2 keys; "
            f"it starts with: {sample}). Pick Wan2.1_VAE.pth / wan_2.1_vae.safetensors or "
            "Wan2.2_VAE.pth / wan2.2_vae.safetensors (other VAEs are not supported)."
        )
    channels = wan_vae_channels(state_dict)
    if config is None and channels not in CONFIG_BY_CHANNELS:
        raise ValueError(
            f"{source} is a Wan-style VAE with {channels} latent channels; only the Wan2.1 (16) and "
            "Wan2.2 (48) VAEs are supported: pick Wan2.1_VAE.pth or Wan2.2_VAE.pth."
        )
    cfg = {k: v for k, v in (config or wan_vae_config(channels)).items() if not k.startswith("_")}
    converted = (convert_wan22_vae_to_diffusers if cfg["is_residual"] else convert_wan_vae_to_diffusers)(state_dict)
    # The widths come from the file (tiny test models); the rest of the architecture is the config's.
    cfg["base_dim"] = state_dict["encoder.conv1.weight"].shape[0]
    if cfg.get("decoder_base_dim") is not None:
        cfg["decoder_base_dim"] = state_dict["decoder.conv1.weight"].shape[0] // cfg["dim_mult"][-1]
    vae = build_exactly(lambda: AutoencoderKLWan(**cfg), converted, source, dtype)
    return vae.to(device).eval()


class WanVideoCodec(ModuleCodec, VideoCodec):
    """Wan2.1 / Wan2.2 VAE with the published per-channel latent normalisation
    z_n = (z - mean) / std (MagiHuman's for Wan2.2); decode clamps pixels to [-1, 1]."""

    def __init__(self, vae: AutoencoderKLWan):
        self.vae = vae
        self.geometry = wan_vae_geometry(vae.config)
        self.latents_mean = torch.tensor(vae.config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.latents_std = torch.tensor(vae.config.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)

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

    @torch.no_grad()
    def decode_chunks(self, latents: torch.Tensor, chunk_latents: int = 8) -> Iterator[torch.Tensor]:
        """decode() (untiled) `chunk_latents` latent frames at a time. Wan's decoder is causal
        over latent frames: diffusers' AutoencoderKLWan._decode feeds them one by one,
        carrying each causal conv's last inputs in a feature cache; this runs the same loop
        (the cache lives in the VAE's _feat_map / _conv_idx, diffusers 0.3x-0.4x) and hands
        out the frames of each chunk as they are made, so only the cache and one chunk are
        held. The frames equal decode()'s to float rounding (tests/test_codecs_video.py)."""
        self.check_latents(latents)
        vae = self.vae
        z = latents.float() * self.latents_std.to(latents.device) + self.latents_mean.to(latents.device)
        z = z.to(self.device, self.dtype)
        vae.clear_cache()
        try:
            for start in range(0, z.shape[2], chunk_latents):
                pieces = []
                for i in range(start, min(start + chunk_latents, z.shape[2])):
                    vae._conv_idx = [0]
                    x = vae.post_quant_conv(z[:, :, i:i + 1])
                    pieces.append(vae.decoder(x, feat_cache=vae._feat_map, feat_idx=vae._conv_idx, first_chunk=i == 0))
                pixels = torch.cat(pieces, dim=2)
                if vae.config.patch_size is not None:
                    pixels = unpatchify(pixels, patch_size=vae.config.patch_size)
                yield ((pixels.float().clamp(-1.0, 1.0) + 1.0) / 2.0).permute(0, 2, 3, 4, 1)  # [B,t,H,W,3]
        finally:
            vae.clear_cache()


def load_wan_video_codec(path: str, dtype=None, device="cpu") -> WanVideoCodec:
    state_dict = read_state_dict(path, what="a Wan VAE (Wan2.1_VAE.pth or Wan2.2_VAE.pth)")
    return WanVideoCodec(wan_vae_from_state_dict(state_dict, path, dtype=dtype, device=device))
