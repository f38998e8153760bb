"""The transformer's speed-minded code paths compute what the plain formulas compute.

- RoPE: `apply_rope` (pair-swap form, partly in place) equals the textbook rotation of
  adjacent pairs bit for bit, forward and backward.
- Token layout: the residual stream enters the blocks contiguous (a transposed view made
  every norm copy it).
- The FFN's in-place GELU gives nn.GELU's values and gradients.
- LayerNorm32 runs with bf16 affine weights (a Wan2.1 checkpoint loaded in bf16).
- Regional compilation (compile_blocks) gives the same output, one graph for blocks of
  one kind, and sees LoRA hooks attached after compiling.
"""

from __future__ import annotations

import dataclasses

import torch

from jova_core.config import JoVAConfig, preset_config
from jova_core.model import rope
from jova_core.model.blocks import LayerNorm32, feed_forward
from jova_core.model.transformer import JoVATransformer


def textbook_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """(re, im) -> (re cos - im sin, re sin + im cos) with float32 cos/sin of float64 angles."""
    cos, sin = torch.cos(angles).float()[None, :, None], torch.sin(angles).float()[None, :, None]
    real, imag = x.float()[..., 0::2], x.float()[..., 1::2]
    out = torch.empty_like(x, dtype=torch.float32)
    out[..., 0::2] = real * cos - imag * sin
    out[..., 1::2] = real * sin + imag * cos
    return out.to(x.dtype)


def test_apply_rope_is_bit_identical_to_the_textbook_rotation():
    g = torch.Generator().manual_seed(0)
    angles = torch.randn(7, 24, generator=g, dtype=torch.float64) * 50  # big angles too
    cos, sin = rope.cos_sin(angles)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(2, 7, 3, 48, generator=g).to(dtype)
        got = rope.apply_rope(x, cos, sin)
        assert got.dtype == dtype
        assert torch.equal(got, textbook_rope(x, angles))
        assert not torch.equal(got, x)


def test_apply_rope_gradient_matches_the_textbook_rotation():
    g = torch.Generator().manual_seed(1)
    angles = torch.randn(5, 8, generator=g, dtype=torch.float64)
    cos, sin = rope.cos_sin(angles)
    x = torch.randn(1, 5, 2, 16, generator=g)
    weight = torch.randn(1, 5, 2, 16, generator=g)
    grads = []
    for fn in (lambda t: rope.apply_rope(t, cos, sin), lambda t: textbook_rope(t, angles)):
        leaf = x.clone().requires_grad_()
        (fn(leaf) * weight).sum().backward()
        grads.append(leaf.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-6)


def cross_config() -> JoVAConfig:
    """The tiny preset with Wan2.1's cross-attention text."""
    return JoVAConfig(**{**dataclasses.asdict(preset_config("tiny")), "text_attention": "cross", "dual_stream_layers": 0})


def test_tokens_enter_the_blocks_contiguous():
    g = torch.Generator().manual_seed(2)
    for config in (preset_config("tiny"), cross_config()):
        model = JoVATransformer(config).eval()
        seen = []
        model.blocks[0].register_forward_pre_hook(lambda module, args: seen.extend(args[1]))
        with torch.no_grad():
            model(
                video=torch.randn(1, 16, 2, 4, 6, generator=g), audio=torch.randn(1, 20, 9, generator=g),
                t_video=500.0, t_audio=500.0, text=torch.randn(1, 5, config.text_dim, generator=g),
            )
        assert len(seen) == 2 and all(tokens.is_contiguous() for tokens in seen)


def test_ffn_in_place_gelu_matches_nn_gelu_forward_and_backward():
    torch.manual_seed(4)
    ffn = feed_forward(8, 32)
    reference = torch.nn.Sequential(ffn[0], torch.nn.GELU(approximate="tanh"), ffn[2])
    x = torch.randn(2, 5, 8)
    results = []
    for net in (ffn, reference):
        leaf = x.clone().requires_grad_()
        out = net(leaf)
        out.square().sum().backward()
        results.append((out.detach(), leaf.grad, ffn[0].weight.grad.clone()))
        ffn.zero_grad()
    for got, expected in zip(*results):
        assert torch.equal(got, expected)
    with torch.no_grad():
        assert torch.equal(ffn(x), reference(x))


def test_layernorm32_accepts_bf16_affine_weights():
    norm = LayerNorm32(8, 1e-6, elementwise_affine=True)
    with torch.no_grad():
        norm.weight.normal_(), norm.bias.normal_()
    x = torch.randn(2, 3, 8)
    expected = norm(x)
    norm.to(torch.bfloat16)
    got = norm(x)  # float32 input, bf16 weights
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=2e-2, atol=2e-2)


def test_cross_text_model_runs_in_bf16_close_to_float32():
    """Cross-attention text (Wan2.1 layout) has affine norm3 weights; in bf16 the forward
    runs and stays near the float32 forward on the same bf16-rounded weights (the float32
    path is checked against diffusers in test_parity_wan)."""
    model = JoVATransformer(cross_config()).eval()
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((torch.randn(p.shape, generator=gen) * 0.2).to(torch.bfloat16).float())
    video = torch.randn(1, 16, 2, 4, 4, generator=gen).to(torch.bfloat16).float()
    text = torch.randn(1, 5, model.config.text_dim, generator=gen)
    with torch.no_grad():
        expected, _ = model(video=video, t_video=300.0, text=text)
        got, _ = model.to(torch.bfloat16)(video=video.to(torch.bfloat16), t_video=300.0, text=text)
    assert got.dtype == torch.bfloat16
    err = (got.float() - expected).abs().max() / expected.abs().max()
    assert err < 0.05, f"bf16 forward is {err:.3f} (relative) from the float32 one"


def test_compiled_blocks_compile_once_per_kind_and_see_loras_attached_later(tmp_path):
    """Regional compilation (backend "eager": dynamo's capture and guards, no code
    generation, so the test stays fast): every single-stream block reuses one graph, the
    output is unchanged, and a LoRA attached after compiling is not skipped."""
    from torch._dynamo.utils import counters

    from jova_core.convert.lora import LoraPair
    from jova_core.lora import AppliedLora, LoraAdapter

    torch.manual_seed(0)
    model = JoVATransformer(preset_config("tiny", dual_stream_layers=0, single_stream_layers=3)).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    inputs = dict(video=torch.randn(1, 16, 2, 4, 4), audio=torch.randn(1, 20, 6), t_video=torch.tensor([500.0]),
                  t_audio=torch.tensor([300.0]), text=torch.randn(1, 4, 16))
    q = model.blocks[1].video.self_attn.q
    adapter = LoraAdapter("test", {"blocks.1.video.self_attn.q": LoraPair(torch.randn(2, 32), torch.randn(32, 2), 0.5)})
    with torch.no_grad():
        plain = model(**inputs)
        lora = AppliedLora(model, adapter)
        adapted = model(**inputs)
        lora.remove()
        assert not torch.equal(adapted[0], plain[0]) and q._forward_hooks == {}

        torch._dynamo.reset()
        counters.clear()
        model.compile_blocks(backend="eager")
        for got, want in zip(model(**inputs), plain):
            assert torch.equal(got, want)
        assert counters["stats"]["unique_graphs"] == 1  # three blocks, one compiled graph
        lora = AppliedLora(model, adapter)
        for got, want in zip(model(**inputs), adapted):
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
        lora.remove()
        for got, want in zip(model(**inputs), plain):
            assert torch.equal(got, want)
    torch._dynamo.reset()
