"""JoVA checkpoints: the native format, and dispatch of other transformers to their converters.

Native format: a safetensors file whose metadata holds the config,
metadata["format"] = "jova", metadata["jova_config"] = JoVAConfig.to_json(), and for
models converted from a release with its own inference settings (JavisDiT++)
metadata["jova_defaults"] = GenerationDefaults.to_json() (jova_core.defaults).
`load_transformer` also reads Wan2.1 (original, ComfyUI, diffusers layouts) and
JavisDiT++ transformers, converting on the fly (jova_core.convert), and names what any
other file looks like. Loading never falls back to random initialisation: a missing or
unexpected key, or a wrong shape, stops with the list of offenders.
Files are read through jova_core.weights (safetensors, or torch.load(weights_only=True)).
"""

from __future__ import annotations

import json
import os

import torch
from safetensors.torch import save_file

from .config import JoVAConfig
from .convert import convert_javisdit, convert_magihuman, convert_wan, is_magihuman
from .convert.javisdit import JAVISDIT_DEFAULTS
from .convert.lora import merge_peft_lora, split_peft_wrapping
from .defaults import GenerationDefaults
from .files import atomic_output, check_writable
from .identify import FileKind, identify, unhosted_release_part
from .model.hosted import cast_weights
from .model.magihuman import MAGIHUMAN_DEFAULTS, MAGIHUMAN_DISTILL_DEFAULTS, MagiHumanTransformer
from .model.transformer import JoVATransformer
from .weights import Progress, build_exactly, check_state_dict, peek, read_metadata, read_state_dict, weight_files

FORMAT_TAG = "jova"
CONVERTERS = {"wan2.1": convert_wan, "javisdit": convert_javisdit}
# Inference settings a source model comes with; written into the converted file.
SOURCE_DEFAULTS = {"javisdit": JAVISDIT_DEFAULTS, "magihuman": MAGIHUMAN_DEFAULTS}
DEFAULTS_KEY = "jova_defaults"


def save_state_dict(
    config: JoVAConfig, tensors: dict[str, torch.Tensor], path: str,
    extra_metadata: dict[str, str] | None = None, overwrite: bool = False,
) -> None:
    """Write a native JoVA file: `tensors` under `config` (refuses to overwrite unless asked;
    the file appears only once complete, see jova_core.files)."""
    metadata = {**(extra_metadata or {}), "format": FORMAT_TAG, "jova_config": config.to_json()}
    with atomic_output(path, overwrite) as partial:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, partial, metadata=metadata)


def save_transformer(model: JoVATransformer, path: str, extra_metadata: dict[str, str] | None = None, overwrite: bool = False) -> None:
    """Write `model` as a native JoVA safetensors file (refuses to overwrite unless asked)."""
    save_state_dict(model.config, model.state_dict(), path, extra_metadata, overwrite)


def is_native(path: str) -> bool:
    return path.endswith(".safetensors") and read_metadata(path).get("format") == FORMAT_TAG


def read_release_adapter(path: str) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The PEFT LoRA adapter a release folder carries beside its weights (`lora/`), or None."""
    folder = os.path.join(path, "lora") if os.path.isdir(path) else ""
    if not os.path.isfile(os.path.join(folder, "adapter_config.json")):
        return None
    with open(os.path.join(folder, "adapter_config.json")) as f:
        config = json.load(f)
    return read_state_dict(folder), config


def build_from_state_dict(
    config: JoVAConfig, state_dict: dict[str, torch.Tensor], source: str, dtype=None, device="cpu", attention="sdpa"
) -> JoVATransformer:
    """A model of `config` holding exactly `state_dict` (checked key by key), eval mode."""
    model = build_exactly(lambda: JoVATransformer(config, attention=attention), state_dict, source, dtype)
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


def generation_defaults(path: str) -> GenerationDefaults | None:
    """The generation defaults a transformer file carries: those stored in a native file's
    metadata, or those of the model a foreign file is (JavisDiT++); None when it has none."""
    kind = identify_file(path)
    if kind.name == FORMAT_TAG:
        stored = read_metadata(path).get(DEFAULTS_KEY)
        return GenerationDefaults.from_json(stored) if stored else None
    if kind.name == "magihuman" and _is_distill(path):
        return MAGIHUMAN_DISTILL_DEFAULTS
    return SOURCE_DEFAULTS.get(kind.name)


def _is_distill(path: str) -> bool:
    """Base and distill MagiHuman DiTs have the same keys: told apart by the release's
    folder (distill/) or a file name that says so."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    return os.path.basename(os.path.normpath(folder)).lower() == "distill" or "distill" in os.path.basename(path).lower()


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


