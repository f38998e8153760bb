"""Every workflow in workflows/ is a valid ComfyUI UI-format graph of nodes that exist.

Checks, per workflow: each node type is one of the pack's nodes (schemas read from the
pack itself, through the ComfyUI stand-ins) or a core node from the table below (read
from ComfyUI v0.33.0's nodes.py / comfy_extras), or a UI-only note; widget values fit
their inputs (count, type, range, options); links connect an existing output to an
existing input of the same type and agree with the nodes' own link lists; a note names
every model file the loaders expect. Layout, as ComfyUI's frontend draws it: no node
rectangles intersect, before a run or after it (when samplers show a 512 px latent
preview and nodes show their text or video), every node is at least as big as its
title, sockets and widgets need, and notes show their text without scrolling.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from comfy_stubs import harness

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))

# A combo whose options are the files in a models/ or input/ folder: any file name fits.
FILES = "files"
# A sharded checkpoint is picked by its index (JoVA Model Loader lists them).
WEIGHT_SUFFIXES = (".safetensors", ".sft", ".pt", ".pth", ".bin", ".ckpt", ".index.json")
CONTROL_AFTER_GENERATE = ("fixed", "increment", "decrement", "randomize")
UI_ONLY_NODES = ("Note", "MarkdownNote")


@dataclass
class InputSpec:
    name: str
    io_type: str
    widget: bool = False
    optional: bool = False
    options: list | str | None = None
    min: float | None = None
    max: float | None = None
    # Values the frontend stores after this widget's own: the seed's "control after
    # generate" choice, an upload button's state.
    extra_values: int = 0
    multiline: bool = False


@dataclass
class NodeSpec:
    inputs: list[InputSpec]
    outputs: list[str] = field(default_factory=list)
    title: str = ""
    # Height of the image/video/audio widget a core media node draws under its widgets.
    media_height: int = 0

    def input(self, name: str) -> InputSpec | None:
        return next((i for i in self.inputs if i.name == name), None)


def _combo(name, options, optional=False, extra_values=0):
    return InputSpec(name, "COMBO", widget=True, optional=optional, options=options, extra_values=extra_values)


# The core nodes the workflows use, as ComfyUI v0.33.0 defines them (input order matters:
# it is the order of widgets_values).
CORE_NODES: dict[str, NodeSpec] = {
    "CLIPLoader": NodeSpec(
        [
            _combo("clip_name", FILES),
            _combo("type", ["stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart",
                            "cosmos", "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image",
                            "hunyuan_image", "flux2", "ovis", "longcat_image", "cogvideox", "lens", "pixeldit",
                            "ideogram4", "boogu", "krea2", "joyimage", "mage", "minimax"]),
            _combo("device", ["default", "cpu"], optional=True),
        ],
        ["CLIP"], "Load CLIP",
    ),
    "CLIPTextEncode": NodeSpec([InputSpec("text", "STRING", widget=True, multiline=True), InputSpec("clip", "CLIP")],
                               ["CONDITIONING"],
                               "CLIP Text Encode (Prompt)"),
    "VAELoader": NodeSpec([_combo("vae_name", FILES)], ["VAE"], "Load VAE"),
    "LoadImage": NodeSpec([_combo("image", FILES, extra_values=1)], ["IMAGE", "MASK"], "Load Image",
                          media_height=220),
    "LoadAudio": NodeSpec([_combo("audio", FILES, extra_values=2)], ["AUDIO"], "Load Audio", media_height=60),
    "LoadVideo": NodeSpec([_combo("file", FILES, extra_values=1)], ["VIDEO"], "Load Video", media_height=220),
    # PreviewImage inherits SaveImage's IMAGE output.
    "PreviewImage": NodeSpec([InputSpec("images", "IMAGE")], ["IMAGE"], "Preview Image", media_height=220),
    "PreviewAudio": NodeSpec([InputSpec("audio", "AUDIO")], ["AUDIO"], "Preview Audio", media_height=60),
    "MaskToImage": NodeSpec([InputSpec("mask", "MASK")], ["IMAGE"], "Convert Mask to Image"),
}


def spec_from_schema(schema, file_combos: set[str]) -> NodeSpec:
    """A pack node's spec from its V3 schema (combos listed in file_combos also accept file names)."""
    inputs = []
    for i in schema.inputs:
        widget = i.io_type in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
        spec = InputSpec(i.id, i.io_type, widget=widget, optional=i.optional,
                         multiline=bool(getattr(i, "multiline", False)))
        if i.io_type == "COMBO":
            spec.options = list(i.options) + ([FILES] if i.id in file_combos else [])
        if i.io_type in ("INT", "FLOAT"):
            spec.min, spec.max = i.min, i.max
            spec.extra_values = 1 if getattr(i, "control_after_generate", None) else 0
        inputs.append(spec)
    return NodeSpec(inputs, [o.io_type for o in schema.outputs], schema.display_name or schema.node_id)


