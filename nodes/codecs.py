"""Video codecs for the nodes: ComfyUI's own Wan2.1 / Wan2.2 VAE object, or a jova_core codec.

The JoVA LATENT holds normalised latents (the transformer's space). ComfyUI's VAE object
works on raw Wan latents, so it is wrapped here with the published per-channel
normalisation of its variant (Wan2.2's is MagiHuman's), the constants jova_core's Wan codec uses.
"""

from __future__ import annotations

from contextlib import contextmanager

import comfy.model_management
import torch

from ..jova_core.codecs.base import VideoCodec
from ..jova_core.geometry import VIDEO_GEOMETRIES, WAN21_VAE, WAN22_VAE, VideoLatentGeometry

# Spatial tile for tiled decoding, in pixels (ComfyUI's VAEDecodeTiled defaults).
TILE_PIXELS, TILE_OVERLAP_PIXELS = 512, 64


class CoreVAEVideoCodec(VideoCodec):
    """ComfyUI's VAE (core VAELoader with wan_2.1_vae / wan2.2_vae .safetensors) behind jova_core's VideoCodec."""

    def __init__(self, vae):
        channels = getattr(vae, "latent_channels", None)
        temporal = vae.temporal_compression_decode() if hasattr(vae, "temporal_compression_decode") else None
        spatial = vae.spacial_compression_decode() if hasattr(vae, "spacial_compression_decode") else None
        found = VideoLatentGeometry(channels, temporal, spatial)
        if found not in (WAN21_VAE, WAN22_VAE):
            known = next((f" (the {g.name}'s)" for g in VIDEO_GEOMETRIES if g == found), "")
            raise ValueError(
                f"this VAE has {channels} latent channels, {temporal}x temporal and {spatial}x spatial "
                f"compression{known}; JoVA needs the Wan2.1 VAE ({WAN21_VAE.channels} channels, "
                f"{WAN21_VAE.temporal_stride}x, {WAN21_VAE.spatial_stride}x) or, for MagiHuman, the Wan2.2 VAE "
                f"({WAN22_VAE.channels} channels, {WAN22_VAE.spatial_stride}x): load wan_2.1_vae.safetensors or "
                "wan2.2_vae.safetensors with the core VAELoader"
            )
        self.vae = vae
        self.geometry = WAN21_VAE if found == WAN21_VAE else WAN22_VAE
        # Imported here: it loads diffusers' Wan VAE model code, which only this path needs.
        from ..jova_core.codecs.wan_vae import wan_vae_config

        config = wan_vae_config(found.channels)
        self.latents_mean = torch.tensor(config["latents_mean"], dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.latents_std = torch.tensor(config["latents_std"], dtype=torch.float32).view(1, -1, 1, 1, 1)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        frames = self.as_batch(frames)
        # ComfyUI's video VAE takes one clip as a batch of frames [T, H, W, 3].
        raw = torch.cat([self.vae.encode(clip) for clip in frames]).float().cpu()
        return (raw - self.latents_mean) / self.latents_std

    def decode(self, latents: torch.Tensor, tiled: bool = False) -> torch.Tensor:
        self.check_latents(latents)
        raw = latents.float().cpu() * self.latents_std + self.latents_mean
        clips = []
        for z in raw.split(1):
            if tiled:
                s = self.spatial_stride
                images = self.vae.decode_tiled(z, tile_x=TILE_PIXELS // s, tile_y=TILE_PIXELS // s,
                                               overlap=TILE_OVERLAP_PIXELS // s)
            else:
                images = self.vae.decode(z)
            clips.append(images.reshape(-1, *images.shape[-3:]).float().cpu())  # [T, H, W, 3]
        return torch.stack(clips)


def pick_video_codec(vae=None, video_codec=None, needed_for: str = "decoding video") -> VideoCodec:
    """The one video codec connected to a node: core VAE (wrapped) or a pack codec."""
    if vae is not None and video_codec is not None:
        raise ValueError("connect either 'vae' (core VAELoader, Wan2.1) or 'video_codec', not both")
    if video_codec is not None:
        return video_codec
    if vae is not None:
        return CoreVAEVideoCodec(vae)
    raise ValueError(f"{needed_for} needs a video codec: connect 'vae' (core VAELoader with "
                     "wan_2.1_vae.safetensors) or 'video_codec' (JoVA Video Codec Loader)")


@contextmanager
def on_device(codec):
    """The codec on ComfyUI's torch device for the block, then back on the offload device.
    Codecs without weights (the demo ones) and ComfyUI's VAE (which places itself) stay put."""
    movable = hasattr(codec, "to")
    if movable:
        codec.to(comfy.model_management.get_torch_device())
    try:
        yield codec
    finally:
        if movable:
            codec.to(comfy.model_management.unet_offload_device())
