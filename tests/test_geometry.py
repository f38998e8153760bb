"""Latent geometry (jova_core.geometry) against the codecs that make the latents, the JoVA
LATENT (jova_core.latent), clip/frame/audio fitting (jova_core.fit), block swap
(jova_core.offload) and the one-line errors of the model and the sampler.

Oracles: the codecs themselves (demo codecs; diffusers' Wan VAE in the Wan2.1 and Wan2.2
layouts; MMAudio VAE 16 kHz and 44.1 kHz), the published numbers in the reference notes
(restated as arithmetic), brute-force counting for the frame rule, PIL for the resize.
"""

from __future__ import annotations

import math
import sys
from types import ModuleType

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan, MMAudioVAE
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
from PIL import Image

from comfy_stubs import harness
from jova_core.codecs.demo import DemoAudioCodec, DemoVideoCodec
from jova_core.codecs.mel import MEL_16K, MEL_44K
from jova_core.codecs.mmaudio import MMAudioCodec
from jova_core.codecs.wan_vae import WanVideoCodec, wan_vae_config, wan_vae_geometry
from jova_core.config import JoVAConfig, preset_config
from jova_core.fit import audio_to_latents, clip_geometry, describe, fit_frames
from jova_core.geometry import (
    AUDIOLDM2,
    MMAUDIO_16K,
    MMAUDIO_44K,
    STABLE_AUDIO_OPEN,
    WAN21_VAE,
    WAN22_VAE,
    ModelGeometry,
    VideoLatentGeometry,
    valid_num_frames,
)
from jova_core.latent import JoVALatent
from jova_core.model import JoVATransformer
from jova_core.offload import BlockSwap, module_bytes
from jova_core.sampling import sample
from test_layers import JOVA_CORE, import_graph


def tiny_model(**overrides) -> JoVATransformer:
    torch.manual_seed(0)
    model = JoVATransformer(preset_config("tiny", **overrides)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05)
    return model


# -- the geometry owner sits at the bottom ------------------------------------------------


def test_geometry_imports_nothing_from_jova_core_and_config_only_it():
    graph, _ = import_graph(JOVA_CORE)
    assert graph["geometry"] == set()
    assert graph["config"] == {"geometry"}
    # fit reads a model's own audio length rule from its generation defaults, which share only
    # the config's strict JSON reading.
    assert graph["fit"] <= {"geometry", "defaults"} and graph["defaults"] <= {"config"} and graph["offload"] == set()
    assert graph["latent"] <= {"fit", "geometry"}


# -- video geometry vs the codecs ------------------------------------------------------------


def test_the_frame_rule_is_stride_k_plus_one_by_brute_force():
    for stride in (1, 2, 4, 8):
        geometry = VideoLatentGeometry(16, stride, 8)
        for n in range(1, 40):
            largest = max(m for m in range(1, n + 1) if (m - 1) % stride == 0)
            assert geometry.valid_num_frames(n) == valid_num_frames(n, stride) == largest
            # Latent frames: frame 0 alone plus every full group of `stride` frames after it.
            assert geometry.latent_frames(n) == 1 + sum(1 for k in range(1, n) if k * stride <= n - 1)
            assert geometry.num_frames(geometry.latent_frames(largest)) == largest
        # Pixel frame t is coded by latent frame ceil(t / stride).
        t = torch.arange(30)
        assert torch.equal(geometry.latent_frame_of(t), torch.ceil(t / stride).long())
    with pytest.raises(ValueError, match="at least one frame"):
        WAN21_VAE.valid_num_frames(0)
    assert WAN21_VAE.size_problems(9, 16, 24) == []
    assert len(WAN21_VAE.size_problems(8, 20, 24)) == 2