def widget_problems(node: dict, spec: NodeSpec) -> list[str]:
    problems = []
    values = list(node.get("widgets_values", []))
    expected = sum(1 + i.extra_values for i in spec.inputs if i.widget)
    where = f"node {node['id']} ({node['type']})"
    if len(values) != expected:
        return [f"{where}: {len(values)} widget values, its widgets take {expected}"]
    for inp in (i for i in spec.inputs if i.widget):
        value = values.pop(0)
        extras = [values.pop(0) for _ in range(inp.extra_values)]
        bad = _value_problem(inp, value)
        if bad:
            problems.append(f"{where}.{inp.name}: {bad}")
        if inp.io_type == "INT" and extras and extras[0] not in CONTROL_AFTER_GENERATE:
            problems.append(f"{where}.{inp.name}: control value {extras[0]!r} not in {CONTROL_AFTER_GENERATE}")
    return problems


def _value_problem(inp: InputSpec, value) -> str | None:
    if inp.io_type == "COMBO":
        options = [inp.options] if isinstance(inp.options, str) else inp.options
        if value in options:
            return None
        if FILES in options and isinstance(value, str) and value.strip():
            return None
        return f"{value!r} is not one of {options}"
    if inp.io_type == "INT":
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{value!r} is not an int"
    elif inp.io_type == "FLOAT":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{value!r} is not a number"
    elif inp.io_type == "BOOLEAN":
        return None if isinstance(value, bool) else f"{value!r} is not a bool"
    elif inp.io_type == "STRING":
        return None if isinstance(value, str) else f"{value!r} is not a string"
    if inp.min is not None and value < inp.min or inp.max is not None and value > inp.max:
        return f"{value} outside [{inp.min}, {inp.max}]"
    return None


def graph_problems(workflow: dict, specs: dict[str, NodeSpec]) -> list[str]:
    problems = []
    for key in ("last_node_id", "last_link_id", "nodes", "links", "version"):
        if key not in workflow:
            problems.append(f"missing top-level {key!r}")
    nodes = {n["id"]: n for n in workflow["nodes"]}
    if len(nodes) != len(workflow["nodes"]):
        problems.append("node ids are not unique")
    if max(nodes) > workflow["last_node_id"]:
        problems.append("last_node_id is below a node id")
    links = {link[0]: link for link in workflow["links"]}
    if links and max(links) > workflow["last_link_id"]:
        problems.append("last_link_id is below a link id")
    for node in workflow["nodes"]:
        where = f"node {node['id']} ({node['type']})"
        if node["type"] in UI_ONLY_NODES:
            continue
        spec = specs.get(node["type"])
        if spec is None:
            problems.append(f"{where}: no such node in the pack or in the core table")
            continue
        problems += widget_problems(node, spec)
        for inp in node.get("inputs", []):
            s = spec.input(inp["name"])
            if s is None:
                problems.append(f"{where}: no input named {inp['name']!r}")
            elif inp["type"] != s.io_type:
                problems.append(f"{where}.{inp['name']}: declared {inp['type']}, the node takes {s.io_type}")
            elif s.widget and "widget" not in inp:
                problems.append(f"{where}.{inp['name']}: a widget turned into a socket needs 'widget'")
        linked = {i["name"] for i in node.get("inputs", []) if i.get("link") is not None}
        for s in spec.inputs:
            if not s.optional and not s.widget and s.name not in linked:
                problems.append(f"{where}: required input {s.name!r} is not connected")
        declared = [o["type"] for o in node.get("outputs", [])]
        if declared != spec.outputs:
            problems.append(f"{where}: outputs {declared}, the node has {spec.outputs}")
    for link_id, src, src_slot, dst, dst_slot, io_type in workflow["links"]:
        where = f"link {link_id}"
        if src not in nodes or dst not in nodes:
            problems.append(f"{where}: joins a missing node")
            continue
        src_node, dst_node = nodes[src], nodes[dst]
        outputs = src_node.get("outputs", [])
        if src_slot >= len(outputs) or link_id not in (outputs[src_slot].get("links") or []):
            problems.append(f"{where}: node {src} output {src_slot} does not list it")
            continue
        inputs = dst_node.get("inputs", [])
        if dst_slot >= len(inputs) or inputs[dst_slot].get("link") != link_id:
            problems.append(f"{where}: node {dst} input {dst_slot} does not hold it")
            continue
        out_type, in_type = outputs[src_slot]["type"], inputs[dst_slot]["type"]
        if not (io_type == out_type == in_type):
            problems.append(f"{where}: {out_type} -> {in_type} (link says {io_type})")
    for node in workflow["nodes"]:
        for slot, inp in enumerate(node.get("inputs", [])):
            if inp.get("link") is not None:
                link = links.get(inp["link"])
                if link is None or link[3] != node["id"] or link[4] != slot:
                    problems.append(f"node {node['id']} input {inp['name']!r}: link {inp['link']} is not this one")
    return problems


