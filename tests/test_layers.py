"""jova_core's layering, read from its source with `ast`: the imports between its
subpackages (and top-level modules) form no cycle, the lower layers never import the
upper ones, and nothing imports ComfyUI. Lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

JOVA_CORE = Path(__file__).resolve().parents[1] / "jova_core"

# Building blocks: file formats, configuration, latent geometry and fitting, block swap, codecs, text encoders, the model.
LOWER = {"files", "weights", "identify", "config", "defaults", "geometry", "fit", "latent", "offload", "codecs", "text", "model", "lora"}
# What is built from them: sampling, mouth tools, lip-sync evaluation, training, the demo, the CLI.
UPPER = {"sampling", "mouth", "lipsync", "train", "demo", "cli"}
COMFY_MODULES = {"comfy", "comfy_api", "comfy_extras", "folder_paths", "nodes", "server"}


def _imported(node: ast.AST, package: list[str]) -> list[list[str]]:
    """Module paths (relative to the scanned package) an import statement names; a path
    that leaves the package starts with ".."; other top-level modules are [name]."""
    if isinstance(node, ast.Import):
        return [["jova_core", *a.name.split(".")[1:]] if a.name.split(".")[0] == "jova_core" else [a.name.split(".")[0]]
                for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0:
        parts = (node.module or "").split(".")
        return [["jova_core", *parts[1:]] if parts[0] == "jova_core" else [parts[0]]]
    if node.level - 1 > len(package):
        return [[".."]]
    base = package[: len(package) - (node.level - 1)]
    if node.module:
        return [["jova_core", *base, *node.module.split(".")]]
    return [["jova_core", *base, alias.name] for alias in node.names]


def import_graph(root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(unit -> units it imports, unit -> outside modules it imports), where a unit is a
    subpackage or a top-level module of the package at `root`."""
    units: dict[str, set[str]] = {}
    outside: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("").parts
        package = list(rel[:-1])  # the package a relative import starts from
        unit = rel[0]
        units.setdefault(unit, set())
        outside.setdefault(unit, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in _imported(node, package):
                if target[0] == "jova_core":
                    if len(target) > 1 and target[1] != unit:
                        units[unit].add(target[1])
                else:
                    outside[unit].add(target[0])
    return units, outside


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_graph_reader_resolves_relative_absolute_and_lazy_imports_and_finds_cycles(tmp_path):
    root = tmp_path / "jova_core"
    files = {
        "a/__init__.py": "from .inner import thing\n",
        "a/inner.py": "def f():\n    from ..b.deep import x\n",
        "b/__init__.py": "",
        "b/deep.py": "import jova_core.c.mod\nimport numpy\n",
        "c/__init__.py": "from .. import config\n",
        "config.py": "from comfy import utils\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    graph, outside = import_graph(root)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"config"}, "config": set()}
    assert outside["b"] == {"numpy"} and outside["config"] == {"comfy"}
    assert find_cycle(graph) is None
    (root / "config.py").write_text("from .a import thing\n")
    assert find_cycle(import_graph(root)[0]) == ["a", "b", "c", "config", "a"]


def test_jova_core_subpackages_import_each_other_without_a_cycle():
    graph, _ = import_graph(JOVA_CORE)
    assert {"checkpoint", "convert", "cli", "text", "demo", "lipsync"} <= set(graph)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_lower_layers_never_import_upper_ones():
    graph, _ = import_graph(JOVA_CORE)
    wrong = sorted(f"{unit} -> {target}" for unit in LOWER & set(graph) for target in graph[unit] & UPPER)
    assert not wrong, f"lower layers import upper ones: {wrong}"
    # The converters are pure key maps: they need neither the checkpoint reader nor a CLI.
    assert not graph["convert"] & {"checkpoint", "cli"}


def test_jova_core_never_imports_comfyui_or_leaves_its_package():
    _, outside = import_graph(JOVA_CORE)
    wrong = sorted(f"{unit} -> {module}" for unit, modules in outside.items() for module in modules & (COMFY_MODULES | {".."}))
    assert not wrong, f"jova_core must stay framework-free: {wrong}"
