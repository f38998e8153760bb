"""The Stable Audio Open VAE through the nodes (stand-ins): JoVA Audio Codec Loader picks the one
file with no vocoder, JoVA Decode keeps its output stereo at 44.1 kHz, JoVA Mux writes an MP4
with a stereo AAC stream."""

import torch
from safetensors.torch import save_file
from test_codecs_stable_audio import sat_state_dict, tiny_reference
from test_nodes import _fresh_records, _probe, env, run_node  # noqa: F401  (fixtures)


def test_stable_audio_codec_stays_stereo_through_decode_and_mux(env):  # noqa: F811  (the fixture)
    folder = env.base_dir / "models" / "jova_audio"
    folder.mkdir(parents=True, exist_ok=True)
    save_file(sat_state_dict(tiny_reference()), str(folder / "stable_audio_open.safetensors"))
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
