"""jova_core.weights: every loader reads through it, bad files get one-line messages that
name the file, and codec loading stays clear of the transformer and the converters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file
from test_codecs_audio import tiny_raw_vae_state_dict, tiny_vocoder_state
from test_codecs_video import tiny_original_file

from jova_core.checkpoint import load_transformer, save_transformer
from jova_core.codecs import load_audio_codec, load_video_codec
from jova_core.config import preset_config
from jova_core.lipsync.syncnet import SyncNet, load_syncnet
from jova_core.model.transformer import JoVATransformer
from jova_core.text.umt5 import UMT5TextEncoder
from jova_core.weights import (
    StateDictMismatch, WeightFileError, build_exactly, check_state_dict, peek, read_state_dict, strip_prefix,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    vae, vocoder = folder / "v1-16.pth", folder / "best_netG.pt"
    torch.save(tiny_raw_vae_state_dict(), vae)
    torch.save({"generator": tiny_vocoder_state()}, vocoder)
    return str(vae), str(vocoder)


# Each loader, called on a bad file at `path`.
LOADERS = {
    "transformer": load_transformer,
    "video VAE": load_video_codec,
    "audio VAE": lambda path, files: load_audio_codec(path, files[1]),
    "vocoder": lambda path, files: load_audio_codec(files[0], path),
    "SyncNet": load_syncnet,
    "umT5": lambda path: UMT5TextEncoder(path, device="cpu")("a prompt"),
}


def call(loader: str, path: str, audio_files):
    if loader in ("audio VAE", "vocoder"):
        return LOADERS[loader](path, audio_files)
    return LOADERS[loader](path)


def write_bad_file(folder, kind: str) -> str:
    """An empty file, a truncated safetensors, a pickled (non-weights-only) .pth, or a
    download that is not weights at all."""
    if kind == "empty":
        path = folder / "empty.safetensors"
        path.write_bytes(b"")
    elif kind == "truncated":
        path = folder / "truncated.safetensors"
        save_file({"weight": torch.randn(64, 64)}, str(path))
        path.write_bytes(path.read_bytes()[:-1000])
    elif kind == "truncated-pth":
        path = folder / "truncated.pth"
        torch.save({"weight": torch.randn(64, 64)}, path)
        path.write_bytes(path.read_bytes()[:-300])
    elif kind == "pickled":
        path = folder / "pickled.pth"
        torch.save(torch.nn.Linear(2, 2), path)  # a whole module: unpickling it could run code
    else:
        path = folder / "download.pth"
        path.write_text("<!DOCTYPE html><html>rate limited</html>")
    return str(path)


@pytest.mark.parametrize("kind", ["empty", "truncated", "truncated-pth", "pickled", "html"])
@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_bad_files_get_one_line_messages_naming_the_file(tmp_path, audio_files, loader, kind):
    path = write_bad_file(tmp_path, kind)
    with pytest.raises(ValueError) as err:
        call(loader, path, audio_files)
    message = str(err.value).split("\n" + "SyncNet weights are")[0]  # SyncNet adds where its file comes from
    assert path in message and "\n" not in message, message
    assert "weights_only=False" not in str(err.value) and "trust" not in str(err.value)
    expected = {"empty": "empty (0 bytes)", "truncated": "truncated or damaged safetensors",
                "truncated-pth": "could not be read as a PyTorch checkpoint", "pickled": "pickled Python objects",
                "html": "neither a safetensors file nor a PyTorch checkpoint (it starts with b'<!DOCTYP')"}[kind]
    assert expected in message


def test_pickled_file_names_the_object_and_never_suggests_unsafe_loading(tmp_path):
    path = write_bad_file(tmp_path, "pickled")
    with pytest.raises(WeightFileError, match=r"not a plain tensor state dict.*torch\.nn\.modules\.linear\.Linear") as err:
        read_state_dict(path)
    assert "weights_only=False" not in str(err.value)


def test_non_weights_named_safetensors_says_what_it_is(tmp_path):
    path = tmp_path / "page.safetensors"
    path.write_text("<!DOCTYPE html><html>not found</html>")
    with pytest.raises(WeightFileError, match=r"page\.safetensors is neither a safetensors file nor a PyTorch checkpoint"):
        peek(str(path), what="a Wan2.1 VAE")
    with pytest.raises(WeightFileError, match="; expected a Wan2.1 VAE$"):
        peek(str(path), what="a Wan2.1 VAE")


def test_safetensors_renamed_pth_is_read_as_safetensors(tmp_path):
    model = JoVATransformer(preset_config("tiny"))
    native = tmp_path / "jova.safetensors"
    save_transformer(model, str(native))
    renamed = tmp_path / "jova.pth"
    shutil.copy(native, renamed)
    loaded = load_transformer(str(renamed))
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

    # A codec file too.
    path, reference = tiny_original_file(tmp_path, ".safetensors")
    os.rename(path, tmp_path / "wan_vae.pth")
    codec = load_video_codec(str(tmp_path / "wan_vae.pth"))
    assert codec.vae.state_dict().keys() == reference.state_dict().keys()
    assert all(torch.equal(codec.vae.state_dict()[k], v) for k, v in reference.state_dict().items())


def sharded(tmp_path) -> tuple[str, dict[str, torch.Tensor]]:
    tensors = {f"layer{i}.weight": torch.randn(2, 2) for i in range(4)}
    folder = tmp_path / "sharded"
    folder.mkdir()
    weight_map = {}
    for i, (key, value) in enumerate(tensors.items()):
        name = f"model-{i % 2 + 1:05d}-of-00002.safetensors"
        weight_map[key] = name
    for name in set(weight_map.values()):
        save_file({k: tensors[k] for k, n in weight_map.items() if n == name}, str(folder / name))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return str(folder / "model.safetensors.index.json"), tensors


def test_sharded_index_reads_and_names_its_problems(tmp_path):
    index, tensors = sharded(tmp_path)
    for path in (index, os.path.dirname(index)):
        read = read_state_dict(path)
        assert read.keys() == tensors.keys() and all(torch.equal(read[k], v) for k, v in tensors.items())

    with open(index) as f:
        good = f.read()
    with open(index, "w") as f:
        f.write(good[:-20])  # cut short: not JSON
    for loader in (read_state_dict, load_transformer):
        with pytest.raises(WeightFileError, match=r"model\.safetensors\.index\.json is not a valid sharded-checkpoint index"):
            loader(os.path.dirname(index))
    with open(index, "w") as f:
        json.dump({"metadata": {}}, f)
    with pytest.raises(WeightFileError, match="no 'weight_map'"):
        read_state_dict(index)

    with open(index, "w") as f:
        f.write(good)
    os.remove(os.path.join(os.path.dirname(index), "model-00002-of-00002.safetensors"))
    with pytest.raises(WeightFileError, match=r"index\.json names 1 shard\(s\) missing .*model-00002-of-00002\.safetensors"):
        load_transformer(index)


def test_containers_are_unwrapped_and_prefixes_stripped(tmp_path):
    state = {"module.a": torch.ones(2), "module.b": torch.zeros(3)}
    torch.save({"epoch": 3, "optimizer": {"lr": 1e-4}, "state_dict": {"ema": state}}, tmp_path / "trainer.ckpt")
    read = read_state_dict(str(tmp_path / "trainer.ckpt"))
    assert strip_prefix(read, ("model.", "module.")).keys() == {"a", "b"}
    assert strip_prefix({"module.a": 1, "b": 2}, ("module.",)) == {"module.a": 1, "b": 2}  # only when all carry it
    torch.save({"epoch": 3, "weights": [torch.ones(1)]}, tmp_path / "odd.pt")
    with pytest.raises(WeightFileError, match=r"odd\.pt holds no flat tensor state dict \(top-level keys: \['epoch', 'weights'\]\)"):
        read_state_dict(str(tmp_path / "odd.pt"))


def test_exact_build_names_every_offender_and_never_initialises_randomly():
    state = torch.nn.Linear(3, 2).state_dict()
    model = build_exactly(lambda: torch.nn.Linear(3, 2), state, "linear.pt", dtype=torch.bfloat16)
    assert model.weight.dtype == torch.bfloat16 and torch.equal(model.weight, state["weight"].bfloat16())
    broken = {"weight": torch.zeros(2, 4), "extra": torch.zeros(1)}
    with pytest.raises(StateDictMismatch) as err:
        check_state_dict(torch.nn.Linear(3, 2), broken, "broken.pt")
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)
    assert str(err.value) == (
        "broken.pt does not match the model it describes (missing 1 keys: bias; unexpected 1 keys: extra; "
        "wrong shapes: weight: file [2, 4] vs model [2, 3]): download it again, or pick the file made for this model"
    )


def test_missing_file_names_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.pth'; expected a Wan VAE"):
        load_video_codec(str(tmp_path / "absent.pth"))


CHILD = """
import sys
from jova_core.codecs import load_audio_codec, load_video_codec
from jova_core.lipsync.syncnet import load_syncnet
import torch
video = load_video_codec(sys.argv[1])
audio = load_audio_codec(sys.argv[2], sys.argv[3])
load_syncnet(sys.argv[4])
assert video.decode(torch.zeros(1, 16, 1, 2, 2)).shape[1] == 1
assert audio.decode(torch.zeros(1, 20, 2)).shape[-1] == audio.num_samples(2)
print(" ".join(sorted(m for m in sys.modules if m.startswith("jova_core"))))
"""


def test_codec_loading_imports_no_model_code(tmp_path, audio_files):
    video, _ = tiny_original_file(tmp_path, ".pth")
    torch.save(SyncNet().state_dict(), tmp_path / "syncnet_v2.model")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, video, *audio_files, str(tmp_path / "syncnet_v2.model")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    assert "jova_core.weights" in loaded and "jova_core.codecs.wan_vae" in loaded  # really loaded through it
    heavy = [m for m in loaded if m in ("jova_core.checkpoint", "jova_core.model", "jova_core.convert")
             or m.startswith(("jova_core.model.", "jova_core.convert."))]
    assert heavy == []
