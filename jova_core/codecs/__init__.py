"""Video and audio codecs: real (Wan2.1 / Wan2.2 VAE; MMAudio VAE + BigVGAN; AudioLDM2 VAE +
HiFi-GAN; Stable Audio Open VAE) and weight-free demo ones.

    load_video_codec(path, dtype=None, device="cpu") -> VideoCodec
    load_audio_codec(vae_path, vocoder_path=None, dtype=None, device="cpu") -> AudioCodec

Both choose the variant from the files' contents (jova_core.identify). Heavy modules
(diffusers) are imported only when a real codec is loaded.
"""

from __future__ import annotations

import os

from ..identify import identify, unhosted_release_part
from ..weights import peek
from .base import AudioCodec, VideoCodec, valid_num_frames, valid_video_size


def load_video_codec(path: str, dtype=None, device="cpu") -> VideoCodec:
    """Wan2.1 or Wan2.2 VAE (told apart by contents) from `Wan2.1_VAE.pth` / `Wan2.2_VAE.pth`
    or ComfyUI's `wan_2.1_vae.safetensors` / `wan2.2_vae.safetensors`."""
    from .wan_vae import load_wan_video_codec

    unhosted = unhosted_release_part(path)
    if unhosted:
        raise ValueError(f"{path} is {unhosted}")
    return load_wan_video_codec(path, dtype=dtype, device=device)


# The weight file of each cvssp/audioldm2 subfolder (vocoder/ also holds a pickle duplicate).
AUDIOLDM2_FILES = {"vae": "diffusion_pytorch_model.safetensors", "vocoder": "model.safetensors"}
# Each audio VAE kind (jova_core.identify) and the vocoder kind it pairs with.
VOCODER_OF = {"mmaudio-vae": "bigvgan", "audioldm2-vae": "audioldm2-vocoder"}


def _in_release_folder(path: str, role: str) -> str:
    """The safetensors file of an AudioLDM2 `vae/` or `vocoder/` folder, never the pickle
    beside it; any other path unchanged."""
    inside = os.path.join(path, AUDIOLDM2_FILES[role])
    return inside if os.path.isdir(path) and os.path.isfile(inside) else path


def load_audio_codec(vae_path: str, vocoder_path: str | None = None, dtype=None, device="cpu") -> AudioCodec:
    """The audio codec a VAE (+ vocoder) makes, recognised from the files' contents:
    - MMAudio VAE (`v1-16.pth` / `v1-44.pth`) with its BigVGAN vocoder (MMAudio's 16 kHz
      `best_netG.pt` / NVIDIA's v2 44 kHz `bigvgan_generator.pt`);
    - AudioLDM2's VAE with its HiFi-GAN vocoder (cvssp/audioldm2 `vae/` and `vocoder/`: the
      folders or their safetensors files; JavisDiT++'s codec);
    - without a vocoder, the Stable Audio Open VAE (MagiHuman's: stable-audio-open-1.0
      `model.safetensors` or `vae/diffusion_pytorch_model.safetensors`).
    Any other combination is refused naming each file."""
    vae_path = _in_release_folder(vae_path, "vae")
    vae_kind = identify(*peek(
        vae_path, what="an audio VAE (the Stable Audio Open VAE alone, or an MMAudio / AudioLDM2 VAE with its vocoder)"
    ))
    if vae_kind.name == "sao-vae":
        if vocoder_path is not None:
            raise ValueError(f"{vae_path} is the Stable Audio Open VAE, which decodes waveforms itself: pick no vocoder")
        from .stable_audio import load_stable_audio_codec

        return load_stable_audio_codec(vae_path, dtype=dtype, device=device)
    if vocoder_path is None:
        raise ValueError(
            f"{vae_path} is {vae_kind.description}, not the Stable Audio Open VAE (the one audio VAE that needs no "
            "vocoder): pick its vocoder too (MMAudio v1-16.pth / v1-44.pth: the matching BigVGAN file; AudioLDM2's "
            "vae/: its vocoder/model.safetensors)"
        )
    vocoder_path = _in_release_folder(vocoder_path, "vocoder")
    vocoder_kind = identify(*peek(vocoder_path, what="a vocoder"))
    if VOCODER_OF.get(vae_kind.name) != vocoder_kind.name:
        raise ValueError(
            f"these files do not make an audio codec: {vae_path} is {vae_kind.description} and {vocoder_path} is "
            f"{vocoder_kind.description}. Pair MMAudio's VAE (v1-16.pth / v1-44.pth) with its BigVGAN, AudioLDM2's "
            "vae/diffusion_pytorch_model.safetensors with its vocoder/model.safetensors, or pick the Stable Audio "
            "Open VAE alone"
        )
    if vae_kind.name == "audioldm2-vae":
        from .audioldm2 import load_audioldm2_codec

        return load_audioldm2_codec(vae_path, vocoder_path, dtype=dtype, device=device)
    from .mmaudio import load_mmaudio_codec

    return load_mmaudio_codec(vae_path, vocoder_path, dtype=dtype, device=device)


__all__ = ["AudioCodec", "VideoCodec", "load_audio_codec", "load_video_codec", "valid_num_frames", "valid_video_size"]
