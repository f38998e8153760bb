"""JoVA Extend: a JoVA latent -> the same clip continued by some seconds (video and sound together)."""

from __future__ import annotations

import comfy.model_management
from comfy_api.latest import io

from ..jova_core.latent import JoVALatent
from ..jova_core.sampling import SOLVERS
from ..jova_core.sampling.extend import extend
from ..jova_core.sampling.sampler import CONTEXT_MODES
from .sampler import encode_reference, model_sampling, prompt_tensors, step_progress
from .types import CATEGORY, JoVAModel, JoVAVideoCodec


class JoVAExtend(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVAExtend",
            display_name="JoVA Extend",
            category=CATEGORY,
            description=(
                "Continue a clip: each chunk holds the clip's last latent frames of video and the sound of the "
                "same moment, and generates what follows, so motion, voice and sound carry across the seam. "
                "Chain several for longer clips; decode the result once."
            ),
            inputs=[
                JoVAModel.Input("model", tooltip="From JoVA Model Loader (the model that made the latent)."),
                io.Conditioning.Input("positive", tooltip="The prompt for the new chunks, from JoVA Text Encode."),
                io.Conditioning.Input("negative", tooltip="Negative prompt for both branches."),
                io.Latent.Input("latent", tooltip="A JoVA Sampler's (or JoVA Extend's) latent with video and sound."),
                io.Float.Input("seconds", default=2.0, min=0.05, max=600.0, step=0.05, tooltip="Seconds to add."),
                io.Int.Input("overlap", default=1, min=1, max=64,
                             tooltip="Video latent frames of the clip each chunk continues from (held, not repeated)."),
                io.Float.Input("chunk_seconds", default=5.0, min=0.1, max=60.0, step=0.05,
                               tooltip="Length of each chunk, overlap included: what the model was trained on "
                                       "(Wan2.1: 5 s; the CPU demo model: 2.05 s)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Chunk i uses seed + 1 + i (give the seed the clip was made with)."),
                io.Int.Input("steps", default=30, min=1, max=200, tooltip="Denoising steps per chunk."),
                io.Combo.Input("sampler", options=list(SOLVERS), default="unipc",
                               tooltip="unipc: good results in fewer steps; euler: the plain flow-matching step."),
                io.Float.Input("shift", default=5.0, min=0.1, max=20.0, step=0.1,
                               tooltip="Timestep shift of the schedule (as in JoVA Sampler; use the clip's own)."),
                io.Float.Input("cfg_video", default=5.0, min=1.0, max=20.0, step=0.1,
                               tooltip="Guidance scale of the video branch (1 = none)."),
                io.Float.Input("cfg_audio", default=4.0, min=1.0, max=20.0, step=0.1,
                               tooltip="Guidance scale of the audio branch (1 = none)."),
                io.Combo.Input("context", options=list(CONTEXT_MODES), default="noised",
                               tooltip="How the held frames are held: noised (re-imposed at each step's noise "
                                       "level; any model, the only one for daVinci-MagiHuman, which takes no "
                                       "timestep) or clean (t = 0; models trained with clean context)."),
                io.Boolean.Input("audio_driven_pass", default=False,
                                 tooltip="After each chunk, regenerate its video to its sound (a2v), as the "
                                         "CPU demo model is meant to run."),
                io.Conditioning.Input("negative_audio", optional=True, tooltip="A separate negative prompt for the audio branch."),
                io.Image.Input("reference_image", optional=True,
                               tooltip="The identity image (i2va) for models with reference channels, e.g. the CPU demo's."),
                io.Vae.Input("vae", optional=True, tooltip="Wan2.1 VAE, to encode the reference image."),
                JoVAVideoCodec.Input("video_codec", optional=True, tooltip="A pack video codec instead of 'vae'."),
            ],
            outputs=[io.Latent.Output("latent", tooltip="The longer clip: to JoVA Decode, or another JoVA Extend.")],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent: dict, seconds: float, overlap: int, chunk_seconds: float,
                seed: int, steps: int, sampler: str, shift: float, cfg_video: float, cfg_audio: float, context: str,
                audio_driven_pass: bool, negative_audio=None, reference_image=None, vae=None,
                video_codec=None) -> io.NodeOutput:
        clip = JoVALatent.from_dict(latent, hint="feed it from a JoVA Sampler or JoVA Extend")
        reference = encode_reference(reference_image, vae, video_codec, clip.height, clip.width)
        chunk_frames = model.hosting.geometry.video.latent_frames(max(1, round(chunk_seconds * clip.fps)))
        with model.on_device() as transformer:
            longer = extend(
                transformer, clip, clip.seconds + seconds, overlap=overlap, chunk_frames=chunk_frames,
                **prompt_tensors(model, positive, negative, negative_audio), reference=reference, steps=steps, sampler=sampler, shift=shift, **model_sampling(model, cfg_video),
                cfg_audio=cfg_audio, seed=seed, context=context, audio_driven_pass=audio_driven_pass,
                callback=step_progress(model, steps),
            )
        device = comfy.model_management.intermediate_device()
        longer.video, longer.audio = longer.video.to(device), longer.audio.to(device)
        return io.NodeOutput(longer.to_dict(keep=latent))
