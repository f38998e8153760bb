"""Video and audio codecs: real (Wan2.1 / Wan2.2 VAE; MMAudio VAE + BigVGAN) and weight-free demo ones.

    load_video_codec(path, dtype=None, device="cpu") -> VideoCodec
    load_audio_codec(vae_path, vocoder_path, dtype=None, device="cpu") -> AudioCodec

Both choose the variant from the files' contents. Heavy modules (diffusers) are imported
only when a real codec is loaded.
"""

from __future__ import annotations

from .base import AudioCodec, VideoCodec, valid_num_frames, valid_video_size


def load_video_codec(path: str, dtype=None, device="cpu") -> VideoCodec:
    """Wan2.1 or Wan2.2 VAE (told apart by contents) from `Wan2.1_VAE.pth` / `Wan2.2_VAE.pth`
    or ComfyUI's `wan_2.1_vae.safetensors` / `wan2.2_vae.safetensors`."""
    from .wan_vae import load_wan_video_codec

    return load_wan_video_codec(path, dtype=dtype, device=device)


def load_audio_codec(vae_path: str, vocoder_path: str, dtype=None, device="cpu") -> AudioCodec:
    """MMAudio VAE (`v1-16.pth` / `v1-44.pth`) with its BigVGAN vocoder
    (MMAudio's 16 kHz `best_netG.pt` / NVIDIA's v2 44 kHz `bigvgan_generator.pt`)."""
    from .mmaudio import load_mmaudio_codec

    return load_mmaudio_codec(vae_path, vocoder_path, dtype=dtype, device=device)


__all__ = ["AudioCodec", "VideoCodec", "load_audio_codec", "load_video_codec", "valid_num_frames", "valid_video_size"]