def test_demo_video_codec_makes_the_wan21_geometry_it_declares():
    codec = DemoVideoCodec()
    assert codec.geometry == WAN21_VAE == VideoLatentGeometry(16, 4, 8)
    for frames, height, width in ((1, 8, 8), (9, 16, 24), (13, 32, 16)):
        latents = codec.encode(torch.rand(2, frames, height, width, 3))
        assert latents.shape == (2, *WAN21_VAE.latent_shape(frames, height, width))
        assert codec.decode(latents).shape == (2, WAN21_VAE.num_frames(latents.shape[2]), height, width, 3)
    with pytest.raises(ValueError, match="4k\\+1"):
        codec.encode(torch.rand(1, 8, 16, 16, 3))


def test_wan21_vae_codec_shapes_follow_its_geometry():
    torch.manual_seed(0)
    cfg = {k: v for k, v in wan_vae_config().items() if not k.startswith("_")}
    codec = WanVideoCodec(AutoencoderKLWan(**{**cfg, "base_dim": 16}).eval())
    assert codec.geometry == WAN21_VAE and wan_vae_geometry(codec.vae.config) == WAN21_VAE
    latents = codec.encode(torch.rand(1, 5, 32, 48, 3))
    assert latents.shape == (1, *WAN21_VAE.latent_shape(5, 32, 48)) == (1, 16, 2, 4, 6)


def test_wan22_layout_vae_makes_48_channel_16x_latents():
    """diffusers' AutoencoderKLWan in the Wan2.2 TI2V-5B layout (48 channels, 2x2 pixel
    patchify inside, residual blocks) at a tiny width: its latents have the shape the
    WAN22_VAE geometry predicts, and the codec reads that geometry from the config."""
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=16, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=1, temperal_downsample=[False, True, True],
        is_residual=True, patch_size=2, in_channels=12, out_channels=12, scale_factor_spatial=16,
        latents_mean=[0.0] * 48, latents_std=[1.0] * 48,
    ).eval()
    codec = WanVideoCodec(vae)
    assert codec.geometry == WAN22_VAE == VideoLatentGeometry(48, 4, 16)
    latents = codec.encode(torch.rand(1, 5, 32, 48, 3))
    assert latents.shape == (1, *WAN22_VAE.latent_shape(5, 32, 48)) == (1, 48, 2, 2, 3)
    with pytest.raises(ValueError, match="multiples of 16"):
        codec.encode(torch.rand(1, 5, 24, 48, 3))


# -- audio geometry vs the codecs ------------------------------------------------------------


def test_demo_audio_codec_makes_the_mmaudio_16k_geometry():
    codec = DemoAudioCodec()
    assert codec.geometry == MMAUDIO_16K
    for seconds in (0.25, 0.5, 1.0, 1.37):
        wave = torch.randn(1, 1, math.floor(seconds * 16_000)) * 0.1
        latents = codec.encode(wave, 16_000)
        assert latents.shape == (1, *MMAUDIO_16K.latent_shape(MMAUDIO_16K.latent_frames(seconds)))
        assert codec.decode(latents).shape[-1] == MMAUDIO_16K.num_samples(latents.shape[-1])


