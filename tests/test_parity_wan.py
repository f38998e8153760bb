"""Numerical parity: a Wan2.1 transformer converted to JoVA predicts what diffusers'
WanTransformer3DModel predicts on the same weights (video only, no audio tokens).

diffusers computes Wan's timestep sinusoid in float32, the original Wan (and JoVA) in
float64; at t=0 the two agree exactly, elsewhere the float32 angles alone move the
output by up to ~1e-5 relative. To compare everything else at any t, the oracle gets
the float64 sinusoid (`Float64Sinusoid`), which is the original Wan's.
"""

from __future__ import annotations

import pytest
import torch
from convert_fixtures import TEXT_LEN, TINY, tiny_diffusers_wan, to_original_layout

from jova_core.checkpoint import build_from_state_dict
from jova_core.convert import convert_wan

TOLERANCE = 1e-4


class Float64Sinusoid(torch.nn.Module):
    """Wan's [cos, sin] timestep features, computed in float64 as the original Wan does."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        angles = torch.outer(t.double(), torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half))
        return torch.cat([angles.cos(), angles.sin()], dim=1).float()


@pytest.fixture
def wan():
    return tiny_diffusers_wan(seed=0)


@pytest.fixture(scope="module")
def inputs():
    gen = torch.Generator().manual_seed(1)
    video = torch.randn(2, 16, 3, 4, 6, generator=gen)  # patch grid 3 x 2 x 3
    text = torch.randn(2, TEXT_LEN, TINY["text_dim"], generator=gen)
    return video, text


def layouts(wan):
    diffusers_sd = wan.state_dict()
    original = to_original_layout(diffusers_sd)
    return {
        "diffusers": diffusers_sd,
        "original": original,
        "comfyui": {f"model.diffusion_model.{k}": v for k, v in original.items()},
    }


def jova_video(state_dict, video, t, text):
    config, tensors = convert_wan(state_dict)
    model = build_from_state_dict(config, tensors, "tiny Wan")
    with torch.no_grad():
        out, audio = model(video=video, t_video=t, text=text)
    assert audio is None
    return out


def test_wan_parity_at_t0_without_any_patch(wan, inputs):
    video, text = inputs
    t = torch.zeros(2)
    with torch.no_grad():
        expected = wan(video, t, text, return_dict=False)[0]
    got = jova_video(wan.state_dict(), video, t, text)
    assert expected.abs().max() > 1.0  # a forward that does something
    assert (got - expected).abs().max() <= TOLERANCE


@pytest.mark.parametrize("layout", ["diffusers", "original", "comfyui"])
def test_wan_parity_every_layout(wan, inputs, layout):
    video, text = inputs
    t = torch.tensor([999.0, 350.5])  # per-sample timesteps
    wan.condition_embedder.timesteps_proj = Float64Sinusoid(TINY["freq_dim"])
    with torch.no_grad():
        expected = wan(video, t, text, return_dict=False)[0]
    got = jova_video(layouts(wan)[layout], video, t, text)
    assert got.shape == expected.shape
    err = (got - expected).abs().max().item()
    print(f"Wan2.1 {layout} layout -> JoVA: max abs error {err:.2e} (output max {expected.abs().max():.1f})")
    assert err <= TOLERANCE


def test_audio_branch_starts_as_a_copy_with_silent_head(wan, inputs):
    config, tensors = convert_wan(wan.state_dict())
    video_w = tensors["video.patch_embedding.weight"].flatten(1)  # [dim, 64]
    audio_w = tensors["audio.patch_embedding.weight"].flatten(1)  # [dim, 20]
    assert audio_w.shape == (config.dim, config.audio_in_channels)
    # Same expected squared token norm for unit-variance latents ...
    torch.testing.assert_close(audio_w.square().sum(), video_w.square().sum(), rtol=1e-5, atol=0)
    # ... and every audio embedding column lies in the span of the video embedding.
    residual = audio_w - video_w @ torch.linalg.lstsq(video_w, audio_w).solution
    assert residual.abs().max() < 1e-4 * audio_w.abs().max()
    for key, tensor in tensors.items():
        if key.startswith("blocks.") and ".audio." in key:
            twin = tensors[key.replace(".audio.", ".video.")]
            assert torch.equal(tensor, twin) and tensor.data_ptr() != twin.data_ptr(), key

    model = build_from_state_dict(config, tensors, "tiny Wan")
    video, text = inputs
    audio = torch.randn(2, config.audio_in_channels, 10)
    with torch.no_grad():
        _, audio_velocity = model(video=video, audio=audio, t_video=500.0, t_audio=500.0, text=text)
    assert audio_velocity.shape == audio.shape
    assert torch.count_nonzero(audio_velocity) == 0
