"""Tiny random Wan2.1 / JavisDiT++ checkpoints and independent oracles for the converter tests.

Oracles, none of which uses jova_core:
  - diffusers' WanTransformer3DModel (the Wan2.1 forward) and its single-file key
    converter (original layout -> diffusers layout);
  - `javisdit_reference`: a functional re-statement of JavisDiT++'s shared-weight
    forward, written from its public model description (one self- and cross-attention
    over [video; audio] tokens, audio FFN / modulation / time projection, negated output).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


# head dim 128 like every Wan2.1; everything else tiny.
TINY = dict(num_heads=2, head_dim=128, ffn_dim=64, text_dim=32, freq_dim=256, layers=2)
TEXT_LEN = 512  # Wan pads prompts to 512 tokens; the oracle sees the padded text too


def randomize_(module: torch.nn.Module, seed: int, std: float = 0.2) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return module


def tiny_diffusers_wan(seed: int = 0):
    from diffusers import WanTransformer3DModel

    model = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=TINY["num_heads"], attention_head_dim=TINY["head_dim"],
        in_channels=16, out_channels=16, text_dim=TINY["text_dim"], freq_dim=TINY["freq_dim"],
        ffn_dim=TINY["ffn_dim"], num_layers=TINY["layers"], cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", eps=1e-6,
    )
    return randomize_(model, seed).eval()


# Wan's original names for diffusers' (formats.md), as (diffusers fragment, original fragment).
_TO_ORIGINAL = [
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
    ("condition_embedder.time_proj", "time_projection.1"),
    ("attn1.to_q", "self_attn.q"), ("attn1.to_k", "self_attn.k"), ("attn1.to_v", "self_attn.v"),
    ("attn1.to_out.0", "self_attn.o"), ("attn1.norm_", "self_attn.norm_"),
    ("attn2.to_q", "cross_attn.q"), ("attn2.to_k", "cross_attn.k"), ("attn2.to_v", "cross_attn.v"),
    ("attn2.to_out.0", "cross_attn.o"), ("attn2.norm_", "cross_attn.norm_"),
    (".norm2.", ".norm3."), ("ffn.net.0.proj", "ffn.0"), ("ffn.net.2", "ffn.2"),
    ("proj_out", "head.head"),
]


def to_original_layout(diffusers_sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers -> original key names, checked against diffusers' own original->diffusers map."""
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    out = {}
    for key, value in diffusers_sd.items():
        new = key
        for src, dst in _TO_ORIGINAL:
            new = new.replace(src, dst)
        if new == "scale_shift_table":
            new = "head.modulation"
        elif new.endswith(".scale_shift_table"):
            new = new.replace(".scale_shift_table", ".modulation")
        out[new] = value
    back = convert_wan_transformer_to_diffusers(dict(out))
    assert set(back) == set(diffusers_sd), "the test's own key table disagrees with diffusers'"
    assert all(back[k] is diffusers_sd[k] for k in back)
    return out


def tiny_javisdit_state_dict(seed: int = 1, audio_channels: int = 8, patch=(2, 2)) -> dict[str, torch.Tensor]:
    """A random JavisDiT++-layout state dict: a tiny Wan (original names) plus its audio weights."""
    sd = to_original_layout(tiny_diffusers_wan(seed).state_dict())
    dim = TINY["num_heads"] * TINY["head_dim"]
    gen = torch.Generator().manual_seed(seed + 100)

    def rand(*shape):
        return torch.randn(shape, generator=gen) * 0.2

    sd["audio_patch_embedding.weight"] = rand(dim, audio_channels, *patch)
    sd["audio_patch_embedding.bias"] = rand(dim)
    sd["audio_head.modulation"] = rand(1, 2, dim)
    sd["audio_head.head.weight"] = rand(audio_channels * patch[0] * patch[1], dim)
    sd["audio_head.head.bias"] = rand(audio_channels * patch[0] * patch[1])
    sd["audio_time_projection.1.weight"] = rand(3 * dim, dim)
    sd["audio_time_projection.1.bias"] = rand(3 * dim)
    for i in range(TINY["layers"]):
        sd[f"blocks.{i}.audio_ffn.0.weight"] = rand(TINY["ffn_dim"], dim)
        sd[f"blocks.{i}.audio_ffn.0.bias"] = rand(TINY["ffn_dim"])
        sd[f"blocks.{i}.audio_ffn.2.weight"] = rand(dim, TINY["ffn_dim"])
        sd[f"blocks.{i}.audio_ffn.2.bias"] = rand(dim)
        sd[f"blocks.{i}.audio_modulation.param"] = rand(1, 3, dim)
    return sd


# -- JavisDiT++ forward, restated -----------------------------------------------------------


def _linear(x, sd, name):
    return F.linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])


