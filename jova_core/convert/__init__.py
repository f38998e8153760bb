"""Converters from public checkpoints to JoVA state dicts (pure key/tensor maps, no IO).

Each returns (config, state dict) -- a JoVAConfig, or a MagiHumanConfig for
daVinci-MagiHuman -- and refuses keys it cannot place; reading files, detecting what a file is and building the model live in jova_core.checkpoint.
"""

from .javisdit import convert_javisdit, is_javisdit
from .magihuman import convert_magihuman, is_magihuman
from .wan import convert_wan, wan_layout

__all__ = ["convert_javisdit", "convert_magihuman", "convert_wan", "is_javisdit", "is_magihuman", "wan_layout"]
