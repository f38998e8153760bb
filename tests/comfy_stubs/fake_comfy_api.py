"""Stand-in for ``comfy_api.latest`` (v0.33.0): ComfyExtension, InputImpl, Types.

The harness attaches ``io``/``IO`` (fake_io) and ``ui``/``UI`` (fake_ui) to this module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional


class ComfyExtension(ABC):
    async def on_load(self) -> None:
        pass

    @abstractmethod
    async def get_node_list(self) -> list:
        ...


@dataclass
class VideoComponents:
    images: object
    frame_rate: Fraction
    audio: Optional[dict] = None
    metadata: Optional[dict] = None
    alpha: object = None


class VideoFromComponents:
    def __init__(self, components: VideoComponents, bit_depth: int = 8):
        self._components = components

    def get_components(self) -> VideoComponents:
        return VideoComponents(images=self._components.images, audio=self._components.audio,
                               frame_rate=self._components.frame_rate)

    def get_dimensions(self) -> tuple[int, int]:
        return self._components.images.shape[2], self._components.images.shape[1]


class InputImpl:
    VideoFromComponents = VideoFromComponents


class Types:
    VideoComponents = VideoComponents
