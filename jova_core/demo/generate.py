"""One demo clip: the demo prompt -> joint sampling (then, if the model's settings ask for
it, an audio-driven video pass) -> the weight-free demo codecs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch

from ..io.clip import Clip
from .settings import DEFAULT_TRANSCRIPT, DemoSettings, load_demo_model, load_demo_settings, reference_frame


@dataclass
class DemoClip(Clip):
    """A generated clip (waveform [1, N]), the prompt it was generated from and, for a
    clip extended past the model's length, where its chunks were joined (sampling.extend.Chunk)."""

    prompt: str
    chunks: tuple = ()


def demo_prompt(transcript: str, settings: DemoSettings) -> str:
    """The JoVA prompt the demo model was trained with, for this transcript."""
    from ..text.prompt import format_prompt
    from ..text.demo import DemoTextEncoder

    count = len(DemoTextEncoder.transcript_syllables(transcript))
    if count > settings.max_syllables:
        raise ValueError(
            f"the transcript has {count} syllables; the demo clip ({settings.num_frames / settings.fps:.1f} s) "
            f"holds at most {settings.max_syllables}"
        )
    return format_prompt(settings.video_caption, settings.audio_caption.replace("{syllables}", str(count)), transcript)


@dataclass
class DemoLatents:
    """A sampled demo clip before decoding: JoVA latents (video [1,16,T,h,w], audio
    [1,20,T_a]) and what DemoClip carries besides its frames and sound."""

    video: torch.Tensor
    audio: torch.Tensor
    fps: float
    prompt: str
    chunks: tuple = ()

    def decode(self) -> DemoClip:
        """The whole clip decoded at once (what the 2 s demo MP4 is made of)."""
        from ..codecs.demo import DemoAudioCodec, DemoVideoCodec

        audio_codec = DemoAudioCodec()
        with torch.no_grad():
            frames = DemoVideoCodec().decode(self.video)[0]
            waveform = audio_codec.decode(self.audio)[0]
        return DemoClip(frames=frames, waveform=waveform, fps=self.fps, sample_rate=audio_codec.decoded_sample_rate,
                        prompt=self.prompt, chunks=self.chunks)

    def write_mp4(self, path: str, overwrite: bool = False) -> tuple[int, int]:
        """Decode chunk by chunk straight into an MP4 (io.write_mp4_chunks), so memory does
        not grow with the clip's length. Returns (frames, audio samples) written."""
        from ..codecs.demo import DemoAudioCodec, DemoVideoCodec
        from ..io import write_mp4_chunks

        video_codec, audio_codec = DemoVideoCodec(), DemoAudioCodec()
        num_frames = video_codec.num_frames(self.video.shape[2])
        rate = audio_codec.decoded_sample_rate
        with torch.no_grad():
            write_mp4_chunks(path, (chunk[0] for chunk in video_codec.decode_chunks(self.video)), num_frames, self.fps,
                             (chunk[0] for chunk in audio_codec.decode_chunks(self.audio)), rate, overwrite=overwrite)
        return num_frames, round(num_frames / self.fps * rate)


def generate_demo(*args, **kwargs) -> DemoClip:
    """sample_demo (same arguments), decoded whole."""
    return sample_demo(*args, **kwargs).decode()


def sample_demo(
    transcript: str = DEFAULT_TRANSCRIPT,
    seed: int = 0,
    steps: int | None = None,
    checkpoint: str | None = None,
    model=None,
    callback: Callable | None = None,
    joint_only: bool = False,
    seconds: float | None = None,
    overlap: int = 1,
    batch_guidance: bool = False,
) -> DemoLatents:
    """One demo clip's latents: text -> joint sampling (then, if the model's settings ask for it,
    an audio-driven video pass) -> demo codecs. callback: see sampling.sample; its
    StepInfo counts the steps of both passes (DemoSettings.sampling_steps). joint_only
    skips the audio-driven pass (for comparisons). seconds: a longer clip, extended chunk
    by chunk from the first (sampling.extend; `overlap` video latent frames held), one
    callback count over all chunks; None for the model's own length. batch_guidance
    (sampling.sample's) is off here: batching moves the last float bits, and the demo
    clip is kept bit-identical to the published one (bench/guidance.py times both)."""
    from ..codecs.demo import DemoAudioCodec, DemoVideoCodec
    from ..latent import JoVALatent
    from ..sampling import check_seed, sample
    from ..sampling.extend import extend, plan_extension
    from ..text.demo import DemoTextEncoder

    check_seed(seed)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a whole number >= 1 (or left out for the demo model's own), got {steps!r}")
    settings = load_demo_settings(checkpoint)
    if joint_only:
        settings = dataclasses.replace(settings, audio_driven_pass=False)
    prompt = demo_prompt(transcript, settings)  # before the model: its errors are cheap to hit
    model = model if model is not None else load_demo_model(checkpoint)
    config = model.config
    encoder = DemoTextEncoder(config.text_dim, config.text_len)
    video_codec, audio_codec = DemoVideoCodec(), DemoAudioCodec()
    video_shape = (1, *video_codec.latent_shape(settings.num_frames, settings.height, settings.width))
    steps = settings.steps if steps is None else steps
    total = first = settings.sampling_steps(steps)
    audio_shape = (1, audio_codec.latent_channels, settings.audio_latent_frames)
    chunks = ()
    if seconds is not None and seconds * settings.fps >= settings.num_frames + video_codec.temporal_stride:
        placeholder = JoVALatent(torch.zeros(video_shape), torch.zeros(audio_shape), settings.fps, settings.num_frames,
                                 settings.width, settings.height, audio_sampled=True)
        chunks = tuple(plan_extension(config.geometry, placeholder, seconds, overlap))
        total += len(chunks) * first
    common = dict(
        text=encoder(prompt),
        negative_video=encoder(""),  # the empty prompt: what caption dropout trained
        reference=video_codec.encode(reference_frame(settings)[None, None]),
        video_shape=video_shape,
        steps=steps, sampler=settings.sampler, shift=settings.shift,
        cfg_video=settings.cfg_video, cfg_audio=settings.cfg_audio, seed=seed, fps=settings.fps,
        batch_guidance=batch_guidance,
    )

    def counting_from(done: int):
        if callback is None:
            return None
        return lambda info: callback(dataclasses.replace(info, step=done + info.step, total=total))

    with torch.no_grad():
        video, audio = sample(model, mode="i2va", audio_shape=audio_shape, callback=counting_from(0), **common)
        if settings.audio_driven_pass:
            video, _ = sample(model, mode="a2v", audio_latents=audio, callback=counting_from(steps), **common)
        if chunks:
            clip = JoVALatent(video, audio, settings.fps, settings.num_frames, settings.width, settings.height,
                              audio_sampled=True)
            common.pop("video_shape"), common.pop("fps")
            clip = extend(model, clip, seconds, overlap=overlap, audio_driven_pass=settings.audio_driven_pass,
                          callback=counting_from(first), **common)
            video, audio = clip.video, clip.audio
    return DemoLatents(video=video, audio=audio, fps=settings.fps, prompt=prompt, chunks=chunks)
