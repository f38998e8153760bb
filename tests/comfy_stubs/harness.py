"""Installs the ComfyUI stand-ins and loads the pack the way ComfyUI does, for node tests.

Nothing here is a conftest: only test files that call ``comfy_stubs()`` see the fake
``comfy`` / ``folder_paths`` / ``comfy_api`` / ``server`` modules, and only until the ``with`` block
ends, so other tests in the same session never import them by accident. If a real
ComfyUI module is already imported, installation refuses instead of shadowing it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace

import torch

STUBS = Path(__file__).resolve().parent
REPO = STUBS.parents[1]
# ComfyUI registers a pack under its folder path; any name that is not "nodes" or
# "jova_core" shows the same thing: the pack must import its parts relatively.
PACK_NAME = "comfyui_jova_pack_under_test"

STUB_MODULES = ("comfy", "comfy.model_management", "comfy.model_patcher", "comfy.utils", "folder_paths",
                "comfy_api", "comfy_api.latest", "comfy_api.latest.io", "comfy_api.latest.ui", "server")


def _exec_file(name: str, filename: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, STUBS / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _namespace_module(name: str, namespace: type) -> ModuleType:
    module = ModuleType(name)
    for key, value in vars(namespace).items():
        if not key.startswith("__"):
            setattr(module, key, value.__func__ if isinstance(value, staticmethod) else value)
    sys.modules[name] = module
    return module


@contextmanager
def comfy_stubs(base_dir: str | Path):
    """Fake ComfyUI modules in sys.modules (rooted at base_dir) for the duration of the block."""
    present = [name for name in STUB_MODULES if name in sys.modules]
    if present:
        raise RuntimeError(f"real ComfyUI modules {present} are already imported; the stand-ins will not shadow them")
    try:
        fake_comfy = _exec_file("_jova_fake_comfy", "fake_comfy.py")
        comfy = ModuleType("comfy")
        sys.modules["comfy"] = comfy
        for part in ("model_management", "model_patcher", "utils"):
            setattr(comfy, part, _namespace_module(f"comfy.{part}", getattr(fake_comfy, part)))
        # utils.progress and model_management.loaded are lists shared by reference with the
        # namespaces, so tests read them on the module objects.
        server = _exec_file("server", "fake_server.py")
        folder_paths = _exec_file("folder_paths", "fake_folder_paths.py")
        folder_paths.configure(str(base_dir))
        io = _exec_file("comfy_api.latest.io", "fake_io.py")
        ui = _exec_file("comfy_api.latest.ui", "fake_ui.py")
        latest = _exec_file("comfy_api.latest", "fake_comfy_api.py")
        latest.io = latest.IO = io
        latest.ui = latest.UI = ui
        comfy_api = ModuleType("comfy_api")
        comfy_api.latest = latest
        sys.modules["comfy_api"] = comfy_api
        yield SimpleNamespace(comfy=comfy, folder_paths=folder_paths, io=io, ui=ui, latest=latest, server=server,
                              base_dir=Path(base_dir))
    finally:
        for name in (*STUB_MODULES, "_jova_fake_comfy"):
            sys.modules.pop(name, None)
        unload_pack()


def load_pack(name: str = PACK_NAME) -> ModuleType:
    """Import the repository root as a package named `name`, as ComfyUI's custom-node loader does."""
    spec = importlib.util.spec_from_file_location(name, REPO / "__init__.py", submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def unload_pack(name: str = PACK_NAME) -> None:
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def node_list(pack: ModuleType) -> list:
    """What ComfyUI gets from the pack: comfy_entrypoint() -> extension -> get_node_list()."""
    async def _get():
        extension = await pack.comfy_entrypoint()
        await extension.on_load()
        return await extension.get_node_list()
    return asyncio.run(_get())


def check_inputs(schema, inputs: dict) -> None:
    """ComfyUI's checks before execute: required present, no unknown names, widget values in range."""
    known = {i.id: i for i in schema.inputs}
    unknown = sorted(set(inputs) - set(known))
    if unknown:
        raise AssertionError(f"{schema.node_id}: unknown inputs {unknown}")
    for inp in schema.inputs:
        if inp.id not in inputs:
            if not inp.optional:
                raise AssertionError(f"{schema.node_id}: required input {inp.id!r} missing")
            continue
        value = inputs[inp.id]
        io_type = inp.io_type
        if io_type == "COMBO" and value not in inp.options:
            raise AssertionError(f"{schema.node_id}.{inp.id}: {value!r} not in {inp.options}")
        if io_type in ("INT", "FLOAT"):
            if inp.min is not None and value < inp.min or inp.max is not None and value > inp.max:
                raise AssertionError(f"{schema.node_id}.{inp.id}: {value} outside [{inp.min}, {inp.max}]")
        if io_type == "INT" and not isinstance(value, int):
            raise AssertionError(f"{schema.node_id}.{inp.id}: {value!r} is not an int")
        if io_type == "BOOLEAN" and not isinstance(value, bool):
            raise AssertionError(f"{schema.node_id}.{inp.id}: {value!r} is not a bool")
        if io_type == "STRING" and not isinstance(value, str):
            raise AssertionError(f"{schema.node_id}.{inp.id}: {value!r} is not a string")


def check_output(io_type: str, value) -> None:
    """The run-time shapes ComfyUI's core nodes expect of each core type."""
    if io_type == "IMAGE":
        assert isinstance(value, torch.Tensor) and value.dim() == 4 and value.shape[-1] == 3, value.shape
        assert value.dtype == torch.float32 and float(value.min()) >= 0.0 and float(value.max()) <= 1.0
    elif io_type == "MASK":
        assert isinstance(value, torch.Tensor) and value.dim() == 3, value.shape
        assert float(value.min()) >= 0.0 and float(value.max()) <= 1.0
    elif io_type == "AUDIO":
        assert set(value) >= {"waveform", "sample_rate"}, value.keys()
        assert value["waveform"].dim() == 3 and isinstance(value["sample_rate"], int)
    elif io_type == "LATENT":
        assert isinstance(value, dict) and isinstance(value["samples"], torch.Tensor)
    elif io_type == "CONDITIONING":
        assert isinstance(value, list) and value
        for tensor, extra in value:
            assert isinstance(tensor, torch.Tensor) and tensor.dim() == 3 and isinstance(extra, dict)
    elif io_type == "VIDEO":
        assert hasattr(value, "get_components")


def run_node(node_cls, **inputs):
    """Validate `inputs` against the node's schema, run execute, check the outputs' types."""
    schema = node_cls.GET_SCHEMA()
    check_inputs(schema, inputs)
    result = node_cls.execute(**inputs)
    assert type(result).__name__ == "NodeOutput", f"{schema.node_id} returned {type(result)}"
    assert len(result.args) == len(schema.outputs), (schema.node_id, len(result.args), len(schema.outputs))
    for output, value in zip(schema.outputs, result.args):
        check_output(output.io_type, value)
    return result