def _rms(x, weight, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rotate(x, freqs):
    """x [B, S, H, D] rotated by complex freqs [S, D/2] (adjacent real/imag pairs)."""
    xc = torch.view_as_complex(x.double().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * freqs[None, :, None]).flatten(3).float()


def _freqs(positions, head_dim, theta=10000.0):
    d = head_dim
    parts = []
    for axis, dims in enumerate((d - 4 * (d // 6), 2 * (d // 6), 2 * (d // 6))):
        inv = 1.0 / theta ** (torch.arange(0, dims, 2, dtype=torch.float64) / dims)
        parts.append(torch.polar(torch.ones(len(positions), len(inv), dtype=torch.float64),
                                 torch.outer(positions[:, axis], inv)))
    return torch.cat(parts, dim=1)


def _attend(q, k, v):
    return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)


def javisdit_reference(sd, video, audio, t, text, num_heads=TINY["num_heads"], eps=1e-6):
    """JavisDiT++'s joint forward. video [B,16,F,H,W]; audio [B,C,T,M] (its layout: time
    before mel bins); t [B] on 0..1000; text [B,512,text_dim]. Returns its (video, audio)
    outputs, i.e. x0 - noise velocities."""
    pv = sd["patch_embedding.weight"].shape[2:]
    pa = sd["audio_patch_embedding.weight"].shape[2:]
    vx = F.conv3d(video, sd["patch_embedding.weight"], sd["patch_embedding.bias"], stride=pv)
    ax = F.conv2d(audio, sd["audio_patch_embedding.weight"], sd["audio_patch_embedding.bias"], stride=pa)
    b, dim, fv, hv, wv = vx.shape
    ta, ma = ax.shape[2:]
    nv = fv * hv * wv
    x = torch.cat([vx.flatten(2).transpose(1, 2), ax.permute(0, 2, 3, 1).reshape(b, ta * ma, dim)], dim=1)

    grid = torch.meshgrid(torch.arange(fv), torch.arange(hv), torch.arange(wv), indexing="ij")
    vpos = torch.stack(grid, -1).reshape(-1, 3).double()
    steps = torch.ceil(torch.linspace(0, fv - 1, ta, dtype=torch.float64))
    apos = torch.tensor([[steps[i], hv + i, wv + j] for i in range(ta) for j in range(ma)], dtype=torch.float64)
    freqs = _freqs(torch.cat([vpos, apos]), dim // num_heads)

    half = sd["time_embedding.0.weight"].shape[1] // 2
    angles = torch.outer(t.double(), 10000.0 ** (-torch.arange(half, dtype=torch.float64) / half))
    e = _linear(F.silu(_linear(torch.cat([angles.cos(), angles.sin()], 1).float(), sd, "time_embedding.0")), sd, "time_embedding.2")
    e6 = _linear(F.silu(e), sd, "time_projection.1").unflatten(1, (6, dim))
    e3 = _linear(F.silu(e), sd, "audio_time_projection.1").unflatten(1, (3, dim))
    ctx = _linear(F.gelu(_linear(text, sd, "text_embedding.0"), approximate="tanh"), sd, "text_embedding.2")

    def ln(x, name=None):
        w = sd[f"{name}.weight"] if name else None
        bias = sd[f"{name}.bias"] if name else None
        return F.layer_norm(x, (dim,), w, bias, eps)

    def heads(x):
        return x.unflatten(-1, (num_heads, -1))

    for i in range(sum(1 for k in sd if k.endswith(".self_attn.q.weight"))):
        p = f"blocks.{i}."
        m = (sd[p + "modulation"] + e6).chunk(6, dim=1)
        h = ln(x) * (1 + m[1]) + m[0]
        q = heads(_rms(_linear(h, sd, p + "self_attn.q"), sd[p + "self_attn.norm_q.weight"]))
        k = heads(_rms(_linear(h, sd, p + "self_attn.k"), sd[p + "self_attn.norm_k.weight"]))
        v = heads(_linear(h, sd, p + "self_attn.v"))
        y = _attend(_rotate(q, freqs), _rotate(k, freqs), v).flatten(2)
        x = x + _linear(y, sd, p + "self_attn.o") * m[2]
        h = ln(x, p + "norm3")
        q = heads(_rms(_linear(h, sd, p + "cross_attn.q"), sd[p + "cross_attn.norm_q.weight"]))
        k = heads(_rms(_linear(ctx, sd, p + "cross_attn.k"), sd[p + "cross_attn.norm_k.weight"]))
        v = heads(_linear(ctx, sd, p + "cross_attn.v"))
        x = x + _linear(_attend(q, k, v).flatten(2), sd, p + "cross_attn.o")
        xv, xa = x[:, :nv], x[:, nv:]
        xv = xv + _linear(F.gelu(_linear(ln(xv) * (1 + m[4]) + m[3], sd, p + "ffn.0"), approximate="tanh"), sd, p + "ffn.2") * m[5]
        am = (sd[p + "audio_modulation.param"] + e3).chunk(3, dim=1)
        ya = _linear(F.gelu(_linear(ln(xa) * (1 + am[1]) + am[0], sd, p + "audio_ffn.0"), approximate="tanh"), sd, p + "audio_ffn.2")
        x = torch.cat([xv, xa + ya * am[2]], dim=1)

    def head(x, name):
        shift, scale = (sd[f"{name}.modulation"] + e[:, None]).chunk(2, dim=1)
        return _linear(ln(x) * (1 + scale) + shift, sd, f"{name}.head")

    out_v = head(x[:, :nv], "head")  # [B, nv, (pt, ph, pw, c)]
    c = out_v.shape[-1] // math.prod(pv)
    out_v = out_v.reshape(b, fv, hv, wv, *pv, c).permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, c, fv * pv[0], hv * pv[1], wv * pv[2])
    out_a = head(x[:, nv:], "audio_head")  # [B, ta*ma, (p_time, p_mel, c)]
    c = out_a.shape[-1] // math.prod(pa)
    out_a = out_a.reshape(b, ta, ma, *pa, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, ta * pa[0], ma * pa[1])
    return -out_v, -out_a
