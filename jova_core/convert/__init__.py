"""Converters from public checkpoints to JoVA state dicts (pure key/tensor maps, no IO).

Each returns (JoVAConfig, state dict) and refuses keys it cannot place; reading files,
detecting what a file is and building the model live in jova_core.checkpoint.
"""

from .javisdit import convert_javisdit, is_javisdit
from .wan import convert_wan, wan_layout

__all__ = ["convert_javisdit", "convert_wan", "is_javisdit", "wan_layout"]
