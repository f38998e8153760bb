"""MMAudio audio codec: waveform -> log-mel (ours) -> MMAudio VAE latents -> mel -> BigVGAN.

Encoding uses our torchaudio mel front end, not diffusers' (which takes the natural log
for every variant and is therefore wrong for the 16 kHz VAE). Latents are the posterior
mean of the VAE, unscaled: [B, 20, T] at 31.25 Hz (16 kHz) or [B, 40, T] at ~43.07 Hz (44.1 kHz).
"""

from __future__ import annotations

import torch
from diffusers import MMAudioVAE
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

from ..geometry import AudioLatentGeometry
from ..weights import read_state_dict
from .base import AudioCodec, ModuleCodec
from .bigvgan import vocode, vocoder_from_state_dict
from .mel import MelConfig, MelFrontEnd
from .mmaudio_vae import mmaudio_vae_from_state_dict


class MMAudioCodec(ModuleCodec, AudioCodec):
    # The vocoder moves with the VAE; the mel front end follows the device but stays float32.
    networks = ("vae", "vocoder")
    float32_modules = ("mel",)

    # decode_chunks: the VAE decoder and BigVGAN are convolutional; 0.5 s of context each
    # side leaves a tiny random pair within 1e-4 of the whole decode (tests/test_chunked_decode.py).
    chunk_margin_latents = 16

    def __init__(self, vae: MMAudioVAE, vocoder: LTX2Vocoder, mel: MelConfig):
        vocoder_mels = vocoder.config.in_channels
        if vocoder_mels != mel.n_mels or vocoder.total_upsample_factor != mel.hop_length:
            raise ValueError(
                f"vocoder ({vocoder_mels} mels, hop {vocoder.total_upsample_factor}) does not match the VAE "
                f"({mel.n_mels} mels, hop {mel.hop_length} at {mel.sample_rate} Hz): pair the 16 kHz VAE "
                "(v1-16.pth) with MMAudio's 16 kHz BigVGAN and the 44.1 kHz VAE (v1-44.pth) with BigVGAN v2 44 kHz."
            )
        self.vae = vae
        self.vocoder = vocoder
        self.mel = MelFrontEnd(mel).to(self.device)
        # The VAE halves the mel frame rate once.
        self.geometry = AudioLatentGeometry(
            vae.config.latent_channels, mel.sample_rate / (2 * mel.hop_length), sample_rate=mel.sample_rate,
            mel_bins=mel.n_mels, name=f"MMAudio {mel.sample_rate / 1000:g} kHz VAE",
        )

    @torch.no_grad()
    def encode(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        mono = self.prepare_waveform(waveform, sample_rate).to(self.device)
        log_mel = self.mel(mono)  # [B, n_mels, N // hop]
        moments = self.vae.vae.encode(log_mel.to(self.dtype))  # [B, 2C, T]: mean, logvar
        return moments[:, : self.latent_channels].float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        latents = self.check_latents(latents)
        log_mel = self.vae.vae.decode(latents.to(self.device, self.dtype))
        return vocode(self.vocoder, log_mel).float()  # [B, 1, 2 * T * hop]


def load_mmaudio_codec(vae_path: str, vocoder_path: str, dtype=None, device="cpu") -> MMAudioCodec:
    vae, mel = mmaudio_vae_from_state_dict(
        read_state_dict(vae_path, what="an MMAudio VAE (v1-16.pth or v1-44.pth)"), vae_path, dtype=dtype, device=device
    )
    vocoder = vocoder_from_state_dict(
        read_state_dict(vocoder_path, what="a BigVGAN generator (best_netG.pt or bigvgan_generator.pt)"),
        vocoder_path, sample_rate=mel.sample_rate, dtype=dtype, device=device,
    )
    return MMAudioCodec(vae, vocoder, mel)
