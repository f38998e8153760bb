"""Reading weight files: the one place JoVA opens a checkpoint.

Reads .safetensors files and PyTorch files (.pth/.pt/.ckpt/.bin and any other name)
with torch.load(weights_only=True), never unpickling code. The format is told by the
file's content, not its name (a safetensors file renamed .pth is read as safetensors).
A path may also be a sharded checkpoint's *.index.json or a folder (see `weight_files`).
PyTorch files that wrap their state dict in a container ({"state_dict": ...},
{"generator": ...}, ...) are unwrapped. A file that cannot be read gives a one-line
WeightFileError naming the file and what to do.

`build_exactly` makes a module on the meta device and loads a state dict into it only
when every key and shape matches; it never falls back to random initialisation.
Imports only torch, safetensors and the standard library: codecs, text encoders and
SyncNet load through here without importing the transformer or the converters.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import torch
from safetensors import SafetensorError, safe_open

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")
# Containers releases and trainers wrap their state dict in, tried in this order.
CONTAINER_KEYS = ("state_dict", "model", "module", "ema", "generator")

Progress = Callable[[int, int], None]  # (tensors read, total); may raise to interrupt
Module = TypeVar("Module", bound=torch.nn.Module)


class WeightFileError(ValueError):
    """A weight file that cannot be read (empty, truncated, pickled objects, not weights)."""


class StateDictMismatch(KeyError, ValueError):
    """A state dict whose keys or shapes differ from the module it should fill.

    A ValueError (the file is wrong) that stays a KeyError for callers that catch that."""

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0])


# -- which files ---------------------------------------------------------------------------


def _read_index(path: str) -> list[str]:
    """The shard files a *.index.json names (diffusers' and torch's sharded checkpoints)."""
    try:
        with open(path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError) as err:  # JSONDecodeError is a ValueError
        detail = f"no 'weight_map' ({err})" if isinstance(err, (KeyError, TypeError, AttributeError)) else err
        raise WeightFileError(
            f"{path} is not a valid sharded-checkpoint index ({detail}); download it again or pass one weight file"
        ) from None
    folder = os.path.dirname(path)
    files = [os.path.join(folder, str(name)) for name in shards]
    absent = [name for name, file in zip(shards, files) if not os.path.isfile(file)]
    if absent:
        raise WeightFileError(
            f"{path} names {len(absent)} shard(s) missing from {folder or '.'} ({', '.join(map(str, absent[:3]))}); "
            "is the download complete?"
        )
    return files


def weight_files(path: str) -> list[str]:
    """The weight files making up `path`: itself; the shards an index names (diffusers'
    *.safetensors.index.json, torch's *.bin.index.json); or, for a folder, its `model/`
    subfolder (JavisDiT++ releases), its one index, or its one weight file."""
    if os.path.isdir(path):
        if os.path.isdir(os.path.join(path, "model")):
            return weight_files(os.path.join(path, "model"))
        inside = sorted(os.listdir(path))
        indexes = [n for n in inside if n.endswith(".index.json")]
        weights = [n for n in inside if n.endswith(WEIGHT_SUFFIXES)]
        if len(indexes) == 1:
            return weight_files(os.path.join(path, indexes[0]))
        if len(weights) == 1:
            return [os.path.join(path, weights[0])]
        raise ValueError(f"{path} is a folder with {len(weights)} weight files and {len(indexes)} indexes; pass one file")
    if path.endswith(".index.json"):
        return _read_index(path)
    return [path]


def whole_checkpoint(path: str) -> str:
    """The sharded index a shard belongs to (the index beside it that names it), else `path`:
    picking any shard of a sharded release in a file list means the whole checkpoint."""
    folder, name = os.path.split(path)
    if not os.path.isfile(path) or not folder:
        return path
    for index in sorted(n for n in os.listdir(folder) if n.endswith(".index.json")):
        try:
            with open(os.path.join(folder, index), encoding="utf-8") as f:
                if name in set(json.load(f).get("weight_map", {}).values()):
                    return os.path.join(folder, index)
        except (ValueError, AttributeError, OSError):
            continue  # not an index of ours; weight_files names a broken one when it is read
    return path


# -- one file ------------------------------------------------------------------------------


def is_safetensors(path: str) -> bool:
    """True for safetensors, False for a PyTorch file, told by content whatever the name:
    safetensors start with an 8-byte little-endian header length and the JSON header's
    '{'; PyTorch files with a zip signature (or, from before torch 1.6, a pickle one).
    Anything else (an empty file, an HTML error page) is refused here."""
    with open(path, "rb") as f:
        head = f.read(9)
    if not head:
        raise WeightFileError(f"{path} is empty (0 bytes); download it again")
    if head[8:9] == b"{":
        return True
    if head.startswith((b"PK\x03\x04", b"\x80")):
        return False
    raise WeightFileError(
        f"{path} is neither a safetensors file nor a PyTorch checkpoint (it starts with {head[:8]!r}); "
        "download it again"
    )


def open_safetensors(path: str):
    """safe_open(path), with a one-line message naming the file when it is damaged."""
    try:
        return safe_open(path, framework="pt")
    except SafetensorError as err:
        raise WeightFileError(
            f"{path} is a truncated or damaged safetensors file ({str(err).splitlines()[0]}); download it again"
        ) from None


_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def torch_load(path: str) -> object:
    """torch.load(weights_only=True) of any PyTorch file (a state dict, an optimizer's
    state, ...), with one-line messages naming the file."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:  # mmap needs the zip format; legacy files load without it
            if "zip archive" in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = _UNSAFE_GLOBAL.search(str(err))
        what = f" such as {found.group(1)}" if found else ""
        raise WeightFileError(
            f"{path} is not a plain tensor state dict: it holds pickled Python objects{what}, which JoVA does "
            "not unpickle (they can run code); save its state_dict() or convert it to .safetensors"
        ) from None
    except Exception as err:  # torch raises many types for files that are not checkpoints
        first = (str(err).splitlines() or [""])[0].split(". ")[0] or type(err).__name__
        raise WeightFileError(
            f"{path} could not be read as a PyTorch checkpoint ({first}); is the download complete? "
            "JoVA reads .safetensors files and plain tensor .pth/.pt files"
        ) from None


def _unwrap(state: object, path: str) -> dict[str, torch.Tensor]:
    """The flat {name: tensor} inside the containers a torch file may wrap it in."""
    while isinstance(state, dict) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        inner = next((state[k] for k in CONTAINER_KEYS if isinstance(state.get(k), dict)), None)
        if inner is None:
            raise WeightFileError(f"{path} holds no flat tensor state dict (top-level keys: {sorted(state)[:8]})")
        state = inner
    if not isinstance(state, dict):
        raise WeightFileError(f"{path} holds a {type(state).__name__}, not a tensor state dict")
    return state


def _file_items(path: str) -> Iterator[tuple[str, torch.Tensor]]:
    if is_safetensors(path):
        with open_safetensors(path) as f:
            for key in f.keys():
                yield key, f.get_tensor(key)
    else:
        yield from _unwrap(torch_load(path), path).items()


def _file_keys(path: str) -> tuple[list[str], dict[str, str]]:
    if is_safetensors(path):
        with open_safetensors(path) as f:
            return list(f.keys()), f.metadata() or {}
    return list(_unwrap(torch_load(path), path)), {}


# -- the public readers --------------------------------------------------------------------


@contextmanager
def _expecting(path: str, what: str | None):
    """Check `path` exists; add what was expected there to the messages of unreadable files."""
    suffix = f"; expected {what}" if what else ""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no file or folder at {path!r}{suffix}")
    try:
        yield
    except WeightFileError as err:
        if not what:
            raise
        raise WeightFileError(f"{err}{suffix}") from None


def read_metadata(path: str) -> dict[str, str]:
    """The metadata of a safetensors file ({} for a PyTorch file)."""
    with _expecting(path, None):
        return _file_keys(path)[1]


def peek(path: str, what: str | None = None) -> tuple[list[str], dict[str, str]]:
    """Key names and safetensors metadata of a checkpoint, without reading safetensors data.
    `what` names the expected content in error messages."""
    keys, metadata = [], {}
    with _expecting(path, what):
        for file in weight_files(path):
            file_keys, file_metadata = _file_keys(file)
            keys += file_keys
            metadata = metadata or file_metadata
    return keys, metadata


def iter_tensors(path: str, what: str | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """(key, tensor) of every weight file of `path`, one tensor at a time."""
    with _expecting(path, what):
        for file in weight_files(path):
            yield from _file_items(file)


def read_state_dict(
    path: str, dtype: torch.dtype | None = None, progress: Progress | None = None, what: str | None = None
) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint (a file, a sharded index or a folder, see
    `weight_files`), cast to `dtype` if given. `progress(done, total)` is called per
    tensor and may raise to stop; `what` names the expected content in error messages."""
    total = len(peek(path, what)[0]) if progress else 0
    tensors = {}
    for done, (key, tensor) in enumerate(iter_tensors(path, what), 1):
        tensors[key] = tensor if dtype is None else tensor.to(dtype)
        if progress:
            progress(done, total)
    return tensors


def strip_prefix(state_dict: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Remove the first of `prefixes` that every key carries (repackaged files add one)."""
    for prefix in prefixes:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            return {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


# -- filling a module exactly --------------------------------------------------------------


def check_state_dict(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Raise StateDictMismatch with every missing/unexpected key and wrong shape; silent
    when they match exactly."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = sorted(
        f"{k}: file {list(state_dict[k].shape)} vs model {list(expected[k].shape)}"
        for k in set(expected) & set(state_dict)
        if tuple(state_dict[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong:
        def show(items):
            return ", ".join(items[:8]) + (f" ... (+{len(items) - 8} more)" if len(items) > 8 else "")

        found = []  # one line, as every bad-input message (ComfyUI shows it in a one-line field)
        if missing:
            found.append(f"missing {len(missing)} keys: {show(missing)}")
        if unexpected:
            found.append(f"unexpected {len(unexpected)} keys: {show(unexpected)}")
        if wrong:
            found.append(f"wrong shapes: {show(wrong)}")
        raise StateDictMismatch(
            f"{source} does not match the model it describes ({'; '.join(found)}): "
            "download it again, or pick the file made for this model"
        )


def build_exactly(
    make: Callable[[], Module], state_dict: dict[str, torch.Tensor], source: str, dtype: torch.dtype | None = None
) -> Module:
    """`make()` built on the meta device, then holding exactly `state_dict` (checked key by
    key and shape by shape first; floating-point tensors cast to `dtype` if given). The
    module's tensors ARE the state dict's (assign=True): nothing is allocated twice."""
    with torch.device("meta"):
        model = make()
    check_state_dict(model, state_dict, source)
    if dtype is not None:
        state_dict = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model
