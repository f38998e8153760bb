"""Stand-in for ComfyUI's ``comfy_api.latest.ui`` (v0.33.0): the UI outputs the pack returns."""

from __future__ import annotations


class SavedResult(dict):
    def __init__(self, filename: str, subfolder: str, type):
        super().__init__(filename=filename, subfolder=subfolder, type=getattr(type, "value", type))


class PreviewText:
    def __init__(self, value: str, **kwargs):
        self.value = value

    def as_dict(self):
        return {"text": (self.value,)}


class PreviewVideo:
    def __init__(self, values: list, **kwargs):
        self.values = values

    def as_dict(self):
        return {"images": self.values, "animated": (True,)}


class PreviewImage:
    """The real one saves PNGs to the temp folder; here the images are kept for inspection."""

    def __init__(self, image, animated: bool = False, cls=None, **kwargs):
        self.image = image
        self.animated = animated

    def as_dict(self):
        return {"images": [], "animated": (self.animated,)}