@pytest.mark.parametrize("mel,geometry", [(MEL_16K, MMAUDIO_16K), (MEL_44K, MMAUDIO_44K)], ids=["16k", "44k"])
def test_mmaudio_codecs_make_their_geometry(mel, geometry):
    # Published: the VAE halves the mel frame rate (hop 256 at 16 kHz, 512 at 44.1 kHz).
    assert geometry.samples_per_latent == 2 * mel.hop_length
    assert geometry.latent_rate == mel.sample_rate / (2 * mel.hop_length) and geometry.mel_bins == mel.n_mels
    torch.manual_seed(0)
    vae = MMAudioVAE(mel_bins=mel.n_mels, latent_channels=geometry.channels, hidden_channels=16,
                     sample_rate=mel.sample_rate, n_fft=mel.n_fft, hop_length=mel.hop_length).eval()
    factors = [8, 8] + [2] * int(math.log2(mel.hop_length // 64))  # product: the hop
    vocoder = LTX2Vocoder(in_channels=mel.n_mels, hidden_channels=64, out_channels=1, upsample_factors=factors,
                          upsample_kernel_sizes=[2 * f for f in factors], act_fn="snakebeta", antialias=True,
                          final_act_fn="tanh", final_bias=True).eval()
    codec = MMAudioCodec(vae, vocoder, mel)
    assert codec.geometry == geometry
    latents = codec.encode(torch.randn(1, 2, round(0.7 * mel.sample_rate)) * 0.1, mel.sample_rate)
    assert latents.shape == (1, *geometry.latent_shape(geometry.latent_frames(0.7)))


def test_audioldm2_and_stereo_geometries_are_data():
    # AudioLDM2 (JavisDiT++): 64 mels at hop 160, 16 kHz, VAE 4x down in time and mel.
    assert AUDIOLDM2.samples_per_latent == 160 * 4 and AUDIOLDM2.latent_rate == 25.0
    assert AUDIOLDM2.latent_shape(100) == (8, 64 // 4, 100)
    assert AUDIOLDM2.latent_frames(2.0) == 50
    # Stable Audio Open (MagiHuman): stereo at 51.2 kHz, 2048 samples a latent = 25 Hz.
    assert STABLE_AUDIO_OPEN.waveform_channels == 2 and STABLE_AUDIO_OPEN.latent_rate == 25.0
    assert STABLE_AUDIO_OPEN.latent_shape(25) == (64, 25)
    # A model's audio geometry has no waveform side.
    with pytest.raises(ValueError, match="no sample rate"):
        preset_config("tiny").geometry.audio.samples_per_latent


# -- the model's geometry -----------------------------------------------------------------


def test_config_geometry_combines_latents_and_patches():
    geometry = preset_config("tiny").geometry
    assert geometry.video == WAN21_VAE and geometry.audio.channels == 20
    assert geometry.audio.latent_rate == MMAUDIO_16K.latent_rate and geometry.pixel_multiple == 16
    big = JoVAConfig(video_in_channels=48, video_out_channels=48, video_spatial_stride=16).geometry
    assert big.video == WAN22_VAE and big.pixel_multiple == 32
    # Old configs (without the new fields) read back with the Wan2.1 / 1-D audio defaults.
    old = preset_config("tiny").to_json().replace('"video_spatial_stride": 8, ', "").replace('"audio_frequency_bins": 1, ', "")
    assert "video_spatial_stride" not in old and JoVAConfig.from_json(old).geometry == geometry
    with pytest.raises(ValueError, match="non-square"):
        ModelGeometry(WAN21_VAE, MMAUDIO_16K, (1, 2, 1)).pixel_multiple


def test_wan22_sized_model_runs_on_its_own_latents():
    model = tiny_model(video_in_channels=48, video_out_channels=48, video_spatial_stride=16)
    clip = clip_geometry(model.config.geometry, 70, 40, 0.6, 8.0)
    assert (clip.width, clip.height, clip.frames) == (64, 32, 5)
    assert clip.video_shape == (1, 48, 2, 2, 4)
    # The codec makes exactly that latent from a clip of that size.
    assert clip.video_shape[1:] == WAN22_VAE.latent_shape(clip.frames, clip.height, clip.width)
    video, audio = torch.randn(clip.video_shape), torch.randn(clip.audio_shape)
    out_video, out_audio = model(video, audio, 500.0, 500.0, text=torch.randn(1, 4, 16), fps=8.0)
    assert out_video.shape == video.shape and out_audio.shape == audio.shape


def test_two_d_audio_latents_from_the_geometry():
    """AudioLDM2-style latents [B, 8, 16, T] with 2x2 patches (JavisDiT++'s layout)."""
    overrides = dict(audio_in_channels=8, audio_out_channels=8, audio_patch_size=(2, 2), audio_frequency_bins=16,
                     audio_latent_rate=AUDIOLDM2.latent_rate)
    model = tiny_model(**overrides)
    clip = clip_geometry(model.config.geometry, 64, 64, 1.2, 8.0)
    # 9 frames at 8 fps = 1.125 s -> 28.125 latent frames at 25 Hz -> 28 (a multiple of the patch).
    assert clip.audio_shape == (1, 8, 16, 28)
    out = model(None, torch.randn(clip.audio_shape), None, 500.0, text=torch.randn(1, 4, 16))[1]
    assert out.shape == clip.audio_shape
    # Without the bins in the config (a JavisDiT++ checkpoint converted before), the old refusal.
    with pytest.raises(ValueError, match="2-D"):
        clip_geometry(preset_config("tiny", audio_patch_size=(2, 2)).geometry, 64, 64, 1.0, 8.0)


# -- fitting -----------------------------------------------------------------------------


def test_clip_geometry_rounds_as_the_codecs_count():
    geometry = preset_config("tiny").geometry
    clip = clip_geometry(geometry, 130, 70, 1.0, 8.0, batch_size=2)
    assert (clip.width, clip.height, clip.frames, clip.fps) == (128, 64, 5, 8.0)
    assert clip.video_shape == (2, 16, 2, 8, 16)
    # Audio: whole latent frames in the clip's 5 / 8 s, as the audio codec counts.
    assert clip.audio_shape == (2, 20, math.floor(5 / 8 * 31.25))
    info = describe(clip, 130, 70, 1.0)
    assert "130x70 rounded to 128x64" in info and "5 frames = 0.625 s" in info
    # Lines short enough for JoVA Empty Latent's node (400 px wide in the workflows: ~66
    # characters before the frontend breaks a line inside a word), also at the workflows'
    # 832x480, 5 s (the tiny model has Wan2.1 + MMAudio's latent geometry).
    big = clip_geometry(geometry, 830, 470, 5.0, 16.0, batch_size=4)
    for info in (info, describe(big, 830, 470, 5.0)):
        assert max(len(line) for line in info.splitlines()) <= 64, info
    for fps in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="fps must be a positive number"):
            clip_geometry(geometry, 64, 64, 1.0, fps)
    with pytest.raises(ValueError, match="seconds"):
        clip_geometry(geometry, 64, 64, 0.0, 8.0)


def test_fit_frames_matches_pil_antialiased_resize_after_a_centre_crop():
    rng = np.random.default_rng(0)
    image = rng.random((1, 90, 200, 3)).astype(np.float32)  # wide, high-frequency noise
    out = fit_frames(torch.from_numpy(image), 32, 48)
    # Oracle: the centre crop to 3:2 (135 x 90), then PIL's bilinear (antialiased) resize.
    crop = image[0, :, 32:167]
    expected = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(crop[..., c])).resize((48, 32), Image.BILINEAR))
                         for c in range(3)], axis=-1)
    assert out.shape == (1, 32, 48, 3)
    assert np.abs(out[0].numpy() - expected).max() < 2e-2
    # Plain bilinear (common_upscale's "bilinear") aliases the noise: far from the oracle.
    plain = torch.nn.functional.interpolate(torch.from_numpy(crop).permute(2, 0, 1)[None], size=(32, 48),
                                            mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    assert np.abs(plain - expected).max() > 0.1
    # A crop that already has the size is returned as it is; alpha is dropped.
    rgba = torch.rand(2, 32, 48, 4)
    assert torch.equal(fit_frames(rgba, 32, 48), rgba[..., :3])


def test_audio_to_latents_cuts_or_pads_with_silence_before_encoding():
    codec = DemoAudioCodec()
    t = torch.arange(round(2.0 * 22_050)) / 22_050
    wave = (torch.sin(2 * math.pi * 220 * t) * 0.3)[None, None]
    frames = codec.latent_frames(0.6)  # 18
    latents, note = audio_to_latents(codec, wave, 22_050, frames, 0.6)
    assert latents.shape == (1, 20, frames) and "cut to the clip" in note
    need = round((0.6 + 1 / codec.latent_rate) * 22_050)
    assert torch.equal(latents, codec.encode(wave[..., :need], 22_050)[..., :frames])
    short = wave[..., : round(0.3 * 22_050)]
    latents, note = audio_to_latents(codec, short, 22_050, frames, 0.6)
    padded = torch.cat([short, torch.zeros(1, 1, need - short.shape[-1])], dim=-1)
    assert latents.shape == (1, 20, frames) and "padded with silence" in note
    assert torch.equal(latents, codec.encode(padded, 22_050)[..., :frames])
    assert audio_to_latents(codec, wave[..., : round(0.6 * 22_050)], 22_050, frames, 0.6)[1] == ""


# -- the JoVA LATENT ------------------------------------------------------------------------


def test_jova_latent_round_trips_and_keeps_other_entries():
    clip = clip_geometry(preset_config("tiny").geometry, 64, 48, 0.6, 8.0, batch_size=2)
    empty = JoVALatent.empty(clip)
    as_dict = empty.to_dict()
    assert as_dict["samples"].shape == clip.video_shape and as_dict["jova_audio"].shape == clip.audio_shape
    assert not as_dict["samples"].any() and not as_dict["jova_audio"].any()
    assert (as_dict["jova_width"], as_dict["jova_height"], as_dict["jova_frames"], as_dict["jova_fps"]) == (64, 48, 5, 8.0)
    back = JoVALatent.from_dict(as_dict)
    assert back.to_dict().keys() == as_dict.keys()
    assert all(torch.equal(a, b) if torch.is_tensor(a) else a == b for a, b in zip(back.to_dict().values(), as_dict.values()))
    assert back.seconds == 5 / 8.0
    # Flags written by a sampler are read back; entries that are not JoVA's pass through.
    marked = {**as_dict, "jova_audio_sampled": True, "batch_index": [0, 1]}
    again = JoVALatent.from_dict(marked)
    assert again.audio_sampled and not again.video_absent
    assert again.to_dict(keep=marked)["batch_index"] == [0, 1]
    # Older dicts without the flags read as "nothing absent, nothing sampled".
    plain = {k: v for k, v in as_dict.items() if not k.endswith(("absent", "sampled"))}
    assert not JoVALatent.from_dict(plain).audio_sampled
    with pytest.raises(ValueError, match="not a JoVA latent: make it with JoVA Empty Latent"):
        JoVALatent.from_dict({"samples": torch.zeros(1, 4, 8, 8)})


# -- block swap --------------------------------------------------------------------------


def test_block_swap_plans_memory_and_runs_like_the_whole_model():
    model = tiny_model()
    video, audio, text = torch.randn(1, 16, 2, 4, 4), torch.randn(1, 20, 8), torch.randn(1, 4, 16)
    with torch.no_grad():
        expected = model(video, audio, 300.0, 300.0, text=text, fps=8.0)
    sizes = [module_bytes(b) for b in model.blocks]
    assert module_bytes(model) == sum(t.numel() * t.element_size() for t in model.state_dict().values())
    for keep, clamped in ((0, 0), (1, 1), (5, len(sizes)), (-3, 0)):
        swap = BlockSwap(model, keep, "cpu", "cpu")
        assert swap.keep == clamped
        swapped = sizes[clamped:]
        assert swap.resident_bytes() == module_bytes(model) - sum(swapped) + max(swapped, default=0)
    swap = BlockSwap(model, 1, "cpu", "cpu")
    swap.attach()
    assert all(block._forward_pre_hooks and block._forward_hooks for block in model.blocks[1:])
    with torch.no_grad():
        got = model(video, audio, 300.0, 300.0, text=text, fps=8.0)
    swap.detach()
    assert all(not block._forward_pre_hooks and not block._forward_hooks for block in model.blocks)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


# -- one-line errors: the model ---------------------------------------------------------------


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_model_names_latents_made_for_another_model():
    model = tiny_model()
    text = torch.randn(1, 4, 16)
    with pytest.raises(ValueError) as error:
        model(torch.randn(1, 48, 2, 4, 4), None, 500.0, None, text=text)
    message = one_line(error)
    assert "48 channels" in message and "takes 16" in message and "Wan2.1 VAE" in message and "Wan2.2 VAE" in message
    with pytest.raises(ValueError) as error:
        model(None, torch.randn(1, 40, 8), None, 500.0, text=text)
    message = one_line(error)
    assert "40 channels" in message and "takes 20" in message and "MMAudio 44.1 kHz VAE" in message
    with pytest.raises(ValueError, match="7 channels but this model takes 16 \\(Wan2.1 VAE latents\\): make"):
        model(torch.randn(1, 7, 2, 4, 4), None, 500.0, None, text=text)


def test_model_refuses_empty_latents_batches_that_differ_and_bad_fps():
    model = tiny_model()
    text = torch.randn(1, 4, 16)
    with pytest.raises(ValueError, match="empty"):
        model(torch.randn(1, 16, 0, 4, 4), None, 500.0, None, text=text)
    with pytest.raises(ValueError, match="empty"):
        model(None, torch.randn(1, 20, 0), None, 500.0, text=text)
    with pytest.raises(ValueError, match="text holds 3 prompts but the latents a batch of 2"):
        model(torch.randn(2, 16, 2, 4, 4), None, 500.0, None, text=torch.randn(3, 4, 16))
    with pytest.raises(ValueError, match="video batch 2 and audio batch 1 differ"):
        model(torch.randn(2, 16, 2, 4, 4), torch.randn(1, 20, 8), 500.0, 500.0, text=text)
    for fps in (0.0, -8.0, float("inf")):
        with pytest.raises(ValueError, match="fps must be a positive frame rate"):
            model(torch.randn(1, 16, 2, 4, 4), torch.randn(1, 20, 8), 500.0, 500.0, text=text, fps=fps)
    # One prompt for a batch of two is fine.
    assert model(torch.randn(2, 16, 2, 4, 4), None, 500.0, None, text=text)[0].shape == (2, 16, 2, 4, 4)


# -- one-line errors: the sampler -------------------------------------------------------------


SAMPLE = dict(mode="t2va", video_shape=(1, 16, 2, 4, 4), audio_shape=(1, 20, 8), steps=2, sampler="euler")


def test_sampler_refuses_settings_it_cannot_use():
    model, text = tiny_model(), torch.randn(1, 4, 16)
    for name in ("cfg_video", "cfg_audio"):
        for bad in (float("nan"), float("inf"), -float("inf")):
            with pytest.raises(ValueError, match=f"{name} is .*set a finite guidance scale"):
                sample(model, text=text, negative_video=text, **{**SAMPLE, name: bad})
    for fps in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="fps must be the clip's positive frame rate"):
            sample(model, text=text, negative_video=text, fps=fps, **SAMPLE)
    with pytest.raises(ValueError, match="steps must be at least 1, got 0"):
        sample(model, text=text, negative_video=text, **{**SAMPLE, "steps": 0})


