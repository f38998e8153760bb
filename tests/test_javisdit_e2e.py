"""JavisDiT++ end to end on tiny random weights in the real layouts: a JavisDiT-layout
transformer, AudioLDM2's VAE + vocoder and a Wan2.1 VAE go convert -> sample (t2va) ->
decode -> MP4 with sound, through jova_core and through the nodes (ComfyUI stand-ins).
Also: the defaults a converted file carries against JavisDiT++'s inference, restated
from its public code (javisdit-audio.md, section 5)."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from comfy_stubs import harness
from convert_fixtures import tiny_javisdit_state_dict
from safetensors.torch import save_file
from test_codecs_audioldm2 import write_release
from test_codecs_video import tiny_original_file

from jova_core.checkpoint import convert_checkpoint, generation_defaults, load_transformer
from jova_core.codecs import load_audio_codec, load_video_codec
from jova_core.convert.javisdit import JAVISDIT_DEFAULTS
from jova_core.defaults import GenerationDefaults
from jova_core.io import write_mp4
from jova_core.io.ffmpeg import probe_media
from jova_core.io.read import read_audio
from jova_core.sampling import sample
from jova_core.sampling.schedule import sampling_sigmas
from jova_core.text.demo import DemoTextEncoder

# A small clip with JavisDiT++'s rules: 17 frames at its 16 fps (1.0625 s), 64 x 64 pixels.
WIDTH, HEIGHT, FRAMES = 64, 64, 17
SECONDS = FRAMES / JAVISDIT_DEFAULTS.fps
STEPS = 6  # JavisDiT++ uses 50; a handful shows the same path on a CPU


# ---------------------------------------------------------------- the defaults, restated


def javisdit_shift(height, width, frames):
    """JavisDiT++'s size-dependent shift (rf/__init__.py), restated."""
    return math.sqrt(height * width / 512**2) * (1.0 if frames == 1 else math.sqrt(5 * (frames // 17)))


def javisdit_audio_latent_frames(seconds):
    """scripts/inference.py: int(duration / 0.01) mel frames, up to a multiple of 32; 4 mel per latent."""
    mel = int(seconds / 0.01)
    return -(-mel // 32) * 32 // 4


def javisdit_sigmas(steps, shift):
    """rectified_flow.py: t_i = 1000 (1 - i / N), shifted by s t / (1 + (s - 1) t), as sigmas."""
    out = []
    for i in range(steps):
        t = 1.0 - i / steps
        out.append(shift * t / (1 + (shift - 1) * t))
    return torch.tensor(out, dtype=torch.float64)


def test_javisdit_defaults_match_its_inference():
    d = JAVISDIT_DEFAULTS
    assert (d.width, d.height, d.frames, d.fps, d.steps, d.sampler) == (426, 240, 65, 16.0, 50, "euler")
    assert (d.cfg_video, d.cfg_audio) == (5.0, 5.0) and d.negative_prompt.startswith("色调艳丽") and d.negative_prompt.endswith("业余录音")
    assert d.default_shift == pytest.approx(javisdit_shift(240, 426, 65)) and round(d.default_shift, 2) == 2.42
    assert d.shift_for(480, 854, 81) == pytest.approx(javisdit_shift(480, 854, 81)) and round(d.shift_for(480, 854, 81), 2) == 5.59
    for frames in (65, 81, 17, 1, 102):
        assert d.audio_latent_frames(frames / 16, 25.0) == javisdit_audio_latent_frames(frames / 16)
    assert d.audio_latent_frames(65 / 16, 25.0) == 104 and d.audio_latent_frames(81 / 16, 25.0) == 128
    torch.testing.assert_close(sampling_sigmas(50, d.default_shift), javisdit_sigmas(50, d.default_shift))
    assert GenerationDefaults.from_json(d.to_json()) == d
    with pytest.raises(ValueError, match="newer ComfyUI-JoVA"):
        GenerationDefaults.from_json(d.to_json()[:-1] + ', "future": 1}')


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """models/ as a user fills it: the JavisDiT++ transformer converted to JoVA, AudioLDM2's
    release folders, a Wan2.1 VAE; all tiny and random, in the real key layouts. It sits
    in a ComfyUI base folder the node test's stand-ins use."""
    base = tmp_path_factory.mktemp("comfyui")
    root = base / "models"
    for folder in ("jova", "vae", "diffusion_models"):
        (root / folder).mkdir(parents=True)
    source = root / "diffusion_models" / "javisdit_v1.0_jav.safetensors"
    save_file(tiny_javisdit_state_dict(), str(source))
    converted = root / "jova" / "jova_javisdit_v1.0_jav.safetensors"
    convert_checkpoint(str(source), str(converted), "javisdit")
    (root / "vae" / "audioldm2").mkdir()
    vae_dir, vocoder_dir = write_release(root / "vae" / "audioldm2")
    wan_vae, _ = tiny_original_file(root / "vae", ".safetensors")
    return dict(base=base, source=source, converted=converted, vae=vae_dir, vocoder=vocoder_dir, wan_vae=wan_vae)


def test_converted_file_carries_the_defaults(files):
    assert generation_defaults(str(files["converted"])) == JAVISDIT_DEFAULTS
    assert generation_defaults(str(files["source"])) == JAVISDIT_DEFAULTS  # converted on load: same defaults
    model = load_transformer(str(files["converted"]))
    assert model.config.audio_latent_rate == 25.0 and model.config.audio_in_channels == 8


def check_mp4(path, seconds):
    info = probe_media(str(path))
    (video,), (audio,) = info.of_kind("video"), info.of_kind("audio")
    assert (video.width, video.height, video.fps) == (WIDTH, HEIGHT, JAVISDIT_DEFAULTS.fps)
    assert video.codec == "h264" and audio.codec == "aac" and audio.sample_rate == 16_000
    waveform, rate = read_audio(str(path))
    # AAC works in frames of 1024 samples: the decoded track is the clip's length to within one.
    assert abs(waveform.shape[-1] - round(seconds * rate)) <= 1024
    assert waveform.abs().max() > 1e-3  # sound, not a silent track


def test_end_to_end_through_jova_core(files, tmp_path):
    defaults = generation_defaults(str(files["converted"]))
    model = load_transformer(str(files["converted"]))
    video_codec = load_video_codec(files["wan_vae"])
    audio_codec = load_audio_codec(str(files["vae"]), str(files["vocoder"]))
    encoder = DemoTextEncoder(model.config.text_dim, model.config.text_len)
    video_shape = (1, *video_codec.geometry.latent_shape(FRAMES, HEIGHT, WIDTH))
    audio_shape = (1, *audio_codec.geometry.latent_shape(defaults.audio_latent_frames(SECONDS, model.config.audio_latent_rate)))
    assert audio_shape == (1, 8, 16, 32)  # 1.0625 s: 106 mel frames -> 128 -> 32 latent frames
    video, audio = sample(
        model, text=encoder(["waves breaking on a beach"]), negative_video=encoder([defaults.negative_prompt]),
        mode="t2va", video_shape=video_shape, audio_shape=audio_shape, steps=STEPS, sampler=defaults.sampler,
        shift=defaults.shift_for(HEIGHT, WIDTH, FRAMES), cfg_video=defaults.cfg_video, cfg_audio=defaults.cfg_audio,
        seed=42, fps=defaults.fps,
    )
    frames = video_codec.decode(video)[0]  # [17, 64, 64, 3]
    waveform = audio_codec.decode(audio)[0, :, : round(SECONDS * audio_codec.sample_rate)]
    assert frames.shape == (FRAMES, HEIGHT, WIDTH, 3) and waveform.shape == (1, 17_000)
    path = write_mp4(str(tmp_path / "clip.mp4"), frames, defaults.fps, waveform, audio_codec.sample_rate)
    check_mp4(path, SECONDS)


@pytest.fixture(scope="module")
def env(files):
    with harness.comfy_stubs(files["base"]) as stubs:
        stubs.pack = harness.load_pack()
        harness.node_list(stubs.pack)  # imports the nodes, as ComfyUI's loader does
        stubs.n = sys.modules[harness.PACK_NAME + ".nodes"]
        yield stubs


def test_end_to_end_through_the_nodes(env, files):
    run, n = harness.run_node, env.n
    assert "audioldm2/vae/diffusion_pytorch_model.safetensors" in n.paths.list_files(n.paths.AUDIO_CODEC_FOLDERS)
    model = run(n.JoVAModelLoader, model_name="jova_javisdit_v1.0_jav.safetensors", weight_dtype="fp32",
                attention="sdpa", offload="whole model", blocks_on_gpu=20)[0]
    width, height, seconds, fps, steps, shift, cfg_video, cfg_audio, negative_prompt, info = run(
        n.JoVAModelDefaults, model=model).args
    assert (width, height, fps, steps, cfg_video) == (426, 240, 16.0, 50, 5.0) and "2.419" in info
    without = n.model_handle.JoVAModelHandle(model.transformer, "a model without defaults")
    with pytest.raises(ValueError, match="carries no generation defaults"):
        n.JoVAModelDefaults.execute(model=without)
    # Without them the audio length is the codec's count: 17 frames at 16 fps -> 26 latent frames, not 32.
    plain = run(n.JoVAEmptyLatent, model=without, width=64, height=64, seconds=SECONDS, fps=16.0, batch_size=1)[0]
    assert tuple(plain["jova_audio"].shape) == (1, 8, 16, 26)
    # At JavisDiT++'s own size the latents are the ones its inference makes (30 x 54, 104 audio frames).
    full = run(n.JoVAEmptyLatent, model=model, width=width, height=height, seconds=seconds, fps=fps, batch_size=1)[0]
    assert tuple(full["samples"].shape) == (1, 16, 17, 30, 54) and tuple(full["jova_audio"].shape) == (1, 8, 16, 104)
    # The run itself at a small size, with the model's steps, sampler, guidance and negative prompt.
    latent = run(n.JoVAEmptyLatent, model=model, width=WIDTH, height=HEIGHT, seconds=SECONDS, fps=fps, batch_size=1)[0]
    assert tuple(latent["jova_audio"].shape) == (1, 8, 16, 32)
    encoder = run(n.JoVATextEncoderLoader, model=model, encoder=DemoTextEncoder.name)[0]
    positive = run(n.JoVATextEncode, text_encoder=encoder, video_caption="waves on a beach", audio_caption="surf",
                   transcript="")[0]
    negative = run(n.JoVATextEncode, text_encoder=encoder, video_caption=negative_prompt, audio_caption="",
                   transcript="")[0]
    small_shift = JAVISDIT_DEFAULTS.shift_for(HEIGHT, WIDTH, FRAMES)
    sampled = run(n.JoVASampler, model=model, positive=positive, negative=negative, latent=latent, seed=42,
                  steps=STEPS, sampler="euler", shift=small_shift, cfg_video=cfg_video, cfg_audio=cfg_audio,
                  mode="t2va")[0]
    audio_codec = run(n.JoVAAudioCodecLoader, vae_name="audioldm2/vae/diffusion_pytorch_model.safetensors",
                      vocoder_name="audioldm2/vocoder/model.safetensors")[0]
    video_codec = run(n.JoVAVideoCodecLoader, codec_name="wan_vae.safetensors")[0]
    images, audio, out_fps = run(n.JoVADecode, latent=sampled, audio_codec=audio_codec, video_codec=video_codec,
                                 tiled=False).args
    assert images.shape == (FRAMES, HEIGHT, WIDTH, 3) and audio["waveform"].shape == (1, 1, 17_000)
    out = run(n.JoVAMux, images=images, fps=out_fps, audio=audio, save_mp4=True, filename_prefix="JoVA/javisdit")
    check_mp4(env.base_dir / "output" / "JoVA" / out.ui.values[0]["filename"], SECONDS)
