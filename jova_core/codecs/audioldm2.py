"""AudioLDM2 audio codec (JavisDiT++'s): 16 kHz waveform -> 64-bin log-mel -> AudioLDM2 VAE
latents, and back through the VAE decoder and AudioLDM2's HiFi-GAN vocoder.

The VAE is diffusers' `AutoencoderKL`, the vocoder transformers' `SpeechT5HifiGan`; both
read the files users download from cvssp/audioldm2 (`vae/diffusion_pytorch_model.safetensors`,
`vocoder/model.safetensors`, or those folders), fully offline. Their configurations come
from the `config.json` beside a file when there is one, else from the configs shipped in
`configs/` with the widths read from the weight shapes (renamed single files). A folder's
pickle duplicate (`vocoder/pytorch_model.bin`) is never read.

The mel front end restates JavisDiT++'s (javisdit/datasets/audio_utils.py; facts in the
project's reference notes): loudness step (mean removed, peak set to 0.5), magnitude STFT
(n_fft 1024, hop 160, periodic Hann, reflect padding of n_fft/2), Slaney mel filterbank
(64 bins, 0-8 kHz), natural log of the magnitude clamped at 1e-5, time-major [T, 64];
the mel is zero-padded (in the log domain, as upstream) or cut to `mel_frames`.

Latents are the posterior mean times the VAE's scaling factor (JavisDiT++ draws a sample;
a codec should be deterministic), in JoVA's audio layout [B, 8, 16, T]: channels, mel
bins / 4, time / 4, i.e. JavisDiT++'s [B, 8, T, 16] with the last two axes swapped.
25 latent frames per second, 640 samples each.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import torch
import torchaudio.functional as AF
from diffusers import AutoencoderKL
from torch import nn
from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

from ..geometry import AUDIOLDM2
from ..weights import build_exactly, read_state_dict, strip_prefix
from .base import AudioCodec, ModuleCodec

CONFIGS = os.path.join(os.path.dirname(__file__), "configs")
SAMPLE_RATE = AUDIOLDM2.sample_rate
N_FFT = 1024  # also the window length
HOP = 160
N_MELS = AUDIOLDM2.mel_bins
F_MAX = 8_000.0
MAGNITUDE_FLOOR = 1e-5
PEAK = 0.5  # the loudness step scales every clip to this peak
# JavisDiT++ v1.0's training pads the mel to a multiple of 8 frames (audio_cfg scale_factor).
MEL_MULTIPLE = 8


def mel_frames(num_samples: int) -> int:
    """Mel frames the front end gives `num_samples` samples at 16 kHz: the clip's hops,
    rounded up to a multiple of MEL_MULTIPLE."""
    return math.ceil((num_samples // HOP) / MEL_MULTIPLE) * MEL_MULTIPLE


class AudioLDM2Mel(nn.Module):
    """mono waveform [B, N] at 16 kHz -> log-mel [B, mel_frames(N), 64] (time-major)."""

    def __init__(self):
        super().__init__()
        fbank = AF.melscale_fbanks(
            N_FFT // 2 + 1, f_min=0.0, f_max=F_MAX, n_mels=N_MELS, sample_rate=SAMPLE_RATE,
            norm="slaney", mel_scale="slaney",
        )  # [n_freqs, n_mels]
        self.register_buffer("mel_basis", fbank, persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform.float()
        x = x - x.mean(dim=-1, keepdim=True)
        x = (x / (x.abs().amax(dim=-1, keepdim=True) + 1e-8) * PEAK).clamp(-1.0, 1.0)
        spectrum = torch.stft(
            x, N_FFT, hop_length=HOP, win_length=N_FFT, window=self.window, center=True,
            pad_mode="reflect", return_complex=True,
        )  # [B, n_freqs, 1 + N // hop]
        mel = torch.matmul(spectrum.abs().transpose(1, 2), self.mel_basis)  # [B, frames, 64]
        log_mel = torch.log(mel.clamp(min=MAGNITUDE_FLOOR))
        target = mel_frames(waveform.shape[-1])
        if log_mel.shape[1] >= target:
            return log_mel[:, :target]
        return nn.functional.pad(log_mel, (0, 0, 0, target - log_mel.shape[1]))  # log-domain zeros, as upstream


def read_config(path: str, role: str, class_names: tuple[str, ...]) -> dict | None:
    """The config.json beside the weight file at `path`, or None when there is none.
    One that describes another model is refused rather than ignored."""
    beside = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    if not os.path.isfile(beside):
        return None
    with open(beside, encoding="utf-8") as f:
        config = json.load(f)
    name = config.get("_class_name") or (config.get("architectures") or [None])[0]
    if name not in class_names:
        raise ValueError(
            f"{beside} describes a {name or 'model of unknown class'}, not AudioLDM2's {role} ({class_names[0]}); "
            f"keep the {role} file with its own config.json, or alone in its folder"
        )
    return config


def shipped_config(role: str) -> dict:
    with open(os.path.join(CONFIGS, f"audioldm2_{role}.json"), encoding="utf-8") as f:
        return json.load(f)


def vae_config(state_dict: dict[str, torch.Tensor], beside: dict | None) -> dict:
    """AutoencoderKL arguments: the config beside the file, else the shipped one with the
    architecture sizes the weights show (tiny test models, other widths)."""
    config = dict(beside or shipped_config("vae"))
    if beside is None:
        levels = 1 + max(int(k.split(".")[2]) for k in state_dict if k.startswith("encoder.down_blocks."))
        resnets = 1 + max(int(k.split(".")[4]) for k in state_dict if k.startswith("encoder.down_blocks.0.resnets."))
        config.update(
            in_channels=state_dict["encoder.conv_in.weight"].shape[1],
            out_channels=state_dict["decoder.conv_out.weight"].shape[0],
            latent_channels=state_dict["quant_conv.weight"].shape[0] // 2,
            block_out_channels=[state_dict[f"encoder.down_blocks.{i}.resnets.0.conv1.weight"].shape[0] for i in range(levels)],
            layers_per_block=resnets,
            down_block_types=["DownEncoderBlock2D"] * levels,
            up_block_types=["UpDecoderBlock2D"] * levels,
        )
    return {k: v for k, v in config.items() if not k.startswith("_")}


def vocoder_config(state_dict: dict[str, torch.Tensor], beside: dict | None, source: str) -> SpeechT5HifiGanConfig:
    """SpeechT5HifiGan config: the one beside the file, else the shipped one with the sizes
    the weights show. Strides, dilations and slopes are not in the weights."""
    config = dict(beside or shipped_config("vocoder"))
    if beside is None:
        stages = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("upsampler."))
        if stages != len(config["upsample_rates"]):
            raise ValueError(
                f"{source} has {stages} upsampling stages, AudioLDM2's vocoder has {len(config['upsample_rates'])}; "
                "put its config.json beside it"
            )
        kernels = len(config["resblock_kernel_sizes"])
        config.update(
            model_in_dim=state_dict["conv_pre.weight"].shape[1],
            upsample_initial_channel=state_dict["conv_pre.weight"].shape[0],
            upsample_kernel_sizes=[state_dict[f"upsampler.{i}.weight"].shape[-1] for i in range(stages)],
            resblock_kernel_sizes=[state_dict[f"resblocks.{j}.convs1.0.weight"].shape[-1] for j in range(kernels)],
        )
    known = SpeechT5HifiGanConfig().to_dict()
    return SpeechT5HifiGanConfig(**{k: v for k, v in config.items() if k in known and k not in ("model_type", "transformers_version")})


class AudioLDM2Codec(ModuleCodec, AudioCodec):
    # The vocoder moves with the VAE; the mel front end follows the device but stays float32.
    networks = ("vae", "vocoder")
    float32_modules = ("mel",)

    # No decode_chunks margin: the VAE decoder's GroupNorm and mid-block attention see the
    # whole clip, so a window decodes differently; long clips are decoded whole.

    def __init__(self, vae: AutoencoderKL, vocoder: SpeechT5HifiGan):
        if vae.config.in_channels != 1 or vae.config.out_channels != 1:
            raise ValueError(
                f"this AutoencoderKL takes {vae.config.in_channels}-channel images, AudioLDM2's VAE one-channel mels: "
                "pick cvssp/audioldm2's vae/diffusion_pytorch_model.safetensors"
            )
        if vocoder.config.model_in_dim != N_MELS or math.prod(vocoder.config.upsample_rates) != HOP:
            raise ValueError(
                f"vocoder ({vocoder.config.model_in_dim} mels, hop {math.prod(vocoder.config.upsample_rates)}) "
                f"is not AudioLDM2's ({N_MELS} mels, hop {HOP}): pick cvssp/audioldm2's vocoder/model.safetensors"
            )
        levels = len(vae.config.block_out_channels)
        self.vae = vae
        self.vocoder = vocoder
        self.mel = AudioLDM2Mel()
        self.time_stride = 2 ** (levels - 1)  # the VAE downsamples time and mel bins alike
        # AUDIOLDM2 for the released VAE; other depths or widths (tiny test models) as they are.
        self.geometry = dataclasses.replace(
            AUDIOLDM2, channels=vae.config.latent_channels, latent_rate=SAMPLE_RATE / (HOP * self.time_stride),
            frequency_bins=N_MELS // self.time_stride,
        )
        self.scaling_factor = float(vae.config.scaling_factor)

    def latent_frames(self, seconds: float) -> int:
        """Latent frames encode() makes of `seconds` of audio: the front end pads the mel to
        a multiple of MEL_MULTIPLE frames, so this rounds up where the geometry's rounds down."""
        return mel_frames(math.floor(seconds * self.sample_rate)) // self.time_stride

    @torch.no_grad()
    def encode(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        mono = self.prepare_waveform(waveform, sample_rate).to(self.device)
        log_mel = self.mel(mono)[:, None]  # [B, 1, T_mel, 64]: time is the image height
        posterior = self.vae.encode(log_mel.to(self.dtype)).latent_dist
        latents = posterior.mean.float() * self.scaling_factor  # [B, 8, T_mel/4, 16]
        return latents.transpose(-1, -2).contiguous()  # [B, 8, 16, T]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        latents = self.check_latents(latents)
        z = latents.transpose(-1, -2).to(self.device, torch.float32) / self.scaling_factor
        log_mel = self.vae.decode(z.to(self.dtype)).sample[:, 0]  # [B, T_mel, 64]
        waveform = self.vocoder(log_mel.to(next(self.vocoder.parameters()).dtype))  # [B, 160 T_mel + 32]
        return waveform[:, None, : self.num_samples(latents.shape[-1])].float()


def load_audioldm2_codec(vae_file: str, vocoder_file: str, dtype=None, device="cpu") -> AudioLDM2Codec:
    """The codec from AudioLDM2's VAE and vocoder weight files (see load_audio_codec for folders)."""
    vae_state = strip_prefix(read_state_dict(vae_file, what="AudioLDM2's VAE (vae/diffusion_pytorch_model.safetensors)"),
                             ("vae.", "first_stage_model."))
    config = vae_config(vae_state, read_config(vae_file, "vae", ("AutoencoderKL",)))
    vae = build_exactly(lambda: AutoencoderKL(**config), vae_state, vae_file, dtype).to(device).eval()
    vocoder_state = strip_prefix(read_state_dict(vocoder_file, what="AudioLDM2's vocoder (vocoder/model.safetensors)"),
                                 ("vocoder.",))
    hifigan = vocoder_config(vocoder_state, read_config(vocoder_file, "vocoder", ("SpeechT5HifiGan",)), vocoder_file)
    vocoder = build_exactly(lambda: SpeechT5HifiGan(hifigan), vocoder_state, vocoder_file, dtype).to(device).eval()
    return AudioLDM2Codec(vae, vocoder)