def test_sampler_checks_latents_against_the_model():
    model, text = tiny_model(), torch.randn(1, 4, 16)
    with pytest.raises(ValueError) as error:
        sample(model, text=text, negative_video=text, **{**SAMPLE, "video_shape": (1, 48, 2, 4, 4)})
    message = one_line(error)
    assert "video latents (video_shape) have 48 channels but this model takes 16" in message and "Wan2.2" in message
    with pytest.raises(ValueError, match="audio_latents have 8 channels.*AudioLDM2 VAE"):
        sample(model, text=text, negative_video=text, mode="a2v", video_shape=(1, 16, 2, 4, 4),
               audio_latents=torch.randn(1, 8, 16, 8), steps=1)
    with pytest.raises(ValueError, match="empty"):
        sample(model, text=text, negative_video=text, **{**SAMPLE, "video_shape": (1, 16, 0, 4, 4)})
    with pytest.raises(ValueError, match="empty"):
        sample(model, text=text, negative_video=text, **{**SAMPLE, "audio_shape": (1, 20, 0)})
    with pytest.raises(ValueError, match="text holds 2 prompts but the latent batch is 3"):
        sample(model, text=torch.randn(2, 4, 16), negative_video=text,
               **{**SAMPLE, "video_shape": (3, 16, 2, 4, 4), "audio_shape": (3, 20, 8)})
    with pytest.raises(ValueError, match="negative_video holds 2 prompts but the latent batch is 1"):
        sample(model, text=text, negative_video=torch.randn(2, 4, 16), **SAMPLE)