def to_api_prompt(workflow: dict, specs: dict[str, NodeSpec]) -> dict:
    """The API format the server executes ({id: {class_type, inputs}}), as the frontend makes it."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in UI_ONLY_NODES or node.get("mode", 0) != 0:
            continue
        spec = specs[node["type"]]
        values = list(node.get("widgets_values", []))
        inputs = {}
        for inp in (i for i in spec.inputs if i.widget):
            inputs[inp.name] = values.pop(0)
            del values[: inp.extra_values]
        for inp in node.get("inputs", []):
            if inp.get("link") is not None:
                link = links[inp["link"]]
                inputs[inp["name"]] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


# What ComfyUI's frontend (1.49, LiteGraph) draws. A node's pos is the top left of its
# body; the title bar sits above it.
TITLE_HEIGHT = 30
SLOT_HEIGHT = 20  # one row of sockets
WIDGET_HEIGHT = 20 + 4  # a widget and the gap after it
MULTILINE_HEIGHT = 60 + 4  # a multiline text box, two lines readable
WIDGETS_PADDING = 8 + 6
CHAR_WIDTH = 14 * 0.6  # the frontend's estimate for its 14 px font, used for titles and labels
WIDGET_VALUE_WIDTH = 42 + 2 * (15 + 6 + 10)  # a number widget's value and its arrows
MIN_WIDTH_WITH_WIDGETS = 140 * 1.5
MIN_SIZE_WITH_MULTILINE = (400, 200)  # the frontend's minNodeSize for a node with a text box
# What a run adds under a node's widgets: a sampler's latent preview (up to 512 px tall:
# nodes/sampler.py's PREVIEW_MAX_SIZE) and the text nodes show on themselves
# (nodes/display.py; the frontend's text widget is at least 58 px tall); JoVA Mux shows
# the saved video, as wide as the node (a square clip is as tall).
PREVIEW_HEIGHT = 512
TEXT_HEIGHT = 58 + 4
# Notes: rendered markdown, 14 px text on 21 px lines.
NOTE_LINE, NOTE_HEADING, NOTE_BLOCK_GAP, NOTE_PADDING, NOTE_CHAR_WIDTH = 21, 34, 12, 32, 8.0


def run_growth(node: dict) -> float:
    """How much taller a node is drawn after a run than before it."""
    kind = node["type"]
    if kind == "JoVASampler":
        return PREVIEW_HEIGHT + TEXT_HEIGHT
    if kind == "JoVAExtend":
        return PREVIEW_HEIGHT
    if kind in ("JoVAEmptyLatent", "JoVAModelDefaults"):
        return 2 * TEXT_HEIGHT  # several lines: the rounding and the latent shapes; the settings
    if kind == "JoVAMouthMaskPreview":
        return TEXT_HEIGHT
    if kind == "JoVAMux":
        return node["size"][0] + TEXT_HEIGHT
    return 0


def min_node_size(node: dict, spec: NodeSpec) -> tuple[float, float]:
    """The smallest size the frontend would give the node (LGraphNode.computeSize)."""
    title = node.get("title") or spec.title
    sockets = [i for i in spec.inputs if not i.widget]
    widgets = [i for i in spec.inputs if i.widget]
    outputs = [o.get("name") or o["type"] for o in node.get("outputs", [])]
    rows = max(1, len(sockets), len(outputs))
    widget_height = sum((MULTILINE_HEIGHT if i.multiline else WIDGET_HEIGHT) + WIDGET_HEIGHT * i.extra_values
                        for i in widgets)
    height = rows * SLOT_HEIGHT + widget_height + (WIDGETS_PADDING if widgets else 6) + spec.media_height
    label = lambda names: CHAR_WIDTH * max((len(n) for n in names), default=0)  # noqa: E731
    width = max(
        TITLE_HEIGHT * 1.33 + CHAR_WIDTH * len(title),
        label([i.name for i in sockets]) + label(outputs) + 2 * SLOT_HEIGHT + 5,
        label([i.name for i in widgets]) + WIDGET_VALUE_WIDTH if widgets else 0,
        MIN_WIDTH_WITH_WIDGETS if widgets else 140,
    )
    if any(i.multiline for i in widgets):
        width, height = max(width, MIN_SIZE_WITH_MULTILINE[0]), max(height, MIN_SIZE_WITH_MULTILINE[1])
    return width, height


def _wrapped_lines(text: str, width: float) -> int:
    plain = re.sub(r"[`*]", "", text).strip()
    return max(1, math.ceil(len(plain) * NOTE_CHAR_WIDTH / max(width, 1)))


def markdown_height(text: str, width: float) -> float:
    """About how tall a note's markdown renders at `width` px (headings, paragraphs, list
    items, tables with equal columns that wrap their cells)."""
    usable = width - NOTE_PADDING
    height = 0.0
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if all(line.lstrip().startswith("|") for line in lines):
            rows = [line.strip().strip("|").split("|") for line in lines if not re.fullmatch(r"[\s|:-]+", line)]
            cell_width = usable / max(len(r) for r in rows) - 16
            height += sum(NOTE_LINE * max(_wrapped_lines(c, cell_width) for c in r) + 8 for r in rows)
        else:
            for item in re.split(r"\n(?=\s*(?:[-*] |#))", block):
                if item.startswith("#"):
                    height += NOTE_HEADING
                else:
                    indent = 24 if item.lstrip().startswith(("- ", "* ")) else 0
                    height += NOTE_LINE * _wrapped_lines(" ".join(item.split()), usable - indent)
        height += NOTE_BLOCK_GAP
    return height


def node_rect(node: dict, after_run: bool) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) as drawn: the title bar above pos, a run's additions below."""
    (x, y), (w, h) = node["pos"], node["size"]
    return x, y - TITLE_HEIGHT, x + w, y + h + (run_growth(node) if after_run else 0)


