"""A foreign state dict being converted: every key must be used exactly once.

Converters read tensors through `SourceStateDict.take`; `finish` then stops with the
list of keys nothing consumed, so an unknown variant of a format (an image-to-video
Wan, a JavisDiT with extra audio text weights, ...) is refused instead of silently
losing weights. Works on meta tensors too, which is how the manifest tests run.
"""

from __future__ import annotations

import torch

from ..identify import WRAPPER_PREFIXES


def strip_wrapper_prefix(state_dict: dict[str, torch.Tensor], marker: str) -> dict[str, torch.Tensor]:
    """Drop a prefix from WRAPPER_PREFIXES that every key carries, if `marker` (a key the
    bare format always has) shows up only behind it; otherwise return `state_dict`."""
    if marker in state_dict:
        return state_dict
    for prefix in WRAPPER_PREFIXES:
        if prefix + marker in state_dict and all(k.startswith(prefix) for k in state_dict):
            return {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


class SourceStateDict:
    def __init__(self, state_dict: dict[str, torch.Tensor], format_name: str):
        self.format_name = format_name
        self._left = dict(state_dict)
        self._all = state_dict

    def __contains__(self, key: str) -> bool:
        return key in self._all

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._all[key].shape)

    def keys(self) -> list[str]:
        return list(self._all)

    def take(self, key: str) -> torch.Tensor:
        if key not in self._all:
            raise KeyError(f"this {self.format_name} checkpoint lacks {key!r}; is the file complete?")
        self._left.pop(key, None)
        return self._all[key]

    def take_prefix(self, prefix: str) -> dict[str, torch.Tensor]:
        """All tensors under `prefix` (e.g. "blocks.3."), keyed by the rest of their name."""
        found = {k[len(prefix):]: self.take(k) for k in list(self._all) if k.startswith(prefix)}
        if not found:
            raise KeyError(f"this {self.format_name} checkpoint has no keys under {prefix!r}")
        return found

    def finish(self) -> None:
        if self._left:
            left = sorted(self._left)
            shown = ", ".join(left[:8]) + (f" ... (+{len(left) - 8} more)" if len(left) > 8 else "")
            raise KeyError(
                f"{len(left)} keys of this {self.format_name} checkpoint have no place in a JoVA model: "
                f"{shown}. It is probably a variant the converter does not support "
                "(image-to-video, extra adapters); convert the text-to-video checkpoint instead."
            )
