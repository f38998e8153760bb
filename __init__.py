"""ComfyUI-JoVA: joint video + audio generation (lip-synced speech) with JoVA, as ComfyUI nodes.

ComfyUI imports this folder as a package and calls ``comfy_entrypoint`` (V3 node API).
The pack's own parts are imported relatively: ComfyUI has a top-level module called
``nodes`` of its own, and an absolute ``import nodes`` here would get that one.
"""


async def comfy_entrypoint():
    # Imported here, not at module level, so the repository root stays importable
    # without ComfyUI (pytest walks package roots; the CLI lives in jova_core).
    from comfy_api.latest import ComfyExtension

    from .nodes import NODES

    class JoVAExtension(ComfyExtension):
        async def get_node_list(self):
            return list(NODES)

    return JoVAExtension()
