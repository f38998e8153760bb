"""daVinci-MagiHuman's DiT: the real checkpoint's key table and fp32 parity with a restatement.

The manifest test builds the released 15.3B model on the meta device and fills it from the
real key table (tests/data/manifests/magihuman_base_transformer.json). The parity tests run
tiny random models that contain every layer kind (per-modality and shared layers, GELU7 and
SwiGLU7 MLPs, grouped-query attention, the per-head gate) on odd and even patch grids and
on audio lengths on and off the 4-tokens-per-latent-frame grid, against `reference_forward`:
the forward written again from the architecture facts, token by token, with its own
patching (a Conv3d), RoPE (complex rotation of explicit pairs), attention (explicit
softmax, one key/value head per query group) and heads, sharing only the weights.
"""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from diffusers.hooks import apply_layerwise_casting
from manifests import manifest, manifest_state_dict
from safetensors.torch import save_file

from jova_core.checkpoint import build_magihuman, load_magihuman, load_transformer
from jova_core.identify import identify
from jova_core.convert.magihuman import convert_magihuman, is_magihuman
from jova_core.model.attention import _repeat_kv, get_attention
from jova_core.model.magihuman import MagiHumanConfig, MagiHumanTransformer
from jova_core.weights import StateDictMismatch

NAME = "magihuman_base_transformer"


# -- the released checkpoint's key table ---------------------------------------------------------


def test_real_size_model_on_meta_device_has_exactly_the_released_keys_and_shapes():
    with torch.device("meta"):
        model = MagiHumanTransformer()
    table = manifest(NAME)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: shape for k, (shape, _) in table["keys"].items()}
    assert len(ours) == table["n_keys"] == 331
    assert sum(math.prod(s) for s in ours.values()) == table["n_params"]
    assert sum(p.numel() for p in model.parameters()) == 15_299_419_136  # + the 16 RoPE bands (a buffer)


def test_released_key_table_converts_to_the_default_config_taking_every_key_once():
    state = manifest_state_dict(NAME)
    assert is_magihuman(state)
    config, tensors = convert_magihuman(state)
    assert config == MagiHumanConfig()
    assert (config.num_heads, config.num_kv_heads, config.swiglu7_width, config.video_in_channels) == (40, 8, 13652, 192)
    assert set(tensors) == set(state) and all(tensors[k] is state[k] for k in state)
    model = build_magihuman(state, NAME, device="meta")  # meta tensors: shapes checked, nothing allocated
    assert model.compute_dtype == torch.bfloat16  # block linears as released
    assert model.adapter.rope.bands.dtype == torch.float32
    # A training wrapper prefix is stripped.
    assert convert_magihuman({"module." + k: v for k, v in state.items()})[0] == config


def test_a_stray_or_missing_or_misshapen_key_is_refused_by_name():
    state = manifest_state_dict(NAME)
    with pytest.raises(KeyError, match="block.layers.3.attention.extra.weight"):
        convert_magihuman({**state, "block.layers.3.attention.extra.weight": torch.empty(1, device="meta")})
    missing = {k: v for k, v in state.items() if k != "block.layers.7.mlp.down_proj.weight"}
    with pytest.raises(KeyError, match="block.layers.7.mlp.down_proj.weight"):
        convert_magihuman(missing)
    wrong = {**state, "final_linear_audio.weight": torch.empty(63, 5120, device="meta")}
    with pytest.raises(StateDictMismatch, match="final_linear_audio.weight"):
        build_magihuman(wrong, "wrong.safetensors", device="meta")


# -- tiny models against the restatement -----------------------------------------------------------

# Layers: 0 mm + GELU7, 1 shared + GELU7, 2 shared + SwiGLU7, 3 mm + SwiGLU7; 4 query heads over
# 2 key/value heads; head_dim 16 -> 2 bands per axis, 12 of 16 dims rotated.
TINY = MagiHumanConfig(
    hidden_size=64, num_layers=4, head_dim=16, num_kv_heads=2, mm_layers=(0, 3), gelu7_layers=(0, 1),
    video_latent_channels=4, audio_in_channels=6, text_dim=10,
)


