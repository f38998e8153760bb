"""LoRA at inference (jova_core.lora): a runtime low-rank branch equals the merged weights.

Oracles: the trainer's adapters are merged by peft (its get_delta_weight, through
train.lora.merged_state_dict); Wan2.1 LoRAs are merged into the Wan state dict in the
file's own naming (original or diffusers, from diffusers' WanTransformer3DModel) and the
merged Wan model converted by convert_wan, so the name mapping and the audio copy are
checked against the converter rather than against themselves.
"""

from __future__ import annotations

import copy
import dataclasses
import os

import pytest
import torch
from convert_fixtures import TEXT_LEN, TINY, tiny_diffusers_wan, to_original_layout
from safetensors.torch import save_file

from jova_core.checkpoint import build_from_state_dict
from jova_core.config import JoVAConfig, preset_config
from jova_core.convert import convert_wan
from jova_core.lora import AppliedLora, apply_lora, read_lora
from jova_core.model.transformer import JoVATransformer
from jova_core.train.lora import add_lora, merged_state_dict, save_adapter

RANK = 3


def tiny_model(seed=0, **overrides) -> JoVATransformer:
    config = JoVAConfig(**{**dataclasses.asdict(preset_config("tiny")), **overrides})
    torch.manual_seed(seed)
    model = JoVATransformer(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.1)
    return model


def tiny_inputs(config, seed=1, batch=1):
    gen = torch.Generator().manual_seed(seed)
    return dict(
        video=torch.randn(batch, config.video_in_channels, 2, 4, 4, generator=gen),
        audio=torch.randn(batch, config.audio_in_channels, 8, generator=gen),
        t_video=torch.tensor([600.0]), t_audio=torch.tensor([300.0]),
        text=torch.randn(batch, 6, config.text_dim, generator=gen),
    )


@torch.no_grad()
def run(model, inputs):
    return torch.cat([o.flatten() for o in model(**inputs)])


def assert_equal_to_1e5(out, oracle):
    err = (out - oracle).abs().max().item()
    assert err <= 1e-5 * max(1.0, oracle.abs().max().item()), err


def trainer_adapter(tmp_path, model, seed, name="lora.safetensors", alpha=6.0):
    """A trained-looking adapter from the trainer's own code: file path, and the peft model."""
    peft_model = add_lora(copy.deepcopy(model), RANK, alpha)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    path = str(tmp_path / name)
    save_adapter(peft_model, path, RANK, alpha)
    return path, peft_model


def merged_model(model, peft_models_and_strengths):
    """(A copy of an unadapted) model with strength * (peft's merged - base) added for each adapter."""
    merged = copy.deepcopy(model)
    base = model.state_dict()
    state = {k: v.clone() for k, v in base.items()}
    for peft_model, strength in peft_models_and_strengths:
        for k, v in merged_state_dict(peft_model).items():
            state[k] += strength * (v - base[k])
    merged.load_state_dict(state)
    return merged


# -- the trainer's adapters ---------------------------------------------------------------


@pytest.mark.parametrize("strength", [1.0, 0.35, -1.5])
def test_trainer_adapter_at_a_strength_equals_the_merged_forward(tmp_path, strength):
    model = tiny_model()
    path, peft_model = trainer_adapter(tmp_path, model, seed=3)
    inputs = tiny_inputs(model.config)
    before = run(model, inputs)
    oracle = run(merged_model(model, [(peft_model, strength)]), inputs)
    handle = apply_lora(model, path, strength)
    out = run(model, inputs)
    assert (out - before).abs().max() > 1e-3  # the adapter does change the output
    assert_equal_to_1e5(out, oracle)
    handle.remove()


def test_remove_is_exact_and_state_dict_never_holds_the_factors(tmp_path):
    model = tiny_model()
    path, _ = trainer_adapter(tmp_path, model, seed=4)
    inputs = tiny_inputs(model.config)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    before = run(model, inputs)
    modules_before = [n for n, _ in model.named_modules()]
    handle = apply_lora(model, path, 0.8)
    assert set(model.state_dict()) == set(weights)
    handle.remove()
    handle.remove()  # a second remove does nothing
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert [n for n, _ in model.named_modules()] == modules_before
    assert torch.equal(run(model, inputs), before)  # bit-identical


def test_adapters_stack_and_remove_in_any_order(tmp_path):
    model = tiny_model()
    path_a, peft_a = trainer_adapter(tmp_path, model, seed=5, name="a.safetensors")
    path_b, peft_b = trainer_adapter(tmp_path, model, seed=6, name="b.safetensors", alpha=1.5)
    inputs = tiny_inputs(model.config)
    before = run(model, inputs)
    both = run(merged_model(model, [(peft_a, 0.7), (peft_b, -1.3)]), inputs)
    only_b = run(merged_model(model, [(peft_b, -1.3)]), inputs)
    a = apply_lora(model, path_a, 0.7)
    b = apply_lora(model, path_b, -1.3)
    assert_equal_to_1e5(run(model, inputs), both)
    a.remove()
    assert_equal_to_1e5(run(model, inputs), only_b)
    b.remove()
    assert torch.equal(run(model, inputs), before)


