"""`init-from-wan`: a Wan2.1 file becomes a JoVA model whose audio branch copies the video one."""

from __future__ import annotations

import torch
from safetensors.torch import save_file

from jova_core.checkpoint import load_native
from jova_core.cli import main


def tiny_diffusers_wan():
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    # Wan's head dim is 128; two heads keep it small.
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=128, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=64, num_layers=2, rope_max_seq_len=64,
    )


def test_init_from_wan_copies_video_into_audio_and_keeps_wan_weights(tmp_path, capsys):
    wan = tiny_diffusers_wan()
    src = tmp_path / "wan_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in wan.state_dict().items()}, str(src))
    out = tmp_path / "jova_init.safetensors"
    assert main(["init-from-wan", "--src", str(src), "--out", str(out)]) == 0
    model = load_native(str(out))
    sd = model.state_dict()
    ref = wan.state_dict()
    # Video branch = the Wan weights (diffusers names -> Wan's original names).
    torch.testing.assert_close(sd["blocks.1.video.self_attn.q.weight"], ref["blocks.1.attn1.to_q.weight"])
    torch.testing.assert_close(sd["blocks.0.video.ffn.0.weight"], ref["blocks.0.ffn.net.0.proj.weight"])
    # Audio branch = a copy of the video branch in every block and in the text/time MLPs.
    block_keys = [k for k in sd if k.startswith("blocks.") and ".video." in k]
    assert block_keys
    for key in block_keys:
        audio = sd[key.replace(".video.", ".audio.")]
        assert torch.equal(audio, sd[key]) and audio.data_ptr() != sd[key].data_ptr()
    assert torch.equal(sd["audio.text_embedding.0.weight"], sd["video.text_embedding.0.weight"])
    assert model.config.num_layers == 2 and model.config.dim == 256
    # Never overwrites without being asked.
    assert main(["init-from-wan", "--src", str(src), "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
