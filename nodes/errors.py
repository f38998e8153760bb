"""The pack's errors as ComfyUI shows them.

ComfyUI names a failed node's exception by its class's module path, and it imports a
custom-node folder under its path on disk: jova_core's own ValueErrors (WeightFileError,
StateDictMismatch, NotWritable) reached the user as
"/home/me/ComfyUI/custom_nodes/ComfyUI-JoVA.jova_core.weights.WeightFileError: <line>".
At the node boundary they become plain ValueErrors with the same one-line message.
"""

from __future__ import annotations

import functools

PACK = __name__.rpartition(".nodes.")[0]  # the name ComfyUI imported the pack under


def raise_plain_value_errors(node: type) -> type:
    """Wrap `node.execute` so a ValueError of a class defined in the pack is raised again
    as ValueError (chained to the original for the server log); returns `node`."""
    execute = node.execute.__func__

    @functools.wraps(execute)
    def plain(cls, *args, **kwargs):
        try:
            return execute(cls, *args, **kwargs)
        except ValueError as error:
            if type(error) is ValueError or not type(error).__module__.startswith(PACK + "."):
                raise
            raise ValueError(str(error)) from error

    node.execute = classmethod(plain)
    return node