def layout_problems(workflow: dict, specs: dict[str, NodeSpec]) -> list[str]:
    problems = []
    nodes = workflow["nodes"]
    for node in nodes:
        where = f"node {node['id']} ({node.get('title') or node['type']})"
        w, h = node["size"]
        if node["type"] in UI_ONLY_NODES:
            text = str(node["widgets_values"][0])
            need = markdown_height(text, w) + NOTE_PADDING
            if h < need:
                problems.append(f"{where}: its text needs about {need:.0f} px, the note is {h} px tall (scrolls)")
            title = (node.get("title") or "").lower()
            if "no model files" in text.lower() and "model files" in title:
                problems.append(f"{where}: titled {node.get('title')!r} but says it needs no model files")
            continue
        min_w, min_h = min_node_size(node, specs[node["type"]])
        if w < min_w or h < min_h:
            problems.append(f"{where}: size {w}x{h}, its title, sockets and widgets need {min_w:.0f}x{min_h:.0f}")
    for after_run in (False, True):
        when = "after a run" if after_run else "before a run"
        for a, b in itertools.combinations(nodes, 2):
            la, ta, ra, ba = node_rect(a, after_run)
            lb, tb, rb, bb = node_rect(b, after_run)
            if la < rb and lb < ra and ta < bb and tb < ba:
                problems.append(f"{when}: node {a['id']} ({a.get('title') or a['type']}) and node {b['id']} "
                                f"({b.get('title') or b['type']}) overlap")
    return problems


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    with harness.comfy_stubs(tmp_path_factory.mktemp("comfyui")) as stubs:
        pack = harness.load_pack()
        node_classes = harness.node_list(pack)
        loaders = sys.modules[harness.PACK_NAME + ".nodes.loaders"]
        file_combos = {"model_name", "vae_name", "vocoder_name", "codec_name", "folder"}  # lists of files or folders
        table = dict(CORE_NODES)
        for node_cls in node_classes:
            schema = node_cls.GET_SCHEMA()
            assert schema.node_id not in table, f"{schema.node_id} clashes with a core node"
            table[schema.node_id] = spec_from_schema(schema, file_combos)
        yield table, stubs, loaders


