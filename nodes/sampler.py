"""JoVA Sampler: text (+ reference image, + driving audio) -> video and audio latents."""

from __future__ import annotations

import comfy.model_management
import comfy.utils
import torch
from comfy_api.latest import io
from PIL import Image

from ..jova_core.fit import audio_to_latents, fit_frames
from ..jova_core.latent import JoVALatent
from ..jova_core.sampling import MODES, SOLVERS, sample
from ..jova_core.sampling.modes import ABSENT, GENERATE, GIVEN
from .codecs import on_device, pick_video_codec
from .display import show_text
from .text import TEXT_LENGTH_KEY
from .types import CATEGORY, JoVAAudioCodec, JoVAModel, JoVAVideoCodec

PREVIEW_MAX_SIZE = 512


def conditioning_tensor(conditioning, name: str, trim: bool = False) -> torch.Tensor:
    """The text hidden states [1, L, D] of a one-prompt CONDITIONING; with `trim`, only its
    real tokens when the encoder said how many (a model that reads no padding, MagiHuman)."""
    if not conditioning:
        raise ValueError(f"'{name}' is empty; connect a JoVA Text Encode output")
    if len(conditioning) != 1:
        raise ValueError(f"'{name}' holds {len(conditioning)} prompts; JoVA takes one (do not combine conditionings)")
    hidden, options = conditioning[0][0], conditioning[0][1]
    length = options.get(TEXT_LENGTH_KEY) if trim else None
    return hidden if length is None else hidden[:, : max(1, length)]


def model_sampling(model, cfg_video: float) -> dict:
    """What a loaded model's own inference fixes for ``sample`` / ``extend``, not knobs:
    cfg_video, as a schedule where it has one (daVinci-MagiHuman: 5, then 2 at t <= 500;
    cfg_video is its first scale), and sigma_max, where its schedule starts (MagiHuman
    0.999, JoVA 1)."""
    if model.defaults is None:
        return dict(cfg_video=cfg_video, sigma_max=1.0)
    return dict(cfg_video=model.defaults.video_guidance(cfg_video), sigma_max=model.defaults.sigma_max)


def prompt_tensors(model, positive, negative, negative_audio=None) -> dict:
    """``sample`` / ``extend``'s text, negative_video and negative_audio from the nodes'
    CONDITIONING inputs, trimmed to their real tokens for a model that reads no padding."""
    trim = model.hosting.trims_text
    return dict(
        text=conditioning_tensor(positive, "positive", trim),
        negative_video=conditioning_tensor(negative, "negative", trim),
        negative_audio=None if negative_audio is None else conditioning_tensor(negative_audio, "negative_audio", trim),
    )


def encode_reference(reference_image, vae, video_codec, height: int, width: int) -> torch.Tensor | None:
    """The reference image's video latent [1, C, 1, h, w] on the CPU (None without an image)."""
    if reference_image is None:
        return None
    with on_device(pick_video_codec(vae, video_codec, "the reference image")) as codec:
        return codec.encode(fit_frames(reference_image[:1], height, width)[None]).cpu()


def step_progress(model, steps: int):
    """The sampler callback of a node: ComfyUI's progress bar with a latent preview, and
    Cancel honoured at every step."""
    bar = comfy.utils.ProgressBar(steps)
    cell_pixels = model.hosting.geometry.video.spatial_stride

    def on_step(info) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        preview = latent_preview(info.video_x0, cell_pixels) if info.video_x0 is not None else None
        bar.update_absolute(info.step + 1, info.total, preview)

    return on_step


