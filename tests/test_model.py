"""The JoVA transformer: shapes, branch independence, joint attention, RoPE alignment."""

import math

import pytest
import torch

from jova_core.config import JoVAConfig, preset_config
from jova_core.model import rope
from jova_core.model.transformer import JoVATransformer, num_parameters


def randomised(cfg: JoVAConfig, seed: int = 0) -> JoVATransformer:
    """A model with every weight random (the default init zeroes the heads)."""
    torch.manual_seed(seed)
    model = JoVATransformer(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=0.2)
    return model


def inputs(batch=2, text_dim=16, audio_channels=20):
    g = torch.Generator().manual_seed(1)
    return dict(
        video=torch.randn(batch, 16, 3, 8, 8, generator=g),
        audio=torch.randn(batch, audio_channels, 12, generator=g),
        text=torch.randn(batch, 5, text_dim, generator=g),
    )


@pytest.fixture(scope="module")
def tiny():
    return randomised(preset_config("tiny"))


def test_tiny_preset_is_under_a_million_parameters(tiny):
    assert num_parameters(tiny) < 1_000_000


def test_output_shapes_match_inputs(tiny):
    x = inputs()
    v, a = tiny(video=x["video"], audio=x["audio"], t_video=500.0, t_audio=300.0, text=x["text"])
    assert v.shape == x["video"].shape and a.shape == x["audio"].shape
    a4 = x["audio"][:, :, None]
    _, a_out = tiny(video=x["video"], audio=a4, t_video=500.0, t_audio=300.0, text=x["text"])
    torch.testing.assert_close(a_out, a.unsqueeze(2))


def test_modalities_meet_through_joint_attention(tiny):
    x = inputs()
    with torch.no_grad():
        _, a1 = tiny(video=x["video"], audio=x["audio"], t_video=500.0, t_audio=300.0, text=x["text"])
        _, a2 = tiny(video=x["video"] + 1.0, audio=x["audio"], t_video=500.0, t_audio=300.0, text=x["text"])
        _, a_alone = tiny(audio=x["audio"], t_audio=300.0, text=x["text"])
    assert (a1 - a2).abs().max() > 1e-3, "audio output must depend on the video tokens"
    assert (a1 - a_alone).abs().max() > 1e-3
    assert a_alone.shape == x["audio"].shape


def test_each_branch_is_modulated_by_its_own_timestep(tiny):
    x = inputs()
    with torch.no_grad():
        _, alone_noisy = tiny(audio=x["audio"], text=x["text"], t_audio=300.0)
        _, alone_clean = tiny(audio=x["audio"], text=x["text"], t_audio=0.0)
        v1, _ = tiny(**x, t_video=500.0, t_audio=300.0)
        v2, _ = tiny(**x, t_video=torch.tensor([500.0, 100.0]), t_audio=300.0)
    assert (alone_noisy - alone_clean).abs().max() > 1e-3
    # per-sample timesteps: only the sample whose t_video changed changes
    torch.testing.assert_close(v2[0], v1[0])
    assert (v2[1] - v1[1]).abs().max() > 1e-3


def test_text_audio_only_changes_what_the_audio_branch_reads(tiny):
    cfg = preset_config("tiny", dual_stream_layers=0, single_stream_layers=1)
    model = randomised(cfg)
    x = inputs()
    other = torch.randn_like(x["text"])
    with torch.no_grad():
        _, a_same = model(**x, t_video=500.0, t_audio=300.0)
        _, a_other = model(**x, t_video=500.0, t_audio=300.0, text_audio=other)
        _, a_ref = model(video=x["video"], audio=x["audio"], text=other, t_video=500.0, t_audio=300.0)
    assert (a_same - a_other).abs().max() > 1e-3
    # the video branch read the original text in a_other, the other text in a_ref
    assert (a_other - a_ref).abs().max() > 1e-3


def test_cross_text_variant_runs_and_pads_text():
    cfg = JoVAConfig(dim=32, num_heads=2, ffn_dim=48, freq_dim=32, text_dim=16, text_len=9, single_stream_layers=2)
    model = randomised(cfg)
    x = inputs()
    with torch.no_grad():
        v, a = model(**x, t_video=500.0, t_audio=300.0)
        padded = torch.cat([x["text"], torch.zeros(2, 4, 16)], dim=1)
        v_pad, a_pad = model(video=x["video"], audio=x["audio"], text=padded, t_video=500.0, t_audio=300.0)
    torch.testing.assert_close(v, v_pad)
    torch.testing.assert_close(a, a_pad)
    assert not any("video_text" in k for k in model.state_dict())
    assert any(k.startswith("blocks.0.audio.cross_attn.q") for k in model.state_dict())


def test_dual_stream_blocks_give_text_its_own_weights():
    model = JoVATransformer(preset_config("tiny"))
    keys = model.state_dict().keys()
    assert "blocks.0.video_text.self_attn.q.weight" in keys
    assert "blocks.0.audio_text.ffn.0.weight" in keys
    assert "blocks.1.video_text.self_attn.q.weight" not in keys  # single-stream block


