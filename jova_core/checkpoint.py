"""JoVA checkpoints: the native format, reading any supported file, and dispatch.

Native format: a safetensors file whose metadata holds the config,
metadata["format"] = "jova", metadata["jova_config"] = JoVAConfig.to_json().
`load_transformer` also reads Wan2.1 (original, ComfyUI, diffusers layouts) and
JavisDiT++ transformers, converting on the fly (jova_core.convert), and names what any
other file looks like. Loading never falls back to random initialisation: a missing or
unexpected key, or a wrong shape, stops with the list of offenders.
Weights are read only with safetensors or torch.load(weights_only=True).
"""

from __future__ import annotations

import json
import os
from typing import Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import JoVAConfig
from .convert import convert_javisdit, convert_wan
from .convert.detect import FileKind, identify
from .convert.lora import merge_peft_lora, split_peft_wrapping
from .model.transformer import JoVATransformer

FORMAT_TAG = "jova"
CONVERTERS = {"wan2.1": convert_wan, "javisdit": convert_javisdit}
# Containers .pth releases wrap their state dict in.
_CONTAINER_KEYS = ("state_dict", "model", "module", "ema", "generator")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")

Progress = Callable[[int, int], None]  # (tensors read, total); may raise to interrupt


def save_state_dict(
    config: JoVAConfig, tensors: dict[str, torch.Tensor], path: str,
    extra_metadata: dict[str, str] | None = None, overwrite: bool = False,
) -> None:
    """Write a native JoVA file: `tensors` under `config` (refuses to overwrite unless asked)."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; choose another name or pass overwrite=True")
    metadata = {**(extra_metadata or {}), "format": FORMAT_TAG, "jova_config": config.to_json()}
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    tmp = path + ".partial"
    save_file(tensors, tmp, metadata=metadata)
    os.replace(tmp, path)


def save_transformer(model: JoVATransformer, path: str, extra_metadata: dict[str, str] | None = None, overwrite: bool = False) -> None:
    """Write `model` as a native JoVA safetensors file (refuses to overwrite unless asked)."""
    save_state_dict(model.config, model.state_dict(), path, extra_metadata, overwrite)


def read_metadata(path: str) -> dict[str, str]:
    with safe_open(path, framework="pt") as f:
        return f.metadata() or {}


def is_native(path: str) -> bool:
    return path.endswith(".safetensors") and read_metadata(path).get("format") == FORMAT_TAG


# -- reading any checkpoint file -----------------------------------------------------------


def _files(path: str) -> list[str]:
    """The weight files making up `path`: itself; the shards an index names (diffusers'
    *.safetensors.index.json, torch's *.bin.index.json); or, for a folder, its `model/`
    subfolder (JavisDiT++ releases), its one index, or its one weight file."""
    if os.path.isdir(path):
        if os.path.isdir(os.path.join(path, "model")):
            return _files(os.path.join(path, "model"))
        inside = sorted(os.listdir(path))
        indexes = [n for n in inside if n.endswith(".index.json")]
        weights = [n for n in inside if n.endswith(WEIGHT_SUFFIXES)]
        if len(indexes) == 1:
            return _files(os.path.join(path, indexes[0]))
        if len(weights) == 1:
            return [os.path.join(path, weights[0])]
        raise ValueError(f"{path} is a folder with {len(weights)} weight files and {len(indexes)} indexes; pass one file")
    if path.endswith(".index.json"):
        with open(path) as f:
            weight_map = json.load(f)["weight_map"]
        folder = os.path.dirname(path)
        return [os.path.join(folder, name) for name in sorted(set(weight_map.values()))]
    return [path]


def _torch_load(path: str) -> dict[str, torch.Tensor]:
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # mmap needs the zip format; legacy files load without it
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for files that are not checkpoints
        raise ValueError(
            f"{path} could not be read as a PyTorch checkpoint with weights_only=True ({type(err).__name__}: {err}); "
            "JoVA reads .safetensors files and plain tensor .pth/.pt files"
        ) from err
    while isinstance(state, dict) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        inner = next((state[k] for k in _CONTAINER_KEYS if isinstance(state.get(k), dict)), None)
        if inner is None:
            raise ValueError(f"{path} holds no flat tensor state dict (top-level keys: {sorted(state)[:8]})")
        state = inner
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def _open_safetensors(path: str):
    try:
        return safe_open(path, framework="pt")
    except SafetensorError as err:
        raise ValueError(f"{path} is not a readable safetensors file ({err}); is the download complete?") from err


def _items(path: str):
    """(key, tensor) of every weight file of `path`, one tensor at a time."""
    for file in _files(path):
        if file.endswith(".safetensors"):
            with _open_safetensors(file) as f:
                for key in f.keys():
                    yield key, f.get_tensor(key)
        else:
            yield from _torch_load(file).items()


def peek(path: str) -> tuple[list[str], dict[str, str]]:
    """Key names and safetensors metadata of a checkpoint, without reading safetensors data."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    keys, metadata = [], {}
    for file in _files(path):
        if file.endswith(".safetensors"):
            with _open_safetensors(file) as f:
                keys += list(f.keys())
                metadata = metadata or (f.metadata() or {})
        else:
            keys += list(_torch_load(file))
    return keys, metadata


def read_state_dict(path: str, dtype: torch.dtype | None = None, progress: Progress | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint (.safetensors, .pth/.pt/.bin, a sharded index or a
    folder, see `_files`), cast to `dtype` if given. `progress(done, total)` is called
    per tensor and may raise to stop."""
    total = len(peek(path)[0])
    tensors = {}
    for done, (key, tensor) in enumerate(_items(path), 1):
        tensors[key] = tensor if dtype is None else tensor.to(dtype)
        if progress:
            progress(done, total)
    return tensors


def read_release_adapter(path: str) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The PEFT LoRA adapter a release folder carries beside its weights (`lora/`), or None."""
    folder = os.path.join(path, "lora") if os.path.isdir(path) else ""
    if not os.path.isfile(os.path.join(folder, "adapter_config.json")):
        return None
    with open(os.path.join(folder, "adapter_config.json")) as f:
        config = json.load(f)
    return read_state_dict(folder), config


def check_state_dict(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Raise with every missing/unexpected key and wrong shape; silent when they match exactly."""
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

        lines = [f"{source} does not match the model it describes:"]
        if missing:
            lines.append(f"  missing {len(missing)} keys: {show(missing)}")
        if unexpected:
            lines.append(f"  unexpected {len(unexpected)} keys: {show(unexpected)}")
        if wrong:
            lines.append(f"  wrong shapes: {show(wrong)}")
        raise KeyError("\n".join(lines))


def build_from_state_dict(
    config: JoVAConfig, state_dict: dict[str, torch.Tensor], source: str, dtype=None, device="cpu", attention="sdpa"
) -> JoVATransformer:
    """A model of `config` holding exactly `state_dict` (checked key by key), eval mode."""
    with torch.device("meta"):
        model = JoVATransformer(config, attention=attention)
    check_state_dict(model, state_dict, source)
    if dtype is not None:
        state_dict = {k: v.to(dtype) for k, v in state_dict.items()}
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model.to(device).eval()


def load_native(path: str, dtype=None, device="cpu", attention="sdpa", progress: Progress | None = None) -> JoVATransformer:
    metadata = read_metadata(path)
    if metadata.get("format") != FORMAT_TAG or "jova_config" not in metadata:
        raise ValueError(f"{path} is not a native JoVA checkpoint (no 'jova_config' in its safetensors metadata)")
    config = JoVAConfig.from_json(metadata["jova_config"])
    state_dict = read_state_dict(path, dtype=dtype, progress=progress)
    return build_from_state_dict(config, state_dict, path, device=device, attention=attention)


# -- any supported file -> JoVA ------------------------------------------------------------


def identify_file(path: str) -> FileKind:
    """What the checkpoint at `path` is (reads key names and metadata only)."""
    return identify(*peek(path))


def _refuse(path: str, kind: FileKind, wanted: str = "a JoVA transformer") -> ValueError:
    return ValueError(f"{path} is not {wanted}: this looks like {kind.description}. {kind.hint}".strip())


def _read_foreign(path: str, dtype, progress: Progress | None) -> tuple[dict[str, torch.Tensor], bool]:
    """A foreign transformer's tensors, with the LoRA adapter its release folder ships
    merged in as that model's own inference does (see convert/lora.py); and whether
    there was one."""
    tensors, embedded = split_peft_wrapping(read_state_dict(path, dtype=dtype, progress=progress))
    adapter = read_release_adapter(path)
    if adapter:
        return merge_peft_lora(tensors, *adapter), True
    if embedded:
        raise ValueError(
            f"{path} embeds LoRA weights ({embedded[0]}, ...) but has no lora/adapter_config.json beside them "
            "saying how to scale them; pass the release folder that holds model/ and lora/"
        )
    return tensors, False


def convert_state_dict(kind: FileKind, state_dict: dict[str, torch.Tensor], source: str) -> tuple[JoVAConfig, dict[str, torch.Tensor]]:
    """Convert a foreign transformer's tensors and check them against a meta-device model."""
    config, tensors = CONVERTERS[kind.name](state_dict)
    with torch.device("meta"):
        check_state_dict(JoVATransformer(config), tensors, f"{source} (converted from {kind.description})")
    return config, tensors


def load_transformer(path: str, dtype=None, device="cpu", attention="sdpa", progress: Progress | None = None) -> JoVATransformer:
    """A ready (eval-mode) JoVA transformer from any supported file: a native JoVA
    checkpoint, a Wan2.1 text-to-video transformer (original, ComfyUI or diffusers
    layout; a .safetensors, a sharded diffusers index or folder, or a .pth), or a
    JavisDiT++ transformer (a file, or its release folder: model/ shards plus the
    lora/ adapter its inference merges); both converted on the fly (jova_core.convert).
    Any other file stops with what it looks like and where it belongs."""
    kind = identify_file(path)
    if not kind.loadable:
        raise _refuse(path, kind)
    if kind.name == FORMAT_TAG:
        return load_native(path, dtype=dtype, device=device, attention=attention, progress=progress)
    config, tensors = convert_state_dict(kind, _read_foreign(path, dtype, progress)[0], path)
    return build_from_state_dict(config, tensors, path, device=device, attention=attention)


def convert_checkpoint(
    src: str, out: str, fmt: str, dtype=None, overwrite: bool = False, progress: Progress | None = None
) -> JoVAConfig:
    """Convert the `fmt` ("wan2.1" or "javisdit") transformer at `src` into a native JoVA
    file at `out` (refuses to overwrite unless asked); returns the written config."""
    if fmt not in CONVERTERS:
        raise ValueError(f"unknown source format {fmt!r}; choose one of {sorted(CONVERTERS)}")
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} exists; choose another name or ask to overwrite it")
    kind = identify_file(src)
    if kind.name != fmt:
        wanted = {"wan2.1": "a Wan2.1 text-to-video transformer", "javisdit": "a JavisDiT++ transformer"}[fmt]
        hint = f" (convert it with --format {kind.name})" if kind.name in CONVERTERS else ""
        raise ValueError(str(_refuse(src, kind, wanted)) + hint)
    source_tensors, merged_adapter = _read_foreign(src, dtype, progress)
    config, tensors = convert_state_dict(kind, source_tensors, src)
    metadata = {"converted_from": fmt, "source_file": os.path.basename(os.path.normpath(src))}
    if merged_adapter:
        metadata["merged_adapter"] = "lora/"
    save_state_dict(config, tensors, out, extra_metadata=metadata, overwrite=overwrite)
    return config
