"""Stable Audio Open 1.0 VAE (diffusers `AutoencoderOobleck`) behind the AudioCodec interface,
used as daVinci-MagiHuman uses it (reference magihuman.md "Codecs").

One file, no vocoder: stable-audio-tools' `model.safetensors` (the VAE is its
`pretransform.model.*` keys; the DiT and conditioners in it are skipped) or diffusers'
`vae/diffusion_pytorch_model.safetensors`. Stereo waveform <-> latents [B, 64, T], 2048
samples per latent frame.

MagiHuman's 51.2 kHz trick: the VAE is nominally 44.1 kHz, but input audio is made mono,
resampled to 51,200 Hz and duplicated to two channels, so one latent frame is 1/25 s (the
video's frame rate). The decoder's stereo output is taken as 51.2 kHz and resampled by
441/512 to 44.1 kHz: 1764 samples per latent frame. MagiHuman resamples with scipy's FFT
resampler over the whole clip; we use torchaudio's windowed-sinc resampler (same band
limit, differs only near the clip's ends, see tests/test_codecs_stable_audio.py).
"""

from __future__ import annotations

import math
import re

import torch
import torchaudio.functional as AF
from diffusers import AutoencoderOobleck

from ..geometry import STABLE_AUDIO_OPEN
from ..weights import build_exactly, iter_tensors, strip_prefix
from .base import AudioCodec, ModuleCodec

# stable-audio-tools keeps the VAE of a full Stable Audio checkpoint under this prefix.
SAT_PREFIX = "pretransform.model."
DECODED_SAMPLE_RATE = 44_100  # the VAE's nominal rate, what MagiHuman writes
# diffusers' AutoencoderOobleck defaults are Stable Audio Open's VAE (its vae/config.json).
SAO_CONFIG = dict(encoder_hidden_size=128, downsampling_ratios=[2, 4, 4, 8, 8], channel_multiples=[1, 2, 4, 8, 16],
                  decoder_channels=128, decoder_input_channels=64, audio_channels=2, sampling_rate=44_100)


def _residual_unit(rest: str) -> str:
    """stable-audio-tools ResidualUnit layers (snake, conv k7, snake, conv k1) -> diffusers names."""
    index, leaf = rest.split(".", 1)
    return f"{('snake1', 'conv1', 'snake2', 'conv2')[int(index)]}.{leaf}"


def _sat_to_diffusers(key: str, blocks: int) -> str:
    """One stable-audio-tools Oobleck key -> AutoencoderOobleck's.

    Encoder and decoder are `layers.0` conv, `layers.1..blocks` blocks, then snake and conv.
    Encoder block: three residual units, snake, strided conv. Decoder block: snake,
    transposed conv, three residual units."""
    part, index, rest = re.match(r"(encoder|decoder)\.layers\.(\d+)\.(.+)$", key).groups()
    index = int(index)
    if index == 0:
        return f"{part}.conv1.{rest}"
    if index == blocks + 1:
        return f"{part}.snake1.{rest}"
    if index == blocks + 2:
        return f"{part}.conv2.{rest}"
    block = f"{part}.block.{index - 1}"
    layer, leaf = re.match(r"layers\.(\d+)\.(.+)$", rest).groups()  # a block is a Sequential `layers`
    layer = int(layer)
    if part == "encoder":
        if layer < 3:
            return f"{block}.res_unit{layer + 1}.{_residual_unit(leaf.split('.', 1)[1])}"
        return f"{block}.{('snake1', 'conv1')[layer - 3]}.{leaf}"
    if layer < 2:
        return f"{block}.{('snake1', 'conv_t1')[layer]}.{leaf}"
    return f"{block}.res_unit{layer - 1}.{_residual_unit(leaf.split('.', 1)[1])}"


def convert_stable_audio_vae_to_diffusers(state_dict: dict[str, torch.Tensor], blocks: int = 5) -> dict[str, torch.Tensor]:
    """stable-audio-tools Oobleck names -> AutoencoderOobleck's; snake alpha/beta [C] -> [1, C, 1]."""
    out = {}
    for key, value in state_dict.items():
        new = _sat_to_diffusers(key, blocks)
        if new.endswith((".alpha", ".beta")) and value.ndim == 1:
            value = value.view(1, -1, 1)
        out[new] = value
    return out


def is_diffusers_oobleck(keys) -> bool:
    return "encoder.conv1.weight_v" in keys and any(k.startswith("encoder.block.") for k in keys)


def is_sat_oobleck(keys) -> bool:
    return "encoder.layers.0.weight_v" in keys and "decoder.layers.0.weight_v" in keys


