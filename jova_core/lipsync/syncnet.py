"""SyncNet (Chung & Zisserman, "Out of time", 2016) as released in joonson/syncnet_python,
the network behind the LSE-C / LSE-D lip-sync metrics.

Two towers map 0.2 s of picture and 0.2 s of sound into one 1024-d space where
matching pairs lie close together:

* lips: 5 consecutive face crops -> [1024];
* audio: the 13 x 20 MFCC window (20 MFCC frames at 100 Hz = 0.2 s) -> [1024].

The module keeps syncnet_python's attribute names and layer order (netcnnaud, netfcaud,
netcnnlip, netfclip, each an nn.Sequential), so its state dict has exactly the key
names and shapes of ``syncnet_v2.model`` and that file loads key for key.

Input convention (what syncnet_python feeds the released weights; anything else gives
meaningless embeddings):

* video at 25 fps; lip input [N, 3, 5, 224, 224] = (batch, colour, time, height, width):
  5 consecutive 224 x 224 face crops in **BGR** order (OpenCV's), float **0..255**, no
  mean subtraction or scaling. Window n starts at video frame n.
* audio at 16 kHz mono, as 16-bit PCM values (-32768..32767, not -1..1); MFCC as
  python_speech_features' defaults compute it (13 coefficients, 100 frames per second,
  see ``jova_core.lipsync.syncnet_input.speech_mfcc``); audio input [N, 1, 13, 20]:
  window n is MFCC frames 4n .. 4n+19, i.e. the sound of video frames n .. n+4.
* eval mode (BatchNorm uses its running statistics).
"""

from __future__ import annotations

import os

import torch
from torch import nn

SYNCNET_FPS = 25
SYNCNET_SAMPLE_RATE = 16_000
MFCC_FRAMES_PER_VIDEO_FRAME = 4  # 100 Hz MFCC / 25 fps
WINDOW_FRAMES = 5  # video frames per lip window
MFCC_WINDOW = WINDOW_FRAMES * MFCC_FRAMES_PER_VIDEO_FRAME  # 20 MFCC frames per audio window
MFCC_COEFFICIENTS = 13
CROP_SIZE = 224
EMBEDDING_DIM = 1024
WEIGHTS_HINT = (
    "SyncNet weights are syncnet_v2.model from joonson/syncnet_python (fetched by its download_model.sh)"
)

# Stages of conv -> BatchNorm -> ReLU [-> max-pool], in syncnet_python's order:
# (out_channels, kernel, stride, padding, pool) with pool = (kernel, stride, padding) or None.
# The audio tower's first pool is 1x1 (an identity); it stays because it holds a slot in
# the Sequential, and the released key names count it.
_AUDIO_STAGES = (  # on [N, 1, 13, 20] MFCC windows
    (64, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1), (0, 0))),  # -> 64 x 13 x 20
    (192, (3, 3), (1, 1), (1, 1), ((3, 3), (1, 2), (0, 0))),  # -> 192 x 11 x 9
    (384, (3, 3), (1, 1), (1, 1), None),
    (256, (3, 3), (1, 1), (1, 1), None),
    (256, (3, 3), (1, 1), (1, 1), ((3, 3), (2, 2), (0, 0))),  # -> 256 x 5 x 4
    (512, (5, 4), (1, 1), (0, 0), None),  # -> 512 x 1 x 1
)
_LIP_STAGES = (  # on [N, 3, 5, 224, 224] crops
    (96, (5, 7, 7), (1, 2, 2), (0, 0, 0), ((1, 3, 3), (1, 2, 2), (0, 0, 0))),  # -> 96 x 1 x 54 x 54
    (256, (1, 5, 5), (1, 2, 2), (0, 1, 1), ((1, 3, 3), (1, 2, 2), (0, 1, 1))),  # -> 256 x 1 x 13 x 13
    (256, (1, 3, 3), (1, 1, 1), (0, 1, 1), None),
    (256, (1, 3, 3), (1, 1, 1), (0, 1, 1), None),
    (256, (1, 3, 3), (1, 1, 1), (0, 1, 1), ((1, 3, 3), (1, 2, 2), (0, 0, 0))),  # -> 256 x 1 x 6 x 6
    (512, (1, 6, 6), (1, 1, 1), (0, 0, 0), None),  # -> 512 x 1 x 1 x 1
)


def _conv_tower(stages, in_channels: int, conv, norm, pool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for out_channels, kernel, stride, padding, pooling in stages:
        layers += [conv(in_channels, out_channels, kernel, stride, padding), norm(out_channels), nn.ReLU()]
        if pooling is not None:
            layers.append(pool(*pooling))
        in_channels = out_channels
    return nn.Sequential(*layers)


def _projection(features: int, embedding_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(features, features), nn.BatchNorm1d(features), nn.ReLU(), nn.Linear(features, embedding_dim)
    )


class SyncNet(nn.Module):
    """syncnet_python's ``SyncNetModel.S``; see the module docstring for the inputs."""

    def __init__(self, embedding_dim: int = EMBEDDING_DIM):
        super().__init__()
        self.netcnnaud = _conv_tower(_AUDIO_STAGES, 1, nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d)
        self.netfcaud = _projection(512, embedding_dim)
        self.netcnnlip = _conv_tower(_LIP_STAGES, 3, nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d)
        self.netfclip = _projection(512, embedding_dim)

    def embed_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """[N, 1, 13, 20] MFCC windows -> [N, 1024]."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def embed_lips(self, crops: torch.Tensor) -> torch.Tensor:
        """[N, 3, 5, 224, 224] BGR 0..255 face-crop windows -> [N, 1024]."""
        return self.netfclip(self.netcnnlip(crops).flatten(1))


def load_syncnet(path: str, device="cpu") -> SyncNet:
    """SyncNet in eval mode from ``syncnet_v2.model`` (a plain state dict).

    Read with torch.load(weights_only=True). Every key and shape must match; the only
    keys allowed to be absent are BatchNorm's ``num_batches_tracked`` counters (the
    released file predates them; they only matter in training). A file saved from
    syncnet_python's SyncNetInstance (keys prefixed ``__S__.``) is accepted too.
    """
    from ..weights import StateDictMismatch, build_exactly, read_state_dict, strip_prefix

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no SyncNet weights at {path!r}; {WEIGHTS_HINT}")
    state = strip_prefix(read_state_dict(path, what=WEIGHTS_HINT), ("__S__.",))
    # BatchNorm's counters start at 0 (as a fresh SyncNet's do) where the file lacks them.
    with torch.device("meta"):
        counters = [k for k in SyncNet().state_dict() if k.endswith("num_batches_tracked")]
    state = {**{k: torch.tensor(0, dtype=torch.long) for k in counters if k not in state}, **state}
    try:
        # float32 as the module's own parameters: a half-precision file is upcast, not adopted.
        model = build_exactly(SyncNet, state, f"{path} (as SyncNet weights)", dtype=torch.float32)
    except StateDictMismatch as error:
        raise ValueError(f"{error}; {WEIGHTS_HINT}") from None
    return model.eval().to(device)
