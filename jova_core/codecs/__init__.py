"""Video and audio codecs: real (Wan2.1 / Wan2.2 VAE; MMAudio VAE + BigVGAN) and weight-free demo ones.

    load_video_codec(path, dtype=None, device="cpu") -> VideoCodec
    load_audio_codec(vae_path, vocoder_path=None, dtype=None, device="cpu") -> AudioCodec

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


def load_audio_codec(vae_path: str, vocoder_path: str | None = None, dtype=None, device="cpu") -> AudioCodec:
    """MMAudio VAE (`v1-16.pth` / `v1-44.pth`) with its BigVGAN vocoder (MMAudio's 16 kHz
    `best_netG.pt` / NVIDIA's v2 44 kHz `bigvgan_generator.pt`), or, without a vocoder, the
    Stable Audio Open VAE (MagiHuman's: stable-audio-open-1.0 `model.safetensors` or
    `vae/diffusion_pytorch_model.safetensors`)."""
    from .stable_audio import is_stable_audio_file, is_stable_audio_safetensors

    if vocoder_path is None:
        if not is_stable_audio_file(vae_path):
            raise ValueError(
                f"{vae_path} is not the Stable Audio Open VAE, the one audio VAE that needs no vocoder: "
                "pick its vocoder too (MMAudio v1-16.pth / v1-44.pth: the matching BigVGAN file)"
            )
        from .stable_audio import load_stable_audio_codec

        return load_stable_audio_codec(vae_path, dtype=dtype, device=device)
    if is_stable_audio_safetensors(vae_path):
        raise ValueError(f"{vae_path} is the Stable Audio Open VAE, which decodes waveforms itself: pick no vocoder")
    from .mmaudio import load_mmaudio_codec

    return load_mmaudio_codec(vae_path, vocoder_path, dtype=dtype, device=device)


__all__ = ["AudioCodec", "VideoCodec", "load_audio_codec", "load_video_codec", "valid_num_frames", "valid_video_size"]
