"""JoVA Decode: a JoVA LATENT -> IMAGE frames + AUDIO (+ the clip's fps)."""

from __future__ import annotations

import comfy.model_management
import comfy.utils
import torch
from comfy_api.latest import io

from ..jova_core.codecs.chunked import collect_chunks
from ..jova_core.latent import JoVALatent
from .codecs import on_device, pick_video_codec
from .types import CATEGORY, JoVAAudioCodec, JoVAVideoCodec

# Sample rate of the silent track returned when the latent has no audio (t2v / i2v).
SILENT_RATE = 16000


class JoVADecode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVADecode",
            display_name="JoVA Decode",
            category=CATEGORY,
            description="Decodes the video latents with the Wan VAE (core VAELoader) or a pack video codec, and the audio latents with the audio codec (mono or stereo, at the codec's output rate).",
            inputs=[
                io.Latent.Input("latent", tooltip="From JoVA Sampler."),
                JoVAAudioCodec.Input("audio_codec", optional=True, tooltip="Needed unless the latent has no audio."),
                io.Vae.Input("vae", optional=True, tooltip="Wan2.1 or Wan2.2 VAE from the core VAELoader."),
                JoVAVideoCodec.Input("video_codec", optional=True, tooltip="A pack video codec instead of 'vae'."),
                io.Boolean.Input("tiled", default=False, tooltip="Decode video in spatial tiles to save memory."),
            ],
            outputs=[io.Image.Output("images", tooltip="The video frames."),
                     io.Audio.Output("audio", tooltip="The sound, as long as the video."),
                     io.Float.Output("fps", tooltip="The clip's frame rate, for JoVA Mux.")],
        )

    @classmethod
    def execute(cls, latent: dict, tiled: bool = False, audio_codec=None, vae=None, video_codec=None) -> io.NodeOutput:
        clip = JoVALatent.from_dict(latent, "connect the JoVA Sampler's output")
        fps, frames = clip.fps, clip.frames
        device = comfy.model_management.get_torch_device()
        # IMAGE and AUDIO hold the whole clip (on the CPU); the decoders run chunk by chunk
        # (codecs' decode_chunks), so device memory stays flat with the clip's length.
        bar = comfy.utils.ProgressBar(200)  # video 0..100, audio 100..200

        def on_chunk(done: int, total: int, stage: int) -> None:
            comfy.model_management.throw_exception_if_processing_interrupted()
            bar.update_absolute(100 * stage + round(100 * done / total), 200)

        if clip.video_absent:
            images = torch.zeros(frames, clip.height, clip.width, 3)
        else:
            with on_device(pick_video_codec(vae, video_codec)) as codec:
                latents = clip.video.to(device)
                if tiled:  # spatial tiles (the codec's own), whole clip at once
                    clips = codec.decode(latents, tiled=True).float().cpu()  # [B, T, H, W, 3]
                else:
                    length = codec.num_frames(latents.shape[2])
                    clips = collect_chunks(codec.decode_chunks(latents), length, 1, lambda n: on_chunk(n, length, 0))
            images = clips[:, :frames].reshape(-1, *clips.shape[2:]).clamp(0, 1)
        seconds = clip.seconds
        if clip.audio_absent:
            audio = {"waveform": torch.zeros(1, 1, round(seconds * SILENT_RATE)), "sample_rate": SILENT_RATE}
        else:
            if audio_codec is None:
                raise ValueError("the latent has audio: connect 'audio_codec' (JoVA Audio Codec Loader)")
            with on_device(audio_codec):
                latents = clip.audio.to(device)
                length = audio_codec.num_samples(latents.shape[-1])
                waveform = collect_chunks(audio_codec.decode_chunks(latents), length, -1,
                                          lambda n: on_chunk(n, length, 1))  # [B, 1 or 2, N]
            rate = int(audio_codec.decoded_sample_rate)
            audio = {"waveform": waveform[..., : round(seconds * rate)], "sample_rate": rate}
        return io.NodeOutput(images, audio, fps)