def oobleck_config(state_dict: dict[str, torch.Tensor]) -> dict:
    """AutoencoderOobleck's config read off its weights (diffusers names): widths, and each
    encoder block's stride from its downsampling conv (kernel 2 x stride)."""
    hidden = state_dict["encoder.conv1.weight_v"].shape[0]
    downsamplers = [state_dict[f"encoder.block.{i}.conv1.weight_v"]
                    for i in range(sum(1 for k in state_dict if re.fullmatch(r"encoder\.block\.\d+\.conv1\.weight_v", k)))]
    return dict(SAO_CONFIG, encoder_hidden_size=hidden,
                downsampling_ratios=[w.shape[-1] // 2 for w in downsamplers],
                channel_multiples=[w.shape[0] // hidden for w in downsamplers],
                decoder_channels=state_dict["decoder.conv2.weight_v"].shape[1],
                decoder_input_channels=state_dict["decoder.conv1.weight_v"].shape[1],
                audio_channels=state_dict["encoder.conv1.weight_v"].shape[1])


def stable_audio_vae_from_state_dict(state_dict: dict[str, torch.Tensor], source: str, dtype=None,
                                     device="cpu") -> AutoencoderOobleck:
    """AutoencoderOobleck holding exactly the Stable Audio Open VAE of `state_dict` (either naming)."""
    if any(k.startswith(SAT_PREFIX) for k in state_dict):
        state_dict = {k[len(SAT_PREFIX):]: v for k, v in state_dict.items() if k.startswith(SAT_PREFIX)}
    state_dict = strip_prefix(state_dict, ("vae.",))
    if is_sat_oobleck(state_dict):
        blocks = max(int(m.group(1)) for k in state_dict if (m := re.match(r"encoder\.layers\.(\d+)\.", k))) - 2
        state_dict = convert_stable_audio_vae_to_diffusers(state_dict, blocks)
    elif not is_diffusers_oobleck(state_dict):
        sample = ", ".join(sorted(state_dict)[:4])
        raise ValueError(
            f"{source} is not the Stable Audio Open VAE (no pretransform.model.* / encoder.layers.* / encoder.block.* "
            f"keys; it starts with: {sample}). Pick stable-audio-open-1.0's model.safetensors or its "
            "vae/diffusion_pytorch_model.safetensors."
        )
    config = oobleck_config(state_dict)
    vae = build_exactly(lambda: AutoencoderOobleck(**config), state_dict, source, dtype)
    return vae.to(device).eval()


class StableAudioCodec(ModuleCodec, AudioCodec):
    """Any waveform -> mono at 51.2 kHz duplicated to stereo -> latents [B, 64, T] (25 per second);
    latents -> stereo [B, 2, T * 1764] at 44.1 kHz.

    encode() returns a posterior sample (mean + (softplus(scale) + 1e-4) * noise) as MagiHuman
    does, or the mean with sample_posterior=False; pass a generator for repeatable samples."""

    geometry = STABLE_AUDIO_OPEN

    # decode_chunks: Oobleck's decoder is convolutional and the 51.2 -> 44.1 kHz resampler a
    # short sinc; 0.64 s of context each side decodes a tiny random VAE to float rounding.
    chunk_margin_latents = 16

    def __init__(self, vae: AutoencoderOobleck, sample_posterior: bool = True):
        stride = math.prod(vae.config.downsampling_ratios)
        found = (vae.config.decoder_input_channels, vae.config.audio_channels, stride)
        wanted = (STABLE_AUDIO_OPEN.channels, STABLE_AUDIO_OPEN.waveform_channels, STABLE_AUDIO_OPEN.samples_per_latent)
        if found != wanted:
            raise ValueError(
                "this Oobleck VAE has {} latent channels, {} audio channels and {}x downsampling; MagiHuman needs "
                "Stable Audio Open 1.0's ({}, {}, {}x): pick stable-audio-open-1.0's VAE".format(*found, *wanted)
            )
        self.vae = vae
        self.sample_posterior = sample_posterior

    @property
    def decoded_sample_rate(self) -> int:
        return DECODED_SAMPLE_RATE

    @torch.no_grad()
    def encode(self, waveform: torch.Tensor, sample_rate: int, generator: torch.Generator | None = None) -> torch.Tensor:
        mono = self.prepare_waveform(waveform, sample_rate)  # [B, N] at 51.2 kHz
        stereo = mono[:, None].expand(-1, 2, -1).to(self.device, self.dtype)
        posterior = self.vae.encode(stereo).latent_dist
        latents = posterior.sample(generator) if self.sample_posterior else posterior.mean
        return latents.float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        latents = self.check_latents(latents)
        stereo = self.vae.decode(latents.to(self.device, self.dtype)).sample.float()  # [B, 2, T * 2048], "51.2 kHz"
        return AF.resample(stereo, self.sample_rate, self.decoded_sample_rate)


def load_stable_audio_codec(path: str, dtype=None, device="cpu") -> StableAudioCodec:
    what = "the Stable Audio Open VAE (stable-audio-open-1.0 model.safetensors or vae/diffusion_pytorch_model.safetensors)"
    # A full stable-audio-tools checkpoint also holds the DiT: keep only the VAE's tensors.
    state_dict = {}
    for key, tensor in iter_tensors(path, what):
        if key.startswith(SAT_PREFIX) or not key.startswith(("model.", "conditioner.", "pretransform.")):
            state_dict[key] = tensor
    return StableAudioCodec(stable_audio_vae_from_state_dict(state_dict, path, dtype=dtype, device=device))