def tiny_model(config: MagiHumanConfig, seed: int = 0) -> MagiHumanTransformer:
    torch.manual_seed(seed)
    model = MagiHumanTransformer(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "norm_" in name:
                p.copy_(0.3 * torch.randn_like(p))  # offsets from 1, non-zero so (1 + w) matters
            elif name.endswith("up_gate_proj.weight"):
                p.copy_(torch.randn_like(p) * 4 / math.sqrt(p.shape[1]))  # large: the clamps at 7 act
            else:
                p.copy_(torch.randn_like(p) / math.sqrt(p.shape[-1]))
    return model


def reference_forward(model: MagiHumanTransformer, video, audio, text, stats: dict):
    """One sample at a time, token by token, from the facts only (see the module docstring)."""
    cfg = model.config
    sd = {k: v.double() for k, v in model.state_dict().items()}
    dim, hd, nh, nkv = cfg.hidden_size, cfg.head_dim, cfg.hidden_size // cfg.head_dim, cfg.num_kv_heads
    n_bands = hd // 8
    bands = torch.tensor([10000.0 ** (-k / n_bands) for k in range(n_bands)], dtype=torch.float64)
    assert torch.allclose(bands, sd["adapter.rope.bands"], rtol=1e-6)

    def rms(x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-6) * (1 + w)

    def expert(weight, modality, experts):
        return weight.chunk(experts, dim=0)[modality if experts == 3 else 0]

    outs_v, outs_a = [], []
    for b in range(text.shape[0]):
        c, f, h, w = video.shape[1:]
        gh, gw = h // 2, w // 2
        # Video: Conv3d 1x2x2 with the embedder's weight read as [dim, C, 1, 2, 2].
        conv_w = sd["adapter.video_embedder.weight"].reshape(dim, c, 1, 2, 2)
        vid = torch.nn.functional.conv3d(video[b : b + 1].double(), conv_w, sd["adapter.video_embedder.bias"], stride=(1, 2, 2))
        vid_tokens = vid[0].permute(1, 2, 3, 0).reshape(-1, dim)
        aud_tokens = audio[b].double().T @ sd["adapter.audio_embedder.weight"].T + sd["adapter.audio_embedder.bias"]
        txt_tokens = text[b].double() @ sd["adapter.text_embedder.weight"].T + sd["adapter.text_embedder.bias"]
        x = torch.cat([vid_tokens, aud_tokens, txt_tokens])
        modality = [0] * len(vid_tokens) + [1] * len(aud_tokens) + [2] * len(txt_tokens)

        # Positions: video (f, y - (H'-1)/2, x - (W'-1)/2); audio t_j = j ((T-1)//4) / (T-1); text none.
        pos = []
        for fi in range(f):
            for yi in range(gh):
                for xi in range(gw):
                    pos.append((fi, yi - (gh - 1) / 2, xi - (gw - 1) / 2))
        t_a = audio.shape[2]
        for j in range(t_a):
            pos.append((j * ((t_a - 1) // 4) / (t_a - 1) if t_a > 1 else 0.0, 0.0, 0.0))
        # Text: t = j - L read against a reference of 1: scale 0, except one token at t = -1.
        pos += [(-1.0 if len(txt_tokens) == 1 else 0.0, 0.0, 0.0)] * len(txt_tokens)
        # Angle of pair (i, i + 3n): axis i // n, band i % n.
        angles = torch.tensor([[p[i // n_bands] * bands[i % n_bands].item() for i in range(3 * n_bands)] for p in pos])
        half = 3 * n_bands

        def rotate(v):  # v [S, heads, hd]: pair (a, b) = (v[i], v[i + half]) rotated as a + ib by e^{i angle}
            z = torch.complex(v[..., :half], v[..., half : 2 * half]) * torch.polar(torch.ones_like(angles), angles)[:, None]
            return torch.cat([z.real, z.imag, v[..., 2 * half :]], dim=-1)

        for i in range(cfg.num_layers):
            p = f"block.layers.{i}."
            experts = 3 if i in cfg.mm_layers else 1
            q_list, k_list, v_list, g_list = [], [], [], []
            for s, m in enumerate(modality):
                hn = rms(x[s], expert(sd[p + "attention.pre_norm.weight"], m, experts))
                qkvg = expert(sd[p + "attention.linear_qkv.weight"], m, experts) @ hn
                q = qkvg[: nh * hd].reshape(nh, hd)
                k = qkvg[nh * hd : nh * hd + nkv * hd].reshape(nkv, hd)
                v = qkvg[nh * hd + nkv * hd : nh * hd + 2 * nkv * hd].reshape(nkv, hd)
                q_list.append(rms(q, expert(sd[p + "attention.q_norm.weight"], m, experts)))
                k_list.append(rms(k, expert(sd[p + "attention.k_norm.weight"], m, experts)))
                v_list.append(v)
                g_list.append(qkvg[nh * hd + 2 * nkv * hd :])
            q, k, v, g = rotate(torch.stack(q_list)), rotate(torch.stack(k_list)), torch.stack(v_list), torch.stack(g_list)
            heads = []
            for head in range(nh):
                kv = head // (nh // nkv)
                weights = torch.softmax(q[:, head] @ k[:, kv].T / math.sqrt(hd), dim=-1)
                heads.append((weights @ v[:, kv]) * torch.sigmoid(g[:, head : head + 1]))
            attn = torch.stack(heads, dim=1).reshape(len(modality), nh * hd)
            x = x + torch.stack([expert(sd[p + "attention.linear_proj.weight"], m, experts) @ attn[s] for s, m in enumerate(modality)])

            new = []
            for s, m in enumerate(modality):
                u = expert(sd[p + "mlp.up_gate_proj.weight"], m, experts) @ rms(x[s], expert(sd[p + "mlp.pre_norm.weight"], m, experts))
                if i in cfg.gelu7_layers:
                    cg = torch.minimum(u, torch.tensor(7.0, dtype=u.dtype))
                    act = cg * torch.sigmoid(1.702 * cg)
                    stats["gelu7_clamped"] = stats.get("gelu7_clamped", 0) + int((u > 7).sum())
                else:
                    gate, lin = u[0::2], u[1::2]
                    cg = torch.minimum(gate, torch.tensor(7.0, dtype=u.dtype))
                    act = cg * torch.sigmoid(1.702 * cg) * (torch.clamp(lin, -7, 7) + 1)
                    stats["swiglu7_clamped"] = stats.get("swiglu7_clamped", 0) + int((gate > 7).sum() + (lin.abs() > 7).sum())
                new.append(x[s] + expert(sd[p + "mlp.down_proj.weight"], m, experts) @ act)
            x = torch.stack(new)

        nv, na = len(vid_tokens), len(aud_tokens)
        head_v = rms(x[:nv], sd["final_norm_video.weight"]) @ sd["final_linear_video.weight"].T  # [Nv, 2*2*C]
        # Output features read (ph, pw, c), channel fastest.
        out_v = torch.zeros(c, f, h, w, dtype=torch.float64)
        for n in range(nv):
            fi, rem = divmod(n, gh * gw)
            yi, xi = divmod(rem, gw)
            for py in range(2):
                for px in range(2):
                    out_v[:, fi, 2 * yi + py, 2 * xi + px] = head_v[n, (py * 2 + px) * c : (py * 2 + px + 1) * c]
        outs_v.append(out_v)
        outs_a.append((rms(x[nv : nv + na], sd["final_norm_audio.weight"]) @ sd["final_linear_audio.weight"].T).T)
    return torch.stack(outs_v), torch.stack(outs_a)


def relative_error(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours.double() - ref).abs().max() / ref.abs().max()).item()


@pytest.mark.parametrize(
    "latent_hw, audio_len, text_len",
    [
        ((6, 8), 9, 5),  # patch grid 3 x 4 (odd and even sides), audio on grid: T = 4 (F - 1) + 1
        ((4, 10), 7, 5),  # grid 2 x 5, audio off grid (t_j = j / 3)
        ((2, 2), 1, 1),  # grid 1 x 1, a single audio token, a single (rotated) text token
    ],
)
def test_tiny_model_matches_restatement_at_fp32(latent_hw, audio_len, text_len):
    model = tiny_model(TINY)
    torch.manual_seed(1)
    video = torch.randn(2, TINY.video_latent_channels, 3, *latent_hw)
    audio = torch.randn(2, TINY.audio_in_channels, audio_len)
    text = torch.randn(2, text_len, TINY.text_dim)
    with torch.no_grad():
        ours_v, ours_a = model(video, audio, text)
    stats: dict = {}
    ref_v, ref_a = reference_forward(model, video, audio, text, stats)
    assert ours_v.shape == video.shape and ours_a.shape == audio.shape
    err_v, err_a = relative_error(ours_v, ref_v), relative_error(ours_a, ref_a)
    print(f"MagiHuman tiny parity {latent_hw}, T_a={audio_len}, L={text_len}: video {err_v:.2e}, audio {err_a:.2e} (max abs / max |ref|)")
    assert err_v <= 1e-4 and err_a <= 1e-4
    assert stats["gelu7_clamped"] > 0 and stats["swiglu7_clamped"] > 0  # the clamps were exercised


def test_restatement_is_sensitive_to_every_layer_kind():
    """The parity above is not vacuous: perturbing any one weight kind moves the output."""
    model = tiny_model(TINY)
    torch.manual_seed(1)
    video, audio, text = torch.randn(1, 4, 3, 6, 8), torch.randn(1, 6, 9), torch.randn(1, 5, 10)
    with torch.no_grad():
        base_v, base_a = model(video, audio, text)
        for key in [
            "block.layers.0.attention.q_norm.weight",  # per-modality layer
            "block.layers.1.mlp.up_gate_proj.weight",  # shared GELU7
            "block.layers.2.mlp.up_gate_proj.weight",  # shared SwiGLU7
            "block.layers.3.attention.linear_qkv.weight",  # per-modality layer, gate rows included
            "adapter.rope.bands",
        ]:
            tensor = model.state_dict()[key]
            saved = tensor.clone()
            tensor.add_(0.05 * torch.randn_like(tensor))
            v, a = model(video, audio, text)
            tensor.copy_(saved)
            assert relative_error(v, base_v.double()) > 1e-4 or relative_error(a, base_a.double()) > 1e-4, key


def test_per_modality_layers_route_text_weights_to_text_tokens_only():
    model = tiny_model(TINY)
    torch.manual_seed(2)
    video, audio, text = torch.randn(1, 4, 1, 2, 2), torch.randn(1, 6, 3), torch.randn(1, 4, 10)
    with torch.no_grad():
        v0, a0 = model(video, audio, text)
        # Layer 3 is the last: its text expert acts only on text tokens, which have no head.
        w = model.block.layers[3].mlp.down_proj.weight
        w[2 * TINY.hidden_size :].add_(1.0)
        v1, a1 = model(video, audio, text)
        assert torch.equal(v0, v1) and torch.equal(a0, a1)
        w[: TINY.hidden_size].add_(1.0)  # the video expert
        v2, a2 = model(video, audio, text)
        assert not torch.allclose(v0, v2) and torch.equal(a0, a2)


def test_video_only_and_audio_only_calls_and_bad_shapes():
    model = tiny_model(TINY)
    text = torch.randn(1, 3, 10)
    with torch.no_grad():
        v, a = model(torch.randn(1, 4, 2, 4, 4), None, text)
        assert v.shape == (1, 4, 2, 4, 4) and a is None
        v, a = model(None, torch.randn(1, 6, 5), text)
        assert v is None and a.shape == (1, 6, 5)
        with pytest.raises(ValueError, match="multiples of"):
            model(torch.randn(1, 4, 2, 5, 4), None, text)
        with pytest.raises(ValueError, match="audio latents must be"):
            model(None, torch.randn(1, 5, 7), text)
        with pytest.raises(ValueError, match="text must be"):
            model(None, torch.randn(1, 6, 7), torch.randn(1, 3, 9))


def test_grouped_query_attention_backends_agree_with_repeated_heads():
    torch.manual_seed(3)
    q, k, v = torch.randn(2, 7, 6, 8), torch.randn(2, 7, 2, 8), torch.randn(2, 7, 2, 8)
    k_full, v_full = _repeat_kv(q, k, v)
    assert torch.equal(k_full[:, :, 2], k[:, :, 0]) and torch.equal(k_full[:, :, 3], k[:, :, 1])  # head h reads h // 3
    sdpa = get_attention("sdpa")
    torch.testing.assert_close(sdpa(q, k, v), sdpa(q, k_full, v_full), rtol=1e-6, atol=1e-6)


def released_state_dict(model: MagiHumanTransformer) -> dict[str, torch.Tensor]:
    """The model's tensors stored as released: block linears bf16, the rest fp32."""
    return {k: (v.to(torch.bfloat16) if k.endswith(("linear_qkv.weight", "linear_proj.weight", "_proj.weight")) else v.clone())
            for k, v in model.state_dict().items()}


def test_released_layouts_load_sharded_or_merged_and_keep_bf16_block_linears(tmp_path):
    state = released_state_dict(tiny_model(TINY))
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2], "model-00002-of-00002.safetensors": keys[len(keys) // 2 :]}
    folder = tmp_path / "base"
    folder.mkdir()
    for name, names in shards.items():
        save_file({k: state[k].contiguous() for k in names}, str(folder / name))
    index = {"metadata": {}, "weight_map": {k: name for name, names in shards.items() for k in names}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    merged = tmp_path / "magihuman_merged.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(merged))

    torch.manual_seed(4)
    video, audio, text = torch.randn(1, 4, 2, 4, 6), torch.randn(1, 6, 5), torch.randn(1, 3, 10)
    results = []
    for path in (folder, folder / "model.safetensors.index.json", merged):
        model = load_magihuman(str(path))
        assert model.config == TINY and model.compute_dtype == torch.bfloat16
        assert all(torch.equal(model.state_dict()[k], state[k]) and model.state_dict()[k].dtype == state[k].dtype for k in state)
        with torch.no_grad():
            results.append(model(video, audio, text))
    assert all(torch.equal(r[0], results[0][0]) and torch.equal(r[1], results[0][1]) for r in results)


def test_bf16_recipe_stays_close_to_the_fp32_restatement():
    fp32 = tiny_model(TINY)
    model = build_magihuman(released_state_dict(fp32), "tiny")
    torch.manual_seed(5)
    video, audio, text = torch.randn(1, 4, 3, 6, 8), torch.randn(1, 6, 9), torch.randn(1, 5, 10)
    with torch.no_grad():
        v, a = model(video, audio, text)
    ref_v, ref_a = reference_forward(fp32, video, audio, text, {})
    err = max(relative_error(v, ref_v), relative_error(a, ref_a))
    print(f"MagiHuman tiny bf16-linears vs fp32 restatement: {err:.2e}")
    assert 1e-5 < err < 5e-2  # bf16 rounding shows, nothing worse


def test_a_file_of_another_model_is_refused_in_one_line():
    with pytest.raises(ValueError, match="not a daVinci-MagiHuman DiT") as info:
        build_magihuman(manifest_state_dict("wan2.1_t2v_1.3B_transformer"), "wan.safetensors", device="meta")
    assert "\n" not in str(info.value)


def test_detection_by_contents_names_magihuman_files():
    keys = list(manifest(NAME)["keys"])
    for variant in (keys, ["model.diffusion_model." + k for k in keys]):
        kind = identify(variant)
        assert kind.name == "magihuman" and kind.loadable and "super-resolution" in kind.description
    assert identify(list(manifest("stable_audio_open_vae")["keys"])).name == "sao-vae"
    # Its neighbours keep their names.
    assert identify(list(manifest("wan2.1_t2v_1.3B_transformer")["keys"])).name == "wan2.1"
    assert identify(list(manifest("wan2.1_vae")["keys"])).name == "wan-vae"


def test_fp8_storage_through_layerwise_casting_computes_in_bf16():
    fp32 = tiny_model(TINY)
    model = build_magihuman(released_state_dict(fp32), "tiny")
    torch.manual_seed(6)
    video, audio, text = torch.randn(1, 4, 3, 6, 8), torch.randn(1, 6, 9), torch.randn(1, 5, 10)
    with torch.no_grad():
        ref_v, ref_a = reference_forward(fp32, video, audio, text, {})
        apply_layerwise_casting(model, storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
        assert model.block.layers[2].mlp.down_proj.weight.dtype == torch.float8_e4m3fn
        assert model.block.layers[0].attention.q_norm.weight.dtype == torch.float32  # norms are not cast
        assert model.compute_dtype == torch.bfloat16
        v, a = model(video, audio, text)
    err = max(relative_error(v, ref_v), relative_error(a, ref_a))
    print(f"MagiHuman tiny fp8-stored weights vs fp32 restatement: {err:.2e}")
    assert err < 0.2  # fp8 rounding of every weight, nothing structurally wrong


def test_the_jova_loader_hosts_a_magihuman_file_as_it_is(tmp_path):
    path = tmp_path / "magihuman_tiny.safetensors"
    state = released_state_dict(tiny_model(TINY))
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    model = load_transformer(str(path))
    assert isinstance(model, MagiHumanTransformer) and model.config == TINY
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, None])
def test_weight_dtype_casts_only_the_block_linears_as_upstream(tmp_path, dtype):
    # The facts: upstream allocates the block linears (qkv+gate, proj, MLP up and down) in bf16
    # and the rest (embedders, RoPE bands, every RMSNorm, heads) in fp32, whatever the file holds.
    # Here the file holds everything in bf16, as the released base stores its embedders and heads.
    fp32 = tiny_model(TINY)
    path = tmp_path / "magihuman_bf16.safetensors"
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in fp32.state_dict().items()}, str(path))
    model = load_transformer(str(path), dtype=dtype)
    block_linear = re.compile(r"^block\.layers\.\d+\.(attention\.linear_(qkv|proj)|mlp\.(up_gate|down)_proj)\.weight$")
    for key, tensor in model.state_dict().items():
        wanted = (dtype or torch.bfloat16) if block_linear.match(key) else torch.float32
        assert tensor.dtype == wanted, key
    assert model.compute_dtype == (dtype or torch.bfloat16)
    torch.manual_seed(8)
    video, audio, text = torch.randn(1, 4, 2, 4, 6), torch.randn(1, 6, 5), torch.randn(1, 3, 10)
    with torch.no_grad():
        v, a = model(video, audio, text)
    assert v.dtype == a.dtype == torch.float32 and torch.isfinite(v).all() and torch.isfinite(a).all()
