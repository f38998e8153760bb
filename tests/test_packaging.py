"""pyproject.toml declares exactly what requirements*.txt install (ComfyUI-Manager reads
the one, pip the other), and nothing in the repository reaches outside it."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_lines(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_pyproject_matches_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == requirement_lines("requirements.txt")
    assert project["optional-dependencies"]["test"] == requirement_lines("requirements-test.txt")


def test_torch_is_never_pinned():
    for name in ("requirements.txt", "requirements-test.txt"):
        for line in requirement_lines(name):
            assert not re.match(r"torch(vision|audio)?\b", line), f"{name} pins {line}; torch comes from ComfyUI"


def repository_text_files() -> list[Path]:
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d != "__pycache__"]
        found += [Path(folder) / f for f in files if f.endswith((".py", ".md", ".json", ".toml", ".txt"))]
    return found


def test_no_path_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in repository_text_files() if path.stat().st_size < 1_000_000
        for match in re.finditer(r"\.\./shared|/work/\w+", path.read_text(errors="ignore"))
    ]
    assert not offenders, offenders