def test_trainer_saves_the_adapter_alone_with_its_alpha(tmp_path):
    from jova_core.weights import read_metadata

    model = tiny_model()
    path, peft_model = trainer_adapter(tmp_path, model, seed=7, alpha=6.0)
    metadata = read_metadata(path)
    assert metadata["format"] == "jova-lora" and float(metadata["lora_alpha"]) == 6.0
    adapter = read_lora(path, model)
    expected = {n.replace(".base_layer", "") for n, m in peft_model.named_modules() if hasattr(m, "lora_A")}
    assert set(adapter.pairs) == expected  # every adapted layer, nothing else
    assert all(p.scale == 6.0 / RANK for p in adapter.pairs.values())
    assert os.path.getsize(path) < sum(t.numel() * 4 for t in model.state_dict().values()) / 4


# -- Wan2.1 LoRAs in their published layouts ------------------------------------------------


@pytest.fixture(scope="module")
def wan():
    diffusers_sd = tiny_diffusers_wan(seed=0).state_dict()
    original = to_original_layout(diffusers_sd)
    config, tensors = convert_wan(original)
    base = build_from_state_dict(config, tensors, "tiny Wan")
    gen = torch.Generator().manual_seed(2)
    inputs = dict(
        video=torch.randn(1, 16, 2, 4, 4, generator=gen),
        audio=torch.randn(1, config.audio_in_channels, 6, generator=gen),
        t_video=torch.tensor([700.0]), t_audio=torch.tensor([400.0]),
        text=torch.randn(1, TEXT_LEN, TINY["text_dim"], generator=gen),
    )
    return dict(diffusers=diffusers_sd, original=original, base=base, inputs=inputs)


def linear_layers(state_dict):
    """Module names of the 2-D weights (the Linear layers) of a Wan state dict."""
    return sorted(k[: -len(".weight")] for k, v in state_dict.items() if k.endswith(".weight") and v.dim() == 2)


def random_factors(state_dict, seed):
    gen = torch.Generator().manual_seed(seed)
    factors = {}
    for module in linear_layers(state_dict):
        out_f, in_f = state_dict[module + ".weight"].shape
        factors[module] = (torch.randn(RANK, in_f, generator=gen) * 0.05, torch.randn(out_f, RANK, generator=gen) * 0.05)
    return factors


def write_lora(path, factors, layout, alpha=2.0):
    """The same factors in a published layout (alpha=None: the layout has no alpha)."""
    tensors = {}
    for module, (down, up) in factors.items():
        if layout == "comfyui":
            name, d, u = f"diffusion_model.{module}", "lora_down", "lora_up"
        elif layout == "kohya":
            name, d, u = "lora_unet_" + module.replace(".", "_"), "lora_down", "lora_up"
        else:  # diffusers / PEFT
            name, d, u = f"transformer.{module}", "lora_A", "lora_B"
        tensors[f"{name}.{d}.weight"], tensors[f"{name}.{u}.weight"] = down, up
        if alpha is not None:
            tensors[f"{name}.alpha"] = torch.tensor(alpha)
    save_file(tensors, str(path))
    return str(path)


def wan_merged(state_dict, factors, scale):
    merged = dict(state_dict)
    for module, (down, up) in factors.items():
        merged[module + ".weight"] = state_dict[module + ".weight"] + scale * (up @ down)
    config, tensors = convert_wan(merged)
    return build_from_state_dict(config, tensors, "merged tiny Wan")


@pytest.mark.parametrize("layout, naming, alpha", [
    ("comfyui", "original", 2.0), ("kohya", "original", 1.0), ("diffusers", "diffusers", None),
])
@pytest.mark.parametrize("apply_to_audio", [False, True])
def test_wan_lora_maps_every_key_and_equals_the_merged_conversion(tmp_path, wan, layout, naming, alpha, apply_to_audio):
    strength = 0.8
    factors = random_factors(wan[naming], seed=11)
    path = write_lora(tmp_path / f"{layout}.safetensors", factors, layout, alpha)
    model = wan["base"]
    adapter = read_lora(path, model, apply_to_audio)
    # Every module of the file lands on its video layer; the audio copies only when asked
    # (the audio head is the audio branch's own, so it never takes the video head's LoRA).
    video = {n for n in adapter.pairs if n.startswith("video.") or ".video." in n}
    audio = set(adapter.pairs) - video
    assert len(video) == len(factors)
    assert (len(audio) == len(factors) - 1) if apply_to_audio else not audio
    assert "audio.head.head" not in adapter.pairs

    scale = (alpha / RANK if alpha is not None else 1.0) * strength
    merged = wan_merged(wan[naming], factors, scale)
    if not apply_to_audio:  # the audio branch keeps the unadapted copy
        state = merged.state_dict()
        state.update({k: v for k, v in model.state_dict().items() if k.startswith("audio.") or ".audio." in k})
        merged.load_state_dict(state)
    handle = AppliedLora(model, adapter, strength)
    try:
        out = run(model, wan["inputs"])
    finally:
        handle.remove()
    assert_equal_to_1e5(out, run(merged, wan["inputs"]))