def test_there_are_the_five_workflows():
    names = {p.stem for p in WORKFLOWS}
    assert {"jova_text_to_video_audio", "jova_image_to_video_audio", "jova_audio_to_video_lipsync",
            "jova_mouth_mask_preview", "jova_cpu_demo"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_has_a_small_thumbnail(path):
    """ComfyUI's template browser shows <name>.jpg beside <name>.json."""
    from PIL import Image

    thumbnail = path.with_suffix(".jpg")
    assert thumbnail.is_file(), f"{path.name} has no thumbnail {thumbnail.name}"
    with Image.open(thumbnail) as image:
        assert image.format == "JPEG" and max(image.size) <= 512, (image.format, image.size)
    assert thumbnail.stat().st_size <= 64 * 1024


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_a_valid_graph(path, specs):
    table, _, _ = specs
    workflow = json.loads(path.read_text())
    assert graph_problems(workflow, table) == []
    # Every non-note node ends up in the API prompt with all its required inputs.
    prompt = to_api_prompt(workflow, table)
    for node_id, entry in prompt.items():
        spec = table[entry["class_type"]]
        missing = [i.name for i in spec.inputs if not i.optional and i.name not in entry["inputs"]]
        assert missing == [], f"node {node_id} ({entry['class_type']}) lacks {missing}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_a_note_names_every_model_file(path, specs):
    workflow = json.loads(path.read_text())
    notes = " ".join(str(v) for n in workflow["nodes"] if n["type"] in UI_ONLY_NODES for v in n["widgets_values"])
    assert notes, f"{path.name} has no note"
    files = [v for n in workflow["nodes"] if n["type"] not in UI_ONLY_NODES
             for v in n.get("widgets_values", []) if isinstance(v, str) and v.lower().endswith(WEIGHT_SUFFIXES)]
    for name in files:
        assert name in notes, f"{path.name}: the note does not say where {name} goes"


# The folder each core loader's file list reads (the frontend knows these for core nodes).
CORE_FILE_FOLDERS = {"CLIPLoader": {"clip_name": ("text_encoders",)}, "VAELoader": {"vae_name": ("vae",)}}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_loaders_tell_the_missing_models_panel_their_folders(path, specs):
    """Every model file a loader is set to has a properties.models entry (name, directory,
    and a download url where the file is public) that ComfyUI's missing-models panel reads;
    the directory is one the loader's list reads (FILE_FOLDERS for the pack's loaders)."""
    table, _, _ = specs
    workflow = json.loads(path.read_text())
    prompt = to_api_prompt(workflow, table)
    pack_nodes = sys.modules[harness.PACK_NAME + ".nodes"]
    folders_of = dict(CORE_FILE_FOLDERS)
    for node_cls in pack_nodes.NODES:
        folders_of[node_cls.GET_SCHEMA().node_id] = getattr(node_cls, "FILE_FOLDERS", {})
    for node in workflow["nodes"]:
        if node["type"] in UI_ONLY_NODES:
            continue
        inputs = prompt[str(node["id"])]["inputs"]
        files = {name: value for name, value in inputs.items()
                 if isinstance(value, str) and value.lower().endswith(WEIGHT_SUFFIXES)}
        entries = {m["name"]: m for m in node["properties"].get("models", [])}
        where = f"{path.name} node {node['id']} ({node['type']})"
        assert set(entries) == set(files.values()), where
        for name, value in files.items():
            entry = entries[value]
            assert entry["directory"] in folders_of[node["type"]].get(name, ()), (where, name, entry)
            if "url" in entry:
                assert entry["url"].startswith("https://") and entry["url"].endswith("/" + value), (where, entry)


def test_cpu_demo_workflow_needs_no_model_files(specs):
    table, _, loaders = specs
    workflow = json.loads((REPO / "workflows" / "jova_cpu_demo.json").read_text())
    prompt = to_api_prompt(workflow, table)
    demo_choices = {loaders.DEMO_MODEL, loaders.DEMO_CODEC, loaders.NO_VOCODER}
    for entry in prompt.values():
        for name, value in entry["inputs"].items():
            if name in ("model_name", "vae_name", "vocoder_name", "codec_name"):
                assert value in demo_choices, f"{entry['class_type']}.{name} = {value!r} is a file"
    assert any(e["class_type"] == "JoVAMux" and e["inputs"]["save_mp4"] for e in prompt.values())


def test_checker_catches_broken_graphs(specs):
    """The checks above can fail: break a valid workflow in each way they look for."""
    table, _, _ = specs
    good = json.loads((REPO / "workflows" / "jova_cpu_demo.json").read_text())
    assert graph_problems(good, table) == []

    def broken(edit):
        wf = json.loads(json.dumps(good))
        edit(wf)
        return graph_problems(wf, table)

    sampler = lambda wf: next(n for n in wf["nodes"] if n["type"] == "JoVASampler")  # noqa: E731
    assert broken(lambda wf: sampler(wf).update(type="KSamplerJoVA"))
    assert broken(lambda wf: sampler(wf)["widgets_values"].pop())
    assert broken(lambda wf: sampler(wf)["widgets_values"].__setitem__(3, "ddim"))  # sampler combo
    assert broken(lambda wf: sampler(wf)["widgets_values"].__setitem__(2, 0))  # steps below min
    assert broken(lambda wf: wf["links"][0].__setitem__(5, "IMAGE"))
    first_input = lambda wf: next(i for n in wf["nodes"] for i in n.get("inputs", []) if i.get("link"))  # noqa: E731
    assert broken(lambda wf: first_input(wf).update(link=None))


def test_cpu_demo_workflow_uses_the_demo_models_own_settings(specs):
    """Size, length, prompt and sampler settings as the demo checkpoint's metadata says
    the model was trained to generate (jova_core.demo reads the same metadata)."""
    table, _, _ = specs
    core = lambda name: sys.modules[f"{harness.PACK_NAME}.jova_core.{name}"]  # noqa: E731
    workflow = json.loads((REPO / "workflows" / "jova_cpu_demo.json").read_text())
    prompt = to_api_prompt(workflow, table)
    by_type = {}
    for entry in prompt.values():
        by_type.setdefault(entry["class_type"], []).append(entry["inputs"])
    settings = core("demo").load_demo_settings()
    latent = by_type["JoVAEmptyLatent"][0]
    geometry = core("fit").clip_geometry(
        core("demo").load_demo_model().config.geometry, latent["width"], latent["height"], latent["seconds"], latent["fps"])
    assert (geometry.width, geometry.height, geometry.frames, geometry.fps) == \
        (settings.width, settings.height, settings.num_frames, settings.fps)
    assert geometry.audio_shape[-1] == settings.audio_latent_frames
    samplers = by_type["JoVASampler"]
    for sampler in samplers:
        assert (sampler["steps"], sampler["sampler"], sampler["shift"], sampler["cfg_video"], sampler["cfg_audio"]) == \
            (settings.steps, settings.sampler, settings.shift, settings.cfg_video, settings.cfg_audio)
        assert prompt[sampler["reference_image"][0]]["class_type"] == "JoVADemoReferenceImage"
    # The passes jova_core.demo.generate_demo runs: i2va animates the reference frame; when
    # the settings ask for it, an a2v pass (same seed) on the latent the first one made.
    first = next(s for s in samplers if s["mode"] == "i2va")
    if settings.audio_driven_pass:
        second = next(s for s in samplers if s["mode"] == "a2v")
        assert len(samplers) == 2 and second["seed"] == first["seed"] and "audio" not in second
        assert prompt[second["latent"][0]]["class_type"] == "JoVASampler" and prompt[second["latent"][0]]["inputs"] is first
        decoder = by_type["JoVADecode"][0]
        assert prompt[decoder["latent"][0]]["inputs"] is second
    else:
        assert len(samplers) == 1
    positive = next(t for t in by_type["JoVATextEncode"] if t["transcript"])
    assert core("text").format_prompt(positive["video_caption"], positive["audio_caption"], positive["transcript"]) == \
        core("demo").demo_prompt(positive["transcript"], settings)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_layout(path, specs):
    """Nothing overlaps before or after a run (512 px sampler previews drawn), nodes are big
    enough for their widgets, notes need no scrolling."""
    table, _, _ = specs
    assert layout_problems(json.loads(path.read_text()), table) == []


def test_layout_check_catches_overlaps(specs):
    """The layout check can fail: a long title, a node on another, a sampler whose preview
    would cover the node under it, a node smaller than its widgets, a note that scrolls."""
    table, _, _ = specs
    good = json.loads((REPO / "workflows" / "jova_cpu_demo.json").read_text())
    assert layout_problems(good, table) == []

    def broken(edit):
        wf = json.loads(json.dumps(good))
        edit(wf)
        return layout_problems(wf, table)

    by_type = lambda wf, kind: next(n for n in wf["nodes"] if n["type"] == kind)  # noqa: E731
    assert broken(lambda wf: by_type(wf, "JoVADecode").update(pos=list(by_type(wf, "JoVASampler")["pos"])))
    assert broken(lambda wf: by_type(wf, "JoVASampler").update(title="JoVA Sampler " + "x" * 60))
    assert broken(lambda wf: by_type(wf, "JoVASampler")["size"].__setitem__(1, 200))

    def under_sampler(wf):
        sampler, decode = by_type(wf, "JoVASampler"), by_type(wf, "JoVADecode")
        decode["pos"] = [sampler["pos"][0], sampler["pos"][1] + sampler["size"][1] + TITLE_HEIGHT + 10]
    problems = broken(under_sampler)
    assert problems and all(p.startswith("after a run") for p in problems)
    note = lambda wf: next(n for n in wf["nodes"] if n["type"] in UI_ONLY_NODES)  # noqa: E731
    assert broken(lambda wf: note(wf)["size"].__setitem__(1, 120))
    assert broken(lambda wf: note(wf).update(title="Read me: model files"))


def test_javisdit_workflow_takes_the_models_own_settings(specs):
    """The JavisDiT++ graph feeds JoVA Model Defaults' values into Empty Latent, Sampler and
    the negative prompt, samples t2va with Euler, and decodes with AudioLDM2's files; its
    stored widget values are those defaults too (what a user sees before running)."""
    table, _, _ = specs
    defaults = sys.modules[f"{harness.PACK_NAME}.jova_core.convert.javisdit"].JAVISDIT_DEFAULTS
    workflow = json.loads((REPO / "workflows" / "jova_javisdit_t2av.json").read_text())
    prompt = to_api_prompt(workflow, table)
    by_type = {e["class_type"]: (node_id, e["inputs"]) for node_id, e in prompt.items() if e["class_type"] != "CLIPTextEncode"}
    defaults_id = by_type["JoVAModelDefaults"][0]
    latent, sampler = by_type["JoVAEmptyLatent"][1], by_type["JoVASampler"][1]
    outputs = [o.id for o in sys.modules[f"{harness.PACK_NAME}.nodes"].JoVAModelDefaults.GET_SCHEMA().outputs]
    for inputs, names in ((latent, ("width", "height", "seconds", "fps")), (sampler, ("steps", "shift", "cfg_video", "cfg_audio"))):
        for name in names:
            assert inputs[name] == [defaults_id, outputs.index(name)], name
    negative = prompt[sampler["negative"][0]]["inputs"]
    assert negative["text"] == [defaults_id, outputs.index("negative_prompt")]
    assert (sampler["sampler"], sampler["mode"]) == (defaults.sampler, "t2va")
    nodes = {n["type"]: n for n in workflow["nodes"] if n["type"] != "CLIPTextEncode"}
    assert nodes["JoVAEmptyLatent"]["widgets_values"][:4] == [defaults.width, defaults.height, defaults.seconds, defaults.fps]
    assert nodes["JoVASampler"]["widgets_values"][2:7] == [defaults.steps, defaults.sampler, round(defaults.default_shift, 3),
                                                          defaults.cfg_video, defaults.cfg_audio]
    assert by_type["JoVAAudioCodecLoader"][1] == {"vae_name": "audioldm2/vae/diffusion_pytorch_model.safetensors",
                                                  "vocoder_name": "audioldm2/vocoder/model.safetensors"}
