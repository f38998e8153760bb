"""load_transformer on every kind of file, file-kind detection, and the convert CLI."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from manifests import manifest_state_dict
from convert_fixtures import tiny_diffusers_wan, tiny_javisdit_state_dict, to_original_layout
from safetensors.torch import save_file

from jova_core.checkpoint import identify_file, load_native, load_transformer, read_metadata, save_transformer
from jova_core.cli import main
from jova_core.config import preset_config
from jova_core.convert import convert_javisdit, convert_wan
from jova_core.identify import identify
from jova_core.model.transformer import JoVATransformer


def assert_same_weights(model, tensors):
    state = model.state_dict()
    assert set(state) == set(tensors)
    for key, value in tensors.items():
        assert torch.equal(state[key], value.to(state[key].dtype)), key


@pytest.fixture(scope="module")
def wan_sd():
    return tiny_diffusers_wan(seed=5).state_dict()


def test_native_round_trip(tmp_path):
    model = JoVATransformer(preset_config("tiny"))
    path = str(tmp_path / "jova.safetensors")
    save_transformer(model, path)
    assert identify_file(path).name == "jova"
    loaded = load_transformer(path, dtype=torch.bfloat16)
    assert loaded.config == model.config
    assert all(p.dtype == torch.bfloat16 for p in loaded.parameters())
    assert_same_weights(loaded, model.state_dict())


@pytest.mark.parametrize("layout", ["diffusers-sharded", "comfyui", "original-pth"])
def test_wan_files_load_converted(tmp_path, wan_sd, layout):
    original = {k: v.contiguous() for k, v in to_original_layout(wan_sd).items()}
    if layout == "diffusers-sharded":
        # config.json + diffusion_pytorch_model-0000N-of-0000M.safetensors + index
        tiny_diffusers_wan(seed=5).save_pretrained(tmp_path / "transformer", max_shard_size="2MB")
        assert len([n for n in os.listdir(tmp_path / "transformer") if n.endswith(".safetensors")]) > 1
        path = str(tmp_path / "transformer")
    elif layout == "comfyui":
        path = str(tmp_path / "wan_comfy.safetensors")
        save_file({f"model.diffusion_model.{k}": v for k, v in original.items()}, path)
    else:
        path = str(tmp_path / "wan.pth")
        torch.save(original, path)
    kind = identify_file(path)
    assert kind.name == "wan2.1", kind
    model = load_transformer(path)
    _, expected = convert_wan(original)
    assert_same_weights(model, expected)
    assert not model.training


def test_javisdit_file_loads_converted(tmp_path):
    source = tiny_javisdit_state_dict(seed=6)
    path = str(tmp_path / "javisdit.safetensors")
    save_file({k: v.contiguous() for k, v in source.items()}, path)
    model = load_transformer(path)
    assert model.config.audio_rope == "javisdit"
    assert_same_weights(model, convert_javisdit(source)[1])


@pytest.mark.parametrize(
    "keys, looks_like, advice",
    [
        (["encoder.conv1.weight", "encoder.downsamples.0.residual.0.gamma", "decoder.head.2.weight"], "Wan2.1 video VAE", "load_video_codec"),
        (["diffusion_model.blocks.0.self_attn.q.lora_A.weight", "diffusion_model.blocks.0.self_attn.q.lora_B.weight"], "LoRA", "base transformer"),
        (["encoder.block.0.layer.0.SelfAttention.q.weight", "shared.weight"], "text encoder", "CLIPLoader"),
        (["video.patch_embedding.weight", "blocks.0.video.self_attn.q.weight"], "without its config", "save_transformer"),
        (["foo.weight", "bar.bias"], "unrecognised checkpoint (first keys: bar.bias, foo.weight)", "Wan2.1"),
    ],
)
def test_other_files_are_named_not_loaded(tmp_path, keys, looks_like, advice):
    path = str(tmp_path / "thing.safetensors")
    save_file({k: torch.zeros(2) for k in keys}, path)
    with pytest.raises(ValueError, match="is not a JoVA transformer") as err:
        load_transformer(path)
    assert looks_like in str(err.value) and advice in str(err.value)


def test_unreadable_files_say_so(tmp_path):
    for name in ("broken.safetensors", "broken.pth"):
        path = tmp_path / name
        path.write_text("this is not a checkpoint")
        with pytest.raises(ValueError, match="safetensors|PyTorch checkpoint"):
            load_transformer(str(path))
    with pytest.raises(FileNotFoundError):
        load_transformer(str(tmp_path / "absent.safetensors"))


@pytest.mark.parametrize(
    "manifest, kind",
    [
        ("wan2.1_t2v_1.3B_transformer", "wan2.1"), ("wan2.1_t2v_14B_transformer", "wan2.1"),
        ("javisdit_v1.0_jav_transformer", "javisdit"), ("wan2.1_vae", "wan-vae"),
        ("mmaudio_vae_16k", "mmaudio-vae"), ("mmaudio_vae_44k", "mmaudio-vae"),
        ("bigvgan_16k_mmaudio", "bigvgan"), ("bigvgan_v2_44khz_128band_512x", "bigvgan"),
        ("audioldm2_vae", "audioldm2-vae"), ("audioldm2_vocoder", "audioldm2-vocoder"),
    ],
)
def test_identify_real_key_tables(manifest, kind):
    assert identify(list(manifest_state_dict(manifest))).name == kind


def test_convert_cli_writes_and_refuses_to_overwrite(tmp_path, wan_sd, capsys):
    src = str(tmp_path / "wan.safetensors")
    save_file(wan_sd, src)
    out = str(tmp_path / "jova_wan.safetensors")
    argv = ["convert", "--format", "wan2.1", "--src", src, "--out", out]
    assert main(argv) == 0
    written = load_native(out)
    assert_same_weights(written, convert_wan(wan_sd)[1])
    before = os.stat(out).st_mtime_ns, open(out, "rb").read()

    assert main(argv) == 1
    assert "exists" in capsys.readouterr().err
    assert (os.stat(out).st_mtime_ns, open(out, "rb").read()) == before

    assert main(argv + ["--overwrite", "--dtype", "bf16"]) == 0
    assert load_native(out).video.patch_embedding.weight.dtype == torch.bfloat16

    other = str(tmp_path / "other.safetensors")
    assert main(["convert", "--format", "javisdit", "--src", src, "--out", other]) == 1
    err = capsys.readouterr().err
    assert "Wan2.1 transformer" in err and "--format wan2.1" in err
    assert not os.path.exists(other)


def linear_tree(state_dict, names):
    """An nn.Module holding the Linear layers `names` of `state_dict` at those paths."""
    root = torch.nn.Module()
    for name in names:
        parent = root
        *path, leaf = name.split(".")
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, torch.nn.Module())
            parent = getattr(parent, part)
        weight = state_dict[f"{name}.weight"]
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
        layer.load_state_dict({"weight": weight, "bias": state_dict[f"{name}.bias"]})
        parent.add_module(leaf, layer)
    return root


def test_javisdit_release_folder_merges_its_lora(tmp_path):
    """A JavisDiT++ training output: model/ as sharded .bin with an index, lora/ a PEFT
    adapter; its inference merges the adapter, so the conversion must too (peft is the oracle)."""
    from peft import LoraConfig, get_peft_model

    source = tiny_javisdit_state_dict(seed=7)
    model_dir = tmp_path / "release" / "model"
    model_dir.mkdir(parents=True)
    targets = ["blocks.0.self_attn.q", "blocks.1.audio_ffn.0", "blocks.1.cross_attn.o"]
    peft_model = get_peft_model(
        linear_tree(source, targets),
        LoraConfig(target_modules=["self_attn.q", "audio_ffn.0", "cross_attn.o"], r=4, lora_alpha=8, init_lora_weights=False),
    )
    peft_model.save_pretrained(tmp_path / "release" / "lora")
    # model/ as ColossalAI may save a PEFT-wrapped model: base_layer infix, adapter inside.
    saved = {k: v.clone() for k, v in source.items() if not k.startswith("blocks.0.self_attn.q.")}
    saved.update({k: v.detach().clone() for k, v in peft_model.get_base_model().state_dict().items() if "blocks.0.self_attn.q" in k})
    assert "blocks.0.self_attn.q.base_layer.weight" in saved and "blocks.0.self_attn.q.lora_A.default.weight" in saved
    keys = sorted(saved)
    shards = {"pytorch_model-00001-of-00002.bin": keys[::2], "pytorch_model-00002-of-00002.bin": keys[1::2]}
    for file, names in shards.items():
        torch.save({k: saved[k] for k in names}, model_dir / file)
    weight_map = {k: file for file, names in shards.items() for k in names}
    (model_dir / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))

    merged = peft_model.merge_and_unload().state_dict()
    expected_source = {**source, **{f"{t}.weight": merged[f"{t}.weight"] for t in targets}}
    assert not torch.allclose(expected_source["blocks.0.self_attn.q.weight"], source["blocks.0.self_attn.q.weight"])

    release = str(tmp_path / "release")
    assert identify_file(release).name == "javisdit"
    model = load_transformer(release)
    state = model.state_dict()
    for key, value in convert_javisdit(expected_source)[1].items():
        torch.testing.assert_close(state[key], value, rtol=1e-6, atol=1e-6, msg=key)
    out = str(tmp_path / "jova.safetensors")
    assert main(["convert", "--format", "javisdit", "--src", release, "--out", out]) == 0
    assert read_metadata(out)["merged_adapter"] == "lora/"

    # Without lora/ the embedded adapter cannot be scaled: refused, not dropped.
    shutil.rmtree(tmp_path / "release" / "lora")
    with pytest.raises(ValueError, match="embeds LoRA weights"):
        load_transformer(release)