def load_transformer(path: str, dtype=None, device="cpu", attention="sdpa", progress: Progress | None = None):
    """A ready (eval-mode) JoVA transformer from any supported file: a native JoVA
    checkpoint, a Wan2.1 text-to-video transformer (original, ComfyUI or diffusers
    layout; a .safetensors, a sharded diffusers index or folder, or a .pth), or a
    JavisDiT++ transformer (a file, or its release folder: model/ shards plus the
    lora/ adapter its inference merges); both converted on the fly (jova_core.convert);
    or a daVinci-MagiHuman DiT (its base/ or distill/ folder, index or merged file), hosted
    as a MagiHumanTransformer. All of them are hosted models (jova_core.model.hosted).
    Any other file stops with what it looks like and where it belongs."""
    unhosted = unhosted_release_part(path)
    if unhosted:
        raise ValueError(f"{path} is {unhosted}")
    kind = identify_file(path)
    if not kind.loadable:
        raise _refuse(path, kind)
    if kind.name == FORMAT_TAG:
        return load_native(path, dtype=dtype, device=device, attention=attention, progress=progress)
    if kind.name == "magihuman":  # hosted as it is (its own model class), not converted to JoVA
        return load_magihuman(path, dtype=dtype, device=device, attention=attention, progress=progress)
    config, tensors = convert_state_dict(kind, _read_foreign(path, dtype, progress)[0], path)
    return build_from_state_dict(config, tensors, path, device=device, attention=attention)


def convert_checkpoint(
    src: str, out: str, fmt: str, dtype=None, overwrite: bool = False, progress: Progress | None = None
) -> JoVAConfig:
    """Convert the `fmt` ("wan2.1" or "javisdit") transformer at `src` into a native JoVA
    file at `out`; returns the written config. Before reading any tensor it checks that
    `out` can be written: its folder exists and is writable, it is not `src` itself, and
    it does not exist unless `overwrite`."""
    if fmt not in CONVERTERS:
        raise ValueError(f"unknown source format {fmt!r}; choose one of {sorted(CONVERTERS)}")
    check_writable(out, overwrite, sources=weight_files(src) if os.path.exists(src) else ())
    kind = identify_file(src)
    if kind.name != fmt:
        wanted = {"wan2.1": "a Wan2.1 text-to-video transformer", "javisdit": "a JavisDiT++ transformer"}[fmt]
        hint = f" (convert it with --format {kind.name})" if kind.name in CONVERTERS else ""
        raise ValueError(str(_refuse(src, kind, wanted)) + hint)
    source_tensors, merged_adapter = _read_foreign(src, dtype, progress)
    config, tensors = convert_state_dict(kind, source_tensors, src)
    metadata = {"converted_from": fmt, "source_file": os.path.basename(os.path.normpath(src))}
    if fmt in SOURCE_DEFAULTS:
        metadata[DEFAULTS_KEY] = SOURCE_DEFAULTS[fmt].to_json()
    if merged_adapter:
        metadata["merged_adapter"] = "lora/"
    save_state_dict(config, tensors, out, extra_metadata=metadata, overwrite=overwrite)
    return config


def build_magihuman(
    state_dict: dict[str, torch.Tensor], source: str, dtype=None, device="cpu", attention="sdpa"
) -> MagiHumanTransformer:
    """The daVinci-MagiHuman DiT a state dict describes (architecture read off its shapes),
    holding exactly its tensors (checked key by key and shape by shape), eval mode."""
    if not is_magihuman(state_dict):
        raise ValueError(
            f"{source} is not a daVinci-MagiHuman DiT (no adapter.rope.bands / block.layers.0.attention.linear_qkv); "
            "pick a file from the base/ or distill/ folder of GAIR/daVinci-MagiHuman"
        )
    config, tensors = convert_magihuman(state_dict)
    model = build_exactly(lambda: MagiHumanTransformer(config, attention), tensors, source)
    cast_weights(model, model.hosting, dtype)  # block linears in dtype, the rest fp32 (as upstream)
    return model.to(device).eval()


def load_magihuman(path: str, dtype=None, device="cpu", attention="sdpa", progress: Progress | None = None) -> MagiHumanTransformer:
    """A MagiHuman DiT from a file, a sharded *.index.json or a folder holding either
    (the released base/ and distill/ layouts)."""
    state_dict = read_state_dict(path, progress=progress, what="a daVinci-MagiHuman DiT")
    return build_magihuman(state_dict, path, dtype=dtype, device=device, attention=attention)
