"""Long clips decoded and written chunk by chunk: the same frames and sound as a whole
decode (exactly, or within a stated error), joins without a click, and an MP4 written from
chunks identical to one written whole."""

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jova_core.codecs.chunked import crossfaded_chunks, raised_cosine
from jova_core.codecs.demo import DemoAudioCodec, DemoVideoCodec
from jova_core.codecs.signals import syllables
from jova_core.io import read_clip, write_mp4, write_mp4_chunks
from jova_core.io.mp4 import fit_audio, write_wav, write_wav_chunks

from test_av_io import FPS, moving_clip


def md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("t_lat,chunk", [(21, 3), (21, 8), (20, 1), (5, 8)])
def test_demo_video_chunks_are_the_whole_decode_exactly(t_lat, chunk):
    codec = DemoVideoCodec()
    latents = torch.randn(1, 16, t_lat, 3, 5, generator=torch.Generator().manual_seed(t_lat))
    pieces = list(codec.decode_chunks(latents, chunk))
    assert len(pieces) == -(-t_lat // chunk)
    assert torch.equal(torch.cat(pieces, dim=1), codec.decode(latents))


def test_raised_cosine_halves_sum_to_one():
    ramp = raised_cosine(64)
    assert torch.allclose(ramp + ramp.flip(0), torch.ones(64, dtype=torch.float64), atol=1e-12)
    assert 0 < ramp[0] < 0.01 and 0.99 < ramp[-1] < 1


def test_crossfaded_chunks_of_a_local_decoder_are_exact():
    """A decoder that only sees nearby latents (hold each latent 16 samples, then a 9-tap
    moving average: 4 samples each way) must come back to float rounding."""
    per_latent = 16

    def decode(latents):
        held = latents.repeat_interleave(per_latent, dim=-1)
        return F.avg_pool1d(F.pad(held, (4, 4), mode="replicate"), 9, stride=1)

    latents = torch.randn(2, 1, 50, dtype=torch.float64)
    whole = decode(latents)
    for chunk in (1, 7, 16, 50):
        pieces = list(crossfaded_chunks(decode, latents, per_latent, chunk, margin_latents=2, crossfade=16))
        assert torch.allclose(torch.cat(pieces, -1), whole, atol=1e-12), chunk


def test_demo_audio_chunks_match_the_whole_decode_without_clicks():
    codec = DemoAudioCodec()
    latents = codec.encode(syllables(6.0)[None], 16_000)
    whole = codec.decode(latents)[0, 0]
    chunked = torch.cat(list(codec.decode_chunks(latents, 32)), dim=-1)[0, 0]
    assert chunked.shape == whole.shape
    # Griffin-Lim finds each window's phase anew: measured max error 0.0031 against a peak of 0.36.
    assert (chunked - whole).abs().max() < 0.02 * whole.abs().max()
    jumps = chunked.diff().abs()
    joins = [k * 32 * codec.samples_per_latent for k in range(1, latents.shape[-1] // 32 + 1)]
    near = torch.zeros_like(jumps, dtype=torch.bool)
    for join in joins:
        near[join - 512: join + 512] = True
    assert jumps[near].max() <= jumps[~near].max()


def test_wav_from_chunks_is_the_wav_written_whole(tmp_path):
    audio = syllables(1.0).repeat(2, 1) * torch.tensor([[1.0], [0.5]])  # [2, N]
    num = audio.shape[-1] + 100  # padded at the end
    write_wav(str(tmp_path / "whole.wav"), fit_audio(audio, num), 16_000)
    channels = write_wav_chunks(str(tmp_path / "chunks.wav"), audio.split(1000, dim=-1), 16_000, num)
    assert channels == 2
    assert md5(tmp_path / "whole.wav") == md5(tmp_path / "chunks.wav")
    write_wav_chunks(str(tmp_path / "short.wav"), audio.split(1000, dim=-1), 16_000, 5000)  # trimmed
    write_wav(str(tmp_path / "trimmed.wav"), fit_audio(audio, 5000), 16_000)
    assert md5(tmp_path / "short.wav") == md5(tmp_path / "trimmed.wav")


def test_mp4_from_chunks_is_the_mp4_written_whole(tmp_path):
    frames, audio = moving_clip(), syllables(3.0)
    whole = write_mp4(str(tmp_path / "whole.mp4"), frames, FPS, audio, 16_000)
    chunks = write_mp4_chunks(str(tmp_path / "chunks.mp4"), frames.split(4), frames.shape[0], FPS,
                              audio[None].split(3000, dim=-1), 16_000)
    assert md5(whole) == md5(chunks)
    with pytest.raises(ValueError, match="frames came"):
        write_mp4_chunks(str(tmp_path / "wrong.mp4"), frames.split(4), frames.shape[0] + 1, FPS)
    assert not (tmp_path / "wrong.mp4").exists()


def test_demo_latents_written_chunk_by_chunk(tmp_path):
    """DemoLatents.write_mp4 (the --seconds path) holds the frames of a whole decode."""
    from jova_core.demo import sample_demo

    latents = sample_demo("ba ma", seed=1, steps=1, joint_only=True)
    clip = latents.decode()
    frames, samples = latents.write_mp4(str(tmp_path / "streamed.mp4"))
    write_mp4(str(tmp_path / "whole.mp4"), clip.frames, clip.fps, clip.waveform, clip.sample_rate)
    assert frames == clip.frames.shape[0]
    streamed, whole = read_clip(str(tmp_path / "streamed.mp4")), read_clip(str(tmp_path / "whole.mp4"))
    assert torch.equal(streamed.frames, whole.frames)
    assert streamed.waveform.shape == whole.waveform.shape
    assert np.isclose(samples / clip.sample_rate, frames / clip.fps, atol=1 / clip.sample_rate)


def test_audio_codec_without_a_margin_hands_out_the_whole_decode():
    codec = DemoAudioCodec()
    codec.chunk_margin_latents = None  # as AudioLDM2's, whose VAE sees the whole clip
    latents = codec.encode(syllables(2.0)[None], 16_000)
    pieces = list(codec.decode_chunks(latents, 16))
    assert len(pieces) == -(-latents.shape[-1] // 16)
    assert torch.equal(torch.cat(pieces, -1), codec.decode(latents))


@pytest.fixture(scope="module")
def tiny_real_audio_codecs(tmp_path_factory):
    """Tiny random MMAudio (VAE + BigVGAN) and Stable Audio Open codecs, loaded from files."""
    from safetensors.torch import save_file
    from test_codecs_audio import tiny_raw_vae_state_dict, tiny_vocoder_state
    from test_codecs_stable_audio import sat_state_dict, tiny_reference

    from jova_core.codecs import load_audio_codec

    folder = tmp_path_factory.mktemp("codecs")
    torch.save(tiny_raw_vae_state_dict(), folder / "v1-16.pth")
    torch.save({"generator": tiny_vocoder_state()}, folder / "best_netG.pt")
    save_file(sat_state_dict(tiny_reference()), str(folder / "model.safetensors"))
    return {"mmaudio": load_audio_codec(str(folder / "v1-16.pth"), str(folder / "best_netG.pt")),
            "stable_audio": load_audio_codec(str(folder / "model.safetensors"))}


# Measured max error over peak with the shipped margins: MMAudio 1.6e-4, Stable Audio 8e-7.
@pytest.mark.parametrize("name,tolerance", [("mmaudio", 1e-3), ("stable_audio", 1e-5)])
def test_real_audio_codecs_decode_in_chunks(tiny_real_audio_codecs, name, tolerance):
    codec = tiny_real_audio_codecs[name]
    latents = torch.randn(1, *codec.geometry.latent_shape(60), generator=torch.Generator().manual_seed(0))
    whole = codec.decode(latents)
    chunked = torch.cat(list(codec.decode_chunks(latents, 16)), dim=-1)
    assert chunked.shape == whole.shape
    assert (chunked - whole).abs().max() <= tolerance * whole.abs().max()
