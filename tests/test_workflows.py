"""Every workflow in workflows/ is a valid ComfyUI UI-format graph of nodes that exist.

Checks, per workflow: each node type is one of the pack's nodes (schemas read from the
pack itself, through the ComfyUI stand-ins) or a core node from the table below (read
from ComfyUI v0.33.0's nodes.py / comfy_extras), or a UI-only note; widget values fit
their inputs (count, type, range, options); links connect an existing output to an
existing input of the same type and agree with the nodes' own link lists; a note names
every model file the loaders expect.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from comfy_stubs import harness

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))



# A combo whose options are the files in a models/ or input/ folder: any file name fits.
FILES = "files"
WEIGHT_SUFFIXES = (".safetensors", ".sft", ".pt", ".pth", ".bin", ".ckpt")
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


@dataclass
class NodeSpec:
    inputs: list[InputSpec]
    outputs: list[str] = field(default_factory=list)

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
        ["CLIP"],
    ),
    "CLIPTextEncode": NodeSpec([InputSpec("text", "STRING", widget=True), InputSpec("clip", "CLIP")], ["CONDITIONING"]),
    "VAELoader": NodeSpec([_combo("vae_name", FILES)], ["VAE"]),
    "LoadImage": NodeSpec([_combo("image", FILES, extra_values=1)], ["IMAGE", "MASK"]),
    "LoadAudio": NodeSpec([_combo("audio", FILES, extra_values=2)], ["AUDIO"]),
    "LoadVideo": NodeSpec([_combo("file", FILES, extra_values=1)], ["VIDEO"]),
    "PreviewImage": NodeSpec([InputSpec("images", "IMAGE")], ["IMAGE"]),  # inherits SaveImage's IMAGE output
    "PreviewAudio": NodeSpec([InputSpec("audio", "AUDIO")], ["AUDIO"]),
    "MaskToImage": NodeSpec([InputSpec("mask", "MASK")], ["IMAGE"]),
}


def spec_from_schema(schema, file_combos: set[str]) -> NodeSpec:
    """A pack node's spec from its V3 schema (combos listed in file_combos also accept file names)."""
    inputs = []
    for i in schema.inputs:
        widget = i.io_type in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
        spec = InputSpec(i.id, i.io_type, widget=widget, optional=i.optional)
        if i.io_type == "COMBO":
            spec.options = list(i.options) + ([FILES] if i.id in file_combos else [])
        if i.io_type in ("INT", "FLOAT"):
            spec.min, spec.max = i.min, i.max
            spec.extra_values = 1 if getattr(i, "control_after_generate", None) else 0
        inputs.append(spec)
    return NodeSpec(inputs, [o.io_type for o in schema.outputs])


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


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    with harness.comfy_stubs(tmp_path_factory.mktemp("comfyui")) as stubs:
        pack = harness.load_pack()
        node_classes = harness.node_list(pack)
        loaders = sys.modules[harness.PACK_NAME + ".nodes.loaders"]
        file_combos = {"model_name", "vae_name", "vocoder_name", "codec_name"}
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