def latent_preview(video_x0: torch.Tensor, cell_pixels: int) -> tuple[str, Image.Image, int]:
    """A rough look at the middle frame of a predicted clean video latent (3 channels, contrast-stretched),
    each latent cell drawn as cell_pixels x cell_pixels (the VAE's spatial stride)."""
    frame = video_x0[0, :3, video_x0.shape[2] // 2].float()  # [3, h, w]
    lo = frame.amin(dim=(1, 2), keepdim=True)
    hi = frame.amax(dim=(1, 2), keepdim=True)
    rgb = ((frame - lo) / (hi - lo).clamp_min(1e-6) * 255).byte().permute(1, 2, 0).cpu().numpy()
    image = Image.fromarray(rgb).resize((rgb.shape[1] * cell_pixels, rgb.shape[0] * cell_pixels), Image.NEAREST)
    return "JPEG", image, PREVIEW_MAX_SIZE


class JoVASampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVASampler",
            display_name="JoVA Sampler",
            category=CATEGORY,
            description=(
                "Flow-matching sampling of video and audio together, with separate guidance per modality. "
                "Modes: t2va text -> video+audio; i2va image -> video+audio; a2v your audio -> lip-synced "
                "video (optionally from an image); v2a video -> audio; t2v / i2v / t2a one modality. "
                "a2v without 'audio' lip-syncs to the audio an earlier JoVA Sampler generated into 'latent' "
                "(a second, audio-driven pass)."
            ),
            inputs=[
                JoVAModel.Input("model", tooltip="From JoVA Model Loader."),
                io.Conditioning.Input("positive", tooltip="The prompt, from JoVA Text Encode; both branches read it."),
                io.Conditioning.Input("negative", tooltip="Negative prompt for both branches (or video only when negative_audio is connected)."),
                io.Latent.Input("latent", tooltip="From JoVA Empty Latent (size and length), or an earlier JoVA Sampler for a second pass."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="The starting noise; the same seed gives the same clip on the same device."),
                io.Int.Input("steps", default=30, min=1, max=200, tooltip="Denoising steps (more: slower, finer)."),
                io.Combo.Input("sampler", options=list(SOLVERS), default="unipc",
                               tooltip="unipc: good results in fewer steps; euler: the plain flow-matching step; renoise: "
                                       "distilled models' few-step sampler (daVinci-MagiHuman distill: 8 steps, cfg 1)."),
                io.Float.Input("shift", default=5.0, min=0.1, max=20.0, step=0.1,
                               tooltip="Timestep shift of the flow-matching schedule: higher spends more steps on "
                                       "coarse structure (Wan2.1: 5 at 480p)."),
                io.Float.Input("cfg_video", default=5.0, min=1.0, max=20.0, step=0.1,
                               tooltip="Guidance scale of the video branch (1 = none; both cfg at 1 skip the negative pass, "
                                       "half the work). daVinci-MagiHuman switches it to its late scale (2) at t <= 500."),
                io.Float.Input("cfg_audio", default=4.0, min=1.0, max=20.0, step=0.1,
                               tooltip="Guidance scale of the audio branch (1 = none)."),
                io.Combo.Input("mode", options=list(MODES), default="t2va",
                               tooltip="What is generated from what: t2va text -> video+audio, i2va image -> "
                                       "video+audio, a2v audio -> lip-synced video, v2a video -> audio, t2v / i2v / "
                                       "t2a one modality."),
                io.Conditioning.Input("negative_audio", optional=True, tooltip="A separate negative prompt for the audio branch."),
                io.Image.Input("reference_image", optional=True, tooltip="First frame for i2va / i2v (optional in a2v)."),
                io.Audio.Input("audio", optional=True, tooltip="The sound to lip-sync to (a2v); without it, a2v uses the audio an earlier JoVA Sampler put in 'latent'."),
                io.Image.Input("video", optional=True, tooltip="The frames to add sound to (v2a)."),
                io.Vae.Input("vae", optional=True, tooltip="Wan2.1 VAE (core VAELoader), to encode the reference image or video."),
                JoVAVideoCodec.Input("video_codec", optional=True, tooltip="A pack video codec instead of 'vae'."),
                JoVAAudioCodec.Input("audio_codec", optional=True, tooltip="To encode the driving audio (a2v)."),
            ],
            outputs=[io.Latent.Output("latent", tooltip="Generated video and audio latents: to JoVA Decode, or a second JoVA Sampler.")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent: dict, seed: int, steps: int, sampler: str, shift: float,
                cfg_video: float, cfg_audio: float, mode: str, negative_audio=None, reference_image=None,
                audio=None, video=None, vae=None, video_codec=None, audio_codec=None) -> io.NodeOutput:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        roles = MODES[mode]
        clip = JoVALatent.from_dict(latent)
        video_shape, audio_shape = tuple(clip.video.shape), tuple(clip.audio.shape)
        fps, frames, height, width = clip.fps, clip.frames, clip.height, clip.width
        notes = []

        reference = encode_reference(reference_image, vae, video_codec, height, width)
        video_latents = audio_latents = None
        if roles.video == GIVEN:
            if video is None:
                raise ValueError(f"mode {mode!r} adds sound to a video: connect its frames to 'video'")
            given = fit_frames(video[:frames], height, width)
            if given.shape[0] < frames:
                raise ValueError(f"'video' has {given.shape[0]} frames, the latent expects {frames}; shorten the clip in JoVA Empty Latent")
            with on_device(pick_video_codec(vae, video_codec, "the input video")) as codec:
                video_latents = codec.encode(given[None]).cpu().expand(video_shape[0], -1, -1, -1, -1)
        if roles.audio == GIVEN and audio is None and clip.audio_sampled:
            # A second pass: keep the sound an earlier sampler made and regenerate the video to it.
            audio_latents = clip.audio.float()
        elif roles.audio == GIVEN:
            if audio is None or audio_codec is None:
                raise ValueError(
                    f"mode {mode!r} lip-syncs to your sound: connect 'audio' and 'audio_codec', "
                    "or feed 'latent' from a JoVA Sampler that generated audio"
                )
            with on_device(audio_codec):
                audio_latents, note = audio_to_latents(audio_codec, audio["waveform"], audio["sample_rate"],
                                                       audio_shape[-1], clip.seconds)
            audio_latents = audio_latents[:1].expand(audio_shape[0], *audio_shape[1:])  # one driving track for the batch
            notes += [note] if note else []

        on_step = step_progress(model, steps)
        with model.on_device() as transformer:
            out_video, out_audio = sample(
                transformer,
                **prompt_tensors(model, positive, negative, negative_audio),
                mode=mode,
                video_shape=video_shape if roles.video == GENERATE else None,
                audio_shape=audio_shape if roles.audio == GENERATE else None,
                video_latents=video_latents, audio_latents=audio_latents, reference=reference,
                steps=steps, sampler=sampler, shift=shift, cfg_audio=cfg_audio, **model_sampling(model, cfg_video),
                seed=seed, fps=fps, callback=on_step,
            )
        device = comfy.model_management.intermediate_device()
        clip.video = (out_video if out_video is not None else clip.video).to(device)
        clip.audio = (out_audio if out_audio is not None else clip.audio).to(device)
        clip.video_absent, clip.audio_absent = roles.video == ABSENT, roles.audio == ABSENT
        clip.audio_sampled = roles.audio != ABSENT  # real sound now, not Empty Latent's zeros
        return io.NodeOutput(clip.to_dict(keep=latent), ui=show_text(cls, "\n".join(notes)) if notes else None)