# -- through the nodes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    had_nodes = "nodes" in sys.modules
    if not had_nodes:
        sys.modules["nodes"] = ModuleType("nodes")
    try:
        with harness.comfy_stubs(tmp_path_factory.mktemp("comfyui")) as stubs:
            stubs.pack = harness.load_pack()
            harness.node_list(stubs.pack)
            stubs.n = sys.modules[harness.PACK_NAME + ".nodes"]
            stubs.core = lambda name: sys.modules[f"{harness.PACK_NAME}.jova_core.{name}"]
            yield stubs
    finally:
        if not had_nodes:
            sys.modules.pop("nodes", None)


def test_sampler_node_names_a_latent_made_for_another_model(env):
    torch.manual_seed(0)
    config = env.core("config").preset_config("tiny")
    handle = env.n.model_handle.JoVAModelHandle(env.core("model.transformer").JoVATransformer(config).eval(), "tiny")
    big = env.core("config").preset_config("tiny", video_in_channels=48, video_out_channels=48, video_spatial_stride=16)
    big_handle = env.n.model_handle.JoVAModelHandle(env.core("model.transformer").JoVATransformer(big).eval(), "big")
    latent = harness.run_node(env.n.JoVAEmptyLatent, model=big_handle, width=64, height=64, seconds=0.6, fps=8.0,
                              batch_size=1)[0]
    assert latent["samples"].shape[1] == 48
    text = [[torch.randn(1, 4, 16), {}]]
    with pytest.raises(ValueError) as error:
        env.n.JoVASampler.execute(model=handle, positive=text, negative=text, latent=latent, seed=0, steps=1,
                                  sampler="euler", shift=3.0, cfg_video=2.0, cfg_audio=2.0, mode="t2va")
    message = one_line(error)
    assert "48 channels but this model takes 16" in message and "Wan2.2 VAE" in message
    with pytest.raises(ValueError, match="not a JoVA latent"):
        env.n.JoVASampler.execute(model=handle, positive=text, negative=text, latent={"samples": torch.zeros(1, 4, 8, 8)},
                                  seed=0, steps=1, sampler="euler", shift=3.0, cfg_video=2.0, cfg_audio=2.0, mode="t2va")