def test_the_three_layouts_of_one_lora_give_the_same_adapter(tmp_path, wan):
    factors = random_factors(wan["original"], seed=12)
    pairs = [read_lora(write_lora(tmp_path / f"{lay}.safetensors", factors, lay), wan["base"]).pairs
             for lay in ("comfyui", "kohya")]
    assert pairs[0].keys() == pairs[1].keys()
    assert all(torch.equal(pairs[0][k].up, pairs[1][k].up) and pairs[0][k].scale == pairs[1][k].scale for k in pairs[0])


def test_unmatched_modules_refuse_the_file_naming_them(tmp_path, wan):
    factors = random_factors(wan["original"], seed=13)
    factors["blocks.0.cross_attn.k_img"] = tuple(t.clone() for t in factors["blocks.0.cross_attn.k"])  # an image-to-video Wan layer
    path = write_lora(tmp_path / "i2v.safetensors", factors, "comfyui")
    with pytest.raises(ValueError, match=r"1 of its \d+ LoRA modules match no layer.*blocks\.0\.cross_attn\.k_img"):
        read_lora(path, wan["base"])
    # A LoRA for a wider model: refused with the shapes.
    wide = {m: (torch.zeros(RANK, d.shape[1] * 2), torch.zeros(u.shape[0], RANK)) for m, (d, u) in factors.items()
            if m == "blocks.0.self_attn.q"}
    with pytest.raises(ValueError, match="another size"):
        read_lora(write_lora(tmp_path / "wide.safetensors", wide, "comfyui"), wan["base"])


def test_files_that_are_not_loras_are_refused(tmp_path, wan):
    full = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in wan["original"].items()}, str(full))
    with pytest.raises(ValueError, match="not a LoRA: this looks like a Wan2.1 transformer.*; pick a LoRA file"):
        read_lora(str(full), wan["base"])
    half = tmp_path / "half.safetensors"
    save_file({"diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.zeros(2, 256)}, str(half))
    with pytest.raises(ValueError, match="only one of their two factors"):
        read_lora(str(half), wan["base"])


# -- fp8 storage and blocks that move -----------------------------------------------------------


def test_fp8_stored_weights_are_patched_in_the_compute_dtype(tmp_path):
    from diffusers.hooks import apply_layerwise_casting

    model = tiny_model(seed=1).to(torch.bfloat16)
    path, peft_model = trainer_adapter(tmp_path, tiny_model(seed=1), seed=8)
    apply_layerwise_casting(model, storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
    stored = {k: v.clone() for k, v in model.state_dict().items()}
    inputs = tiny_inputs(model.config)
    before = run(model, inputs)

    # Oracle: the fp8-rounded weights upcast, with peft's deltas merged in float32.
    base32 = tiny_model(seed=1)
    base32.load_state_dict({k: v.float() for k, v in stored.items()})
    oracle = run(merged_model(base32, [(peft_model, 1.0)]), inputs)

    handle = apply_lora(model, path)
    buffers = [b for n, b in model.named_buffers() if ".lora_" in n]
    assert buffers and all(b.dtype == torch.bfloat16 for b in buffers)
    out = run(model, inputs)
    assert model.blocks[0].video.self_attn.q.weight.dtype == torch.float8_e4m3fn
    # bf16 compute: close to the merged float32 oracle, and much closer than without the LoRA.
    err, effect = (out - oracle).abs().max(), (before - oracle).abs().max()
    assert err < 0.1 * effect, (err, effect)
    handle.remove()
    assert all(torch.equal(v.view(torch.uint8) if v.dtype == torch.float8_e4m3fn else v,
                           stored[k].view(torch.uint8) if v.dtype == torch.float8_e4m3fn else stored[k])
               for k, v in model.state_dict().items())
    assert torch.equal(run(model, inputs), before)


def test_factors_move_with_their_block(tmp_path):
    """Block swap moves blocks one at a time with block.to(device): each block carries its
    own layers' factors (shown with a dtype move, the same Module.to path a device move takes)."""
    model = tiny_model()
    path, _ = trainer_adapter(tmp_path, model, seed=9)
    handle = apply_lora(model, path)
    for block in model.blocks:
        own = [n for n, _ in block.named_buffers() if n.startswith("lora_")]
        assert own
        block.to(torch.float64)
        assert all(b.dtype == torch.float64 for n, b in block.named_buffers() if n.startswith("lora_"))
        block.to(torch.float32)
    per_block = sum(len([n for n, _ in b.named_buffers() if n.startswith("lora_")]) for b in model.blocks)
    assert per_block == sum(1 for n, _ in model.named_buffers() if n.startswith("blocks.") and ".lora_" in n)
    handle.remove()
