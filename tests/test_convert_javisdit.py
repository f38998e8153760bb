"""JavisDiT++ -> JoVA on a tiny random JavisDiT-layout state dict.

Oracles: diffusers' WanTransformer3DModel for the video path (JavisDiT's video path is
Wan2.1's) and `javisdit_reference` (JavisDiT++'s shared-weight joint forward restated)
for video + audio together. JavisDiT returns x0 - noise, JoVA noise - x0.
"""

from __future__ import annotations

import pytest
import torch
from convert_fixtures import TEXT_LEN, TINY, javisdit_reference, tiny_diffusers_wan, tiny_javisdit_state_dict
from test_parity_wan import TOLERANCE, Float64Sinusoid

from jova_core.checkpoint import build_from_state_dict
from jova_core.convert import convert_javisdit
from jova_core.model.rope import audio_positions_javisdit


@pytest.fixture(scope="module")
def javisdit():
    source = tiny_javisdit_state_dict(seed=3)
    config, tensors = convert_javisdit(source)
    # strict: build_from_state_dict checks every key and shape against the config's model
    return source, build_from_state_dict(config, tensors, "tiny JavisDiT++")


@pytest.fixture(scope="module")
def inputs():
    gen = torch.Generator().manual_seed(4)
    video = torch.randn(1, 16, 3, 4, 6, generator=gen)  # patch grid 3 x 2 x 3
    audio = torch.randn(1, 8, 12, 4, generator=gen)  # JavisDiT layout [B, C, T, M]: grid 6 x 2
    text = torch.randn(1, TEXT_LEN, TINY["text_dim"], generator=gen)
    return video, audio, text


def test_config(javisdit):
    _, model = javisdit
    cfg = model.config
    assert (cfg.audio_in_channels, cfg.audio_out_channels, cfg.audio_patch_size, cfg.audio_rope) == (8, 8, (2, 2), "javisdit")
    assert (cfg.dim, cfg.num_layers, cfg.text_attention) == (TINY["num_heads"] * TINY["head_dim"], TINY["layers"], "cross")


def test_video_path_is_wan(javisdit, inputs):
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    source, model = javisdit
    video, _, text = inputs
    wan = tiny_diffusers_wan()
    wan_part = {k: v for k, v in source.items() if "audio" not in k}
    wan.load_state_dict(convert_wan_transformer_to_diffusers(wan_part), strict=True)
    wan.condition_embedder.timesteps_proj = Float64Sinusoid(TINY["freq_dim"])
    t = torch.tensor([640.0])
    with torch.no_grad():
        expected = wan(video, t, text, return_dict=False)[0]
        got, _ = model(video=video, t_video=t, text=text)
    assert (got - expected).abs().max() <= TOLERANCE


def test_joint_forward_matches_javisdit(javisdit, inputs):
    source, model = javisdit
    video, audio, text = inputs
    t = torch.tensor([820.0])
    with torch.no_grad():
        ref_video, ref_audio = javisdit_reference(source, video, audio, t, text)
        got_video, got_audio = model(video=video, audio=audio.transpose(-1, -2), t_video=t, t_audio=t, text=text)
    got_audio = got_audio.transpose(-1, -2)  # back to JavisDiT's [B, C, T, M]
    video_err = (got_video + ref_video).abs().max().item()
    audio_err = (got_audio + ref_audio).abs().max().item()
    print(f"JavisDiT++ joint: video max abs error {video_err:.2e}, audio {audio_err:.2e} "
          f"(outputs up to {ref_video.abs().max():.1f} / {ref_audio.abs().max():.1f})")
    assert ref_audio.abs().max() > 1.0 and ref_video.abs().max() > 1.0
    assert video_err <= TOLERANCE and audio_err <= TOLERANCE
    # The audio really is joint: without video tokens the audio prediction changes.
    with torch.no_grad():
        _, alone = model(audio=audio.transpose(-1, -2), t_audio=t, text=text)
    assert (alone.transpose(-1, -2) + ref_audio).abs().max() > 100 * TOLERANCE


def test_javisdit_audio_positions():
    # 2 frequency patches x 3 time steps beside a video grid of 3 frames x 4 x 6:
    # t = ceil(linspace(0, 2, 3)) = 0, 1, 2; h = 4 + step; w = 6 + frequency index.
    expected = torch.tensor(
        [[0, 4, 6], [1, 5, 6], [2, 6, 6],
         [0, 4, 7], [1, 5, 7], [2, 6, 7]], dtype=torch.float64)
    assert torch.equal(audio_positions_javisdit((2, 3), (3, 4, 6)), expected)
    # 5 steps over 3 frames: linspace gives 0, .5, 1, 1.5, 2 -> ceil 0, 1, 1, 2, 2
    assert audio_positions_javisdit((1, 5), (3, 2, 2))[:, 0].tolist() == [0, 1, 1, 2, 2]


@pytest.mark.parametrize("extra", ["audio_text_embedding.0.weight", "start_of_audio"])
def test_unsupported_javisdit_variants_are_refused(extra):
    source = tiny_javisdit_state_dict(seed=3)
    source[extra] = torch.zeros(4)
    with pytest.raises(KeyError, match=extra):
        convert_javisdit(source)
