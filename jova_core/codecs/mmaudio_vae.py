"""MMAudio's mel VAE (v1-16.pth / v1-44.pth) hosted in diffusers' `MMAudioVAE`.

The released files hold the *raw* weights of EDM2-style magnitude-preserving convolutions,
which normalise their weight on every call. diffusers' layers apply the weight as stored,
so each conv weight is folded once at load time: w = normalize(w) / sqrt(fan_in).
The architecture (mel bins, latent channels, width) is read from the weight shapes.
"""

from __future__ import annotations

import math

import torch
from diffusers import MMAudioVAE
from diffusers.models.autoencoders.autoencoder_mmaudio import MMAudioMelSpectrogram, normalize

from ..weights import build_exactly, strip_prefix
from .mel import MEL_16K, MEL_44K, MelConfig

# Mel front end per mel-bin count of the VAE.
MEL_FOR_BINS = {MEL_16K.n_mels: MEL_16K, MEL_44K.n_mels: MEL_44K}


def fold_mp_weight(weight: torch.Tensor) -> torch.Tensor:
    """Raw magnitude-preserving conv weight [out, in, k] -> the weight it applies at inference."""
    w = weight.float()
    fan_in = w[0].numel()
    return (normalize(w) / math.sqrt(fan_in)).to(weight.dtype)


def mmaudio_vae_config(state_dict: dict[str, torch.Tensor], source: str) -> tuple[dict, MelConfig]:
    """MMAudioVAE constructor arguments and mel front end for a raw MMAudio VAE state dict."""
    needed = ("encoder.conv_in.weight", "decoder.conv_in.weight", "data_mean", "data_std")
    missing = [k for k in needed if k not in state_dict]
    if missing:
        raise ValueError(
            f"{source} is not an MMAudio VAE (missing {', '.join(missing)}). "
            "Pick v1-16.pth (16 kHz) or v1-44.pth (44.1 kHz) from MMAudio's release."
        )
    hidden, mel_bins, _ = state_dict["encoder.conv_in.weight"].shape
    latent_channels = state_dict["decoder.conv_in.weight"].shape[1]
    if mel_bins not in MEL_FOR_BINS:
        raise ValueError(f"{source}: MMAudio VAE with {mel_bins} mel bins is unknown (expected 80 or 128)")
    mel = MEL_FOR_BINS[mel_bins]
    levels = 1 + max(int(k.split(".")[2]) for k in state_dict if k.startswith("encoder.down."))
    multipliers = tuple(state_dict[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] // hidden for i in range(levels))
    blocks = 1 + max(int(k.split(".")[4]) for k in state_dict if k.startswith("encoder.down.0.block."))
    config = dict(
        mel_bins=mel_bins, latent_channels=latent_channels, hidden_channels=hidden,
        channel_multipliers=multipliers, layers_per_block=blocks,
        sample_rate=mel.sample_rate, n_fft=mel.n_fft, hop_length=mel.hop_length,
    )
    return config, mel


def mmaudio_vae_from_state_dict(
    state_dict: dict[str, torch.Tensor], source: str, dtype=None, device="cpu"
) -> tuple[MMAudioVAE, MelConfig]:
    """diffusers MMAudioVAE holding the folded weights of a raw MMAudio VAE state dict, eval mode."""
    state_dict = strip_prefix(state_dict, ("module.", "model."))
    config, mel = mmaudio_vae_config(state_dict, source)
    folded = {}
    for key, value in state_dict.items():
        # learnable_gain and the data statistics are used as stored; every conv weight is folded.
        folded[f"vae.{key}"] = fold_mp_weight(value) if key.endswith(".weight") else value
    # diffusers' own mel front end is a deterministic buffer set, never in the files (and unused
    # for encoding: it is wrong for 16 kHz); fill it from a fresh CPU instance.
    front = MMAudioMelSpectrogram(config["sample_rate"], config["n_fft"], config["mel_bins"], config["hop_length"])
    folded.update({f"mel_converter.{k}": v for k, v in front.state_dict().items()})
    vae = build_exactly(lambda: MMAudioVAE(**config), folded, source, dtype)
    return vae.to(device).eval(), mel
