"""Text a node shows on itself in ComfyUI's frontend.

The frontend draws a node's progress text (PromptServer.send_progress_text, as core
GetImageSize uses it) on any node, custom ones without JavaScript included; a
ui {"text": ...} payload it draws only for nodes that bring their own JavaScript (core
PreviewAny). Both are sent: the first for the canvas, the second for /history and API users.
A node that shows text declares ``hidden=[io.Hidden.unique_id]`` so it knows its own id.
"""

from __future__ import annotations

from comfy_api.latest import ui
from server import PromptServer


def show_text(node_cls, text: str) -> ui.PreviewText:
    """Show `text` on the running node; returns the matching ui payload for NodeOutput(ui=...)."""
    node_id = node_cls.hidden.unique_id
    if node_id is not None and text:
        PromptServer.instance.send_progress_text(text, node_id)
    return ui.PreviewText(text)
