"""MagiHuman's codecs and text encoder through the nodes (stand-ins): JoVA Audio Codec Loader picks
the Stable Audio Open file with no vocoder, JoVA Decode keeps its output stereo at 44.1 kHz, JoVA
Mux writes an MP4 with a stereo AAC stream; the core VAE with Wan2.2; JoVA T5Gemma Text Encoder
under ComfyUI's model management, fed by JoVA Text Encode."""

import shutil

import torch
from safetensors.torch import save_file
from test_codecs_stable_audio import sat_state_dict, tiny_reference
from test_nodes import _fresh_records, _probe, env, run_node  # noqa: F401  (fixtures)
from test_text_t5gemma import folder  # noqa: F401  (fixture)


def test_stable_audio_codec_stays_stereo_through_decode_and_mux(env):  # noqa: F811  (the fixture)
    audio_folder = env.base_dir / "models" / "jova_audio"
    audio_folder.mkdir(parents=True, exist_ok=True)
    save_file(sat_state_dict(tiny_reference()), str(audio_folder / "stable_audio_open.safetensors"))
    loaders = env.n.loaders
    codec = run_node(env.n.JoVAAudioCodecLoader, vae_name="stable_audio_open.safetensors",
                     vocoder_name=loaders.NO_VOCODER)[0]
    assert type(codec).__name__ == "StableAudioCodec" and codec.decoded_sample_rate == 44_100

    fps, frames = 25.0, 9
    latent = {"samples": torch.zeros(1, 16, 3, 2, 2), "jova_audio": torch.randn(1, 64, 9), "jova_fps": fps,
              "jova_frames": frames, "jova_width": 32, "jova_height": 32, "jova_video_absent": True,
              "jova_audio_sampled": True}
    images, audio, out_fps = run_node(env.n.JoVADecode, latent=latent, audio_codec=codec, tiled=False).args
    assert images.shape == (frames, 32, 32, 3) and out_fps == fps
    assert audio["sample_rate"] == 44_100
    assert audio["waveform"].shape == (1, 2, round(frames / fps * 44_100))
    expected = codec.decode(latent["jova_audio"])[..., : round(frames / fps * 44_100)]
    assert torch.allclose(audio["waveform"], expected)

    run_node(env.n.JoVAMux, images=images, fps=fps, audio=audio, save_mp4=True, filename_prefix="JoVA/stereo")
    info = _probe(env.base_dir / "output" / "JoVA" / "stereo_00001.mp4")
    assert "Audio: aac" in info and "44100 Hz" in info and "stereo" in info


class FakeCoreWan22VAE:
    """ComfyUI's VAE object for wan2.2_vae.safetensors: 48 channels, 4x temporal, 16x spatial."""

    latent_channels = 48

    def temporal_compression_decode(self):
        return 4

    def spacial_compression_decode(self):
        return 16

    def encode(self, frames):
        t, h, w, _ = frames.shape
        raw = torch.linspace(-1, 1, 48).view(1, -1, 1, 1, 1)
        return raw.expand(1, 48, 1 + (t - 1) // 4, h // 16, w // 16).clone()

    def decode(self, z):
        self.raw = z.clone()
        b, _, f, h, w = z.shape
        return torch.full((b, 1 + (f - 1) * 4, h * 16, w * 16, 3), 0.5)


def test_core_wan22_vae_gets_magihuman_normalisation(env):  # noqa: F811  (the fixture)
    vae = FakeCoreWan22VAE()
    codec = env.n.codecs.CoreVAEVideoCodec(vae)
    config = env.core("codecs.wan_vae").wan_vae_config(48)
    mean = torch.tensor(config["latents_mean"]).view(1, -1, 1, 1, 1)
    std = torch.tensor(config["latents_std"]).view(1, -1, 1, 1, 1)
    assert codec.geometry == env.core("geometry").WAN22_VAE
    frames = torch.rand(1, 5, 32, 48, 3)
    latents = codec.encode(frames)
    assert latents.shape == (1, 48, 2, 2, 3)
    assert torch.allclose(latents, (vae.encode(frames[0]) - mean) / std, atol=1e-6)
    assert codec.decode(latents).shape == (1, 5, 32, 48, 3)
    assert torch.allclose(vae.raw, vae.encode(frames[0]), atol=1e-5)


def test_t5gemma_loader_runs_under_model_management_and_feeds_text_encode(env, folder):  # noqa: F811  (fixtures)
    target = env.base_dir / "models" / "text_encoders" / "t5gemma-9b-9b-ul2"
    shutil.copytree(folder, target)
    assert env.n.JoVAT5GemmaLoader.define_schema().inputs[0].options == ["t5gemma-9b-9b-ul2"]
    encoder = run_node(env.n.JoVAT5GemmaLoader, folder="t5gemma-9b-9b-ul2")[0]
    conditioning, prompt = run_node(env.n.JoVATextEncode, text_encoder=encoder, video_caption="w1 w2",
                                    audio_caption="", transcript="").args
    assert any(patcher is encoder.patcher for patcher, _ in env.comfy.model_management.loaded)
    reference = env.core("text.t5gemma").T5GemmaTextEncoder(str(target), text_dim=None)
    assert conditioning[0][0].shape == (1, 640, 32)
    assert torch.equal(conditioning[0][0][0], reference.encode_one(prompt))