def test_reference_channels_are_concatenated():
    cfg = preset_config("tiny", video_condition_channels=20)
    model = randomised(cfg)
    x = inputs()
    ref = torch.randn(2, 20, 3, 8, 8)
    with torch.no_grad():
        v_none, _ = model(**x, t_video=500.0, t_audio=300.0)
        v_zero, _ = model(**x, t_video=500.0, t_audio=300.0, reference=torch.zeros_like(ref))
        v_ref, _ = model(**x, t_video=500.0, t_audio=300.0, reference=ref)
    torch.testing.assert_close(v_none, v_zero)
    assert (v_ref - v_none).abs().max() > 1e-3
    with pytest.raises(ValueError, match="reference"):
        randomised(preset_config("tiny"))(**x, t_video=1.0, t_audio=1.0, reference=ref)


def test_bad_sizes_give_clear_errors(tiny):
    x = inputs()
    with pytest.raises(ValueError, match="multiples of the patch size"):
        tiny(video=x["video"][..., :7], text=x["text"], t_video=1.0)
    with pytest.raises(ValueError, match="text must be"):
        tiny(video=x["video"], text=torch.randn(2, 5, 3), t_video=1.0)
    with pytest.raises(ValueError, match="t_audio"):
        tiny(audio=x["audio"], text=x["text"])


def test_gradient_checkpointing_gives_the_same_gradients():
    model = randomised(preset_config("tiny"))
    x = inputs()

    def grads():
        model.zero_grad()
        v, a = model(**x, t_video=500.0, t_audio=300.0)
        (v.square().mean() + a.square().mean()).backward()
        return [p.grad.clone() for p in model.parameters()]

    plain = grads()
    model.gradient_checkpointing = True
    checkpointed = grads()
    for g1, g2 in zip(plain, checkpointed):
        torch.testing.assert_close(g1, g2)


def test_aligned_rope_puts_simultaneous_tokens_at_the_same_time():
    fps, stride, rate = 24.0, 4, 31.25
    pos = rope.audio_positions_aligned((1, 100), 1, rate, fps, stride)
    # audio token j starts at j / 31.25 s; video latent frame k is pixel frame 4k at k * 4 / 24 s
    for j in (0, 25, 50, 99):
        assert math.isclose(pos[j, 0].item(), (j / rate) * fps / stride, rel_tol=1e-12)
    # 1 s of audio (token 31.25 doesn't exist; 2 s = token 62.5) -> take 4 s = token 125 beyond range:
    # check integer meeting points: latent frame 6 is t = 1 s = audio token 31.25 -> between 31 and 32.
    assert pos[31, 0] < 6 < pos[32, 0]
    assert torch.all(pos[:, 1:] == 0)


def test_rope_angles_match_wan_frequency_split():
    # head dim 128 -> t/h/w real dims 44/42/42, as in Wan2.1
    assert rope.axis_dims(128) == (44, 42, 42)
    pos = torch.tensor([[2.0, 3.0, 5.0]])
    angles = rope.rope_angles(pos, 128, 10000.0)[0]
    assert angles.shape == (64,)
    assert math.isclose(angles[0].item(), 2.0)  # first t pair: frequency 1
    assert math.isclose(angles[22].item(), 3.0)  # first h pair
    assert math.isclose(angles[43].item(), 5.0)  # first w pair
    assert math.isclose(angles[1].item(), 2.0 * 10000 ** (-2 / 44), rel_tol=1e-12)


def test_apply_rope_rotates_adjacent_pairs_like_complex_multiplication():
    x = torch.randn(1, 4, 2, 8)
    angles = torch.randn(4, 4).double()
    cos, sin = rope.cos_sin(angles)
    ours = rope.apply_rope(x, cos, sin)
    as_complex = torch.view_as_complex(x.reshape(1, 4, 2, 4, 2).contiguous())
    expected = torch.view_as_real(as_complex * torch.polar(torch.ones_like(angles), angles).to(torch.complex64)[None, :, None])
    torch.testing.assert_close(ours, expected.flatten(-2))


def test_config_round_trips_through_json_and_rejects_unknown_fields():
    cfg = preset_config("jova-paper")
    again = JoVAConfig.from_json(cfg.to_json())
    assert again == cfg and again.video_patch_size == (1, 2, 2)
    with pytest.raises(ValueError, match="unknown JoVA config fields"):
        JoVAConfig.from_json('{"dim": 32, "num_heads": 2, "warp_drive": 1}')
    with pytest.raises(ValueError, match="dual_stream_layers"):
        JoVAConfig(text_attention="cross", dual_stream_layers=2)


def test_large_presets_build_on_the_meta_device():
    with torch.device("meta"):
        wan = JoVATransformer(preset_config("wan2.1-1.3b"))
        paper = JoVATransformer(preset_config("jova-paper"))
    # each branch of the wan preset is a Wan2.1 1.3B (1,418,996,800 params) with its
    # audio patch embedding and head resized for 20-channel audio latents
    dim = 1536
    video_only = 1_418_996_800
    audio_io_delta = (20 * dim + dim + dim * 20 + 20) - (16 * 4 * dim + dim + dim * 64 + 64)
    assert num_parameters(wan) == 2 * video_only + audio_io_delta
    assert paper.config.num_layers == 56 and len(paper.blocks) == 56
    assert "blocks.15.video_text.self_attn.q.weight" in paper.state_dict()
    assert "blocks.16.video_text.self_attn.q.weight" not in paper.state_dict()
