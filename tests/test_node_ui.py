"""What a user sees of the nodes in ComfyUI's frontend: tooltips, model folders, text on the node.

- Every input and output of every node has a tooltip (hovering a widget or socket explains it).
- Loaders with file lists declare the model folders each list reads (FILE_FOLDERS): a file
  placed in exactly those folders shows up in the list, and the tooltip names them; the
  workflows hand the same folders to the missing-models panel (tests/test_workflows.py).
- Text a node reports (Empty Latent's rounding, the sampler's notes, the mouth report) is
  sent as progress text to the running node's id, which the frontend draws on any node,
  and returned as the ui {"text": ...} payload for /history.
- The README's node table lists every node.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest
from comfy_stubs import harness
from comfy_stubs.fake_io import HiddenHolder

REPO = Path(__file__).resolve().parents[1]
# Every folder the pack's loaders could read.
MODEL_FOLDERS = ("jova", "diffusion_models", "jova_audio", "vae", "text_encoders", "loras")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfyui")
    with harness.comfy_stubs(base) as stubs:
        # One weight file per folder, named after it, so each file list shows where it looks.
        for folder in MODEL_FOLDERS:
            (base / "models" / folder).mkdir(parents=True, exist_ok=True)
            (base / "models" / folder / f"probe_{folder}.safetensors").write_bytes(b"")
        stubs.node_classes = harness.node_list(harness.load_pack())
        stubs.n = sys.modules[harness.PACK_NAME + ".nodes"]
        stubs.core = lambda name: sys.modules[f"{harness.PACK_NAME}.jova_core.{name}"]
        yield stubs


def schemas(env):
    return [(cls, cls.GET_SCHEMA()) for cls in env.node_classes]


def test_every_input_and_output_has_a_tooltip(env):
    missing = [f"{schema.node_id}.{i.id}" for _, schema in schemas(env) for i in schema.inputs
               if not (i.tooltip or "").strip()]
    missing += [f"{schema.node_id} -> {o.id}" for _, schema in schemas(env) for o in schema.outputs
                if not (o.tooltip or "").strip()]
    assert missing == []


def test_loaders_declare_the_folders_their_file_lists_read(env):
    checked = 0
    for cls, schema in schemas(env):
        declared = getattr(cls, "FILE_FOLDERS", {})
        for inp in schema.inputs:
            if inp.io_type != "COMBO":
                continue
            shown = {f for f in MODEL_FOLDERS if f"probe_{f}.safetensors" in inp.options}
            if not shown and inp.id not in declared:
                continue  # not a file list
            where = f"{schema.node_id}.{inp.id}"
            assert inp.id in declared, f"{where} lists files from {sorted(shown)} but declares no folders"
            assert set(declared[inp.id]) == shown, (where, declared[inp.id], shown)
            for folder in declared[inp.id]:
                assert f"models/{folder}" in inp.tooltip, f"{where}'s tooltip does not name models/{folder}"
            checked += 1
    assert checked >= 5  # model, audio VAE, vocoder, video codec, LoRA


def test_empty_latent_shows_its_rounding_on_the_node(env):
    """The rounding text reaches the node (progress text to its id) and the ui payload."""
    cls = env.n.JoVAEmptyLatent
    sent = env.server.PromptServer.instance.progress_texts
    sent.clear()
    model = env.n.model_handle.JoVAModelHandle(env.core("demo").load_demo_model(), "demo")
    cls.hidden = HiddenHolder({"unique_id": "6"})
    try:
        out = harness.run_node(cls, model=model, width=130, height=70, seconds=1.0, fps=8.0, batch_size=1)
    finally:
        del cls.hidden
    info = out.args[1]
    assert "130x70 rounded to 128x64" in info
    assert sent == [("6", info)]
    assert out.ui.as_dict() == {"text": (info,)}
    # Without a node id (called outside a running prompt) nothing is sent; the payload stays.
    sent.clear()
    out = harness.run_node(cls, model=model, width=128, height=64, seconds=1.0, fps=8.0, batch_size=1)
    assert sent == [] and out.ui.as_dict() == {"text": (out.args[1],)}


def test_nodes_that_show_text_know_their_id(env):
    """show_text needs the node's id: every node calling it declares the hidden unique_id."""
    io = env.io
    showing = [cls for cls, _ in schemas(env) if "show_text(" in inspect.getsource(cls.execute)]
    assert {cls.__name__ for cls in showing} >= {"JoVAEmptyLatent", "JoVASampler", "JoVAMouthMaskPreview"}
    for cls in showing:
        assert io.Hidden.unique_id in cls.GET_SCHEMA().hidden, cls.__name__


def test_readme_node_table_lists_every_node(env):
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Nodes"):]
    rows = set(re.findall(r"^\| (JoVA [^|]+?) \|", table, flags=re.M))
    names = {schema.display_name for _, schema in schemas(env)}
    assert names - rows == set(), f"README node table misses {sorted(names - rows)}"