def test_core_vae_of_another_family_is_named(env):
    """The core VAELoader's Wan2.1 and Wan2.2 VAEs are taken with their own geometry; any other
    VAE (here an SD-style image VAE: 4 channels, no temporal compression) is refused naming
    what it is and what to load."""

    def fake_vae(channels, temporal, spatial):
        class FakeVAE:
            latent_channels = channels

            def temporal_compression_decode(self):
                return temporal

            def spacial_compression_decode(self):
                return spatial

        return FakeVAE()

    codec = env.n.codecs.CoreVAEVideoCodec(fake_vae(48, 4, 16))
    # The pack under test has its own copy of jova_core: compare values, not classes.
    assert repr(codec.geometry) == repr(WAN22_VAE) and codec.latents_mean.shape[1] == 48
    with pytest.raises(ValueError) as error:
        env.n.codecs.CoreVAEVideoCodec(fake_vae(4, 1, 8))
    message = one_line(error)
    assert "4 latent channels, 1x temporal and 8x spatial" in message and "Wan2.1 VAE (16 channels" in message


def test_reference_mask_channels_follow_the_temporal_stride():
    """A reference image's condition is the latent plus one mask channel per pixel frame of a
    latent frame: 16 + 4 for Wan2.1-latent models, 48 + 4 for Wan2.2 latents; anything else
    is refused when the config is made, not at the first i2va step."""
    assert JoVAConfig(video_condition_channels=20).video_condition_channels == 20
    assert JoVAConfig(video_in_channels=48, video_out_channels=48, video_spatial_stride=16,
                      video_condition_channels=52).video_condition_channels == 52
    with pytest.raises(ValueError, match=r"0 \(no reference image\) or 20 \(16 latent \+ 4 mask channels\), got 24"):
        JoVAConfig(video_condition_channels=24)
