"""Stand-in for ComfyUI's ``server`` module: a PromptServer whose instance records the
progress texts nodes send (what the frontend would draw on the node)."""

from __future__ import annotations


class _Instance:
    def __init__(self):
        self.progress_texts: list[tuple[str, str]] = []

    def send_progress_text(self, text, node_id, sid=None) -> None:
        self.progress_texts.append((str(node_id), text if isinstance(text, str) else text.decode("utf-8")))


class PromptServer:
    instance = _Instance()
