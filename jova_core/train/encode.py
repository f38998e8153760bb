"""Preprocessing of one clip for training: latents, text embedding, latent mouth mask.

    MP4 -> frames [T,H,W,3] 0..1 + waveform
        -> video codec  -> "video" [C, F, H/s, W/s] (the codec's latent geometry)
        -> audio codec  -> "audio" [C, T_lat]
        -> face landmarks -> pixel mouth box -> "mouth_mask" [F, H/8, W/8] (latent grid)
    prompt (JoVA format) -> text encoder -> "text" [L, text_dim]
        (or, with text_encoder "precomputed", the clip's own text_embedding file)
Once per cache: the empty prompt "" -> text encoder -> empty_prompt.safetensors "text"
    [L, text_dim] (or the recipe's empty_text_embedding file), for caption dropout.
"""

from __future__ import annotations

import json
import os

import torch

from ..text import build_text_encoder
from ..text.precomputed import PrecomputedTextEncoder
from .config import TrainConfig
from .data import (CacheItem, CachedClips, ClipEntry, cache_empty_text, cache_items, empty_text_path, preprocess,
                   read_captions, read_index)


def build_codecs(cfg: TrainConfig):
    """(video codec, audio codec) as the recipe names them."""
    from .. import codecs
    from ..codecs.demo import DemoAudioCodec, DemoVideoCodec

    if cfg.video_codec == "demo":
        video = DemoVideoCodec()
    else:
        video = codecs.load_video_codec(cfg.video_codec)
    if cfg.audio_codec == "demo":
        audio = DemoAudioCodec()
    else:
        if not cfg.audio_vocoder:
            raise ValueError("audio_codec names an MMAudio VAE file; also set audio_vocoder (its BigVGAN file)")
        audio = codecs.load_audio_codec(cfg.audio_codec, cfg.audio_vocoder)
    return video, audio


class LatentClipEncoder:
    """The trainer's ClipEncoder: codecs + text encoder + mouth landmarks."""

    def __init__(self, video_codec, audio_codec, text_encoder, codec_files: str = "", mouth_margin: float = 0.25):
        """codec_files: names of the codecs' weight files (part of the cache fingerprint)."""
        self.video_codec, self.audio_codec, self.text_encoder = video_codec, audio_codec, text_encoder
        self.mouth_margin = mouth_margin
        codecs = f"{type(video_codec).__name__}|{type(audio_codec).__name__}|{codec_files}"
        self.fingerprint = f"{codecs}|{text_encoder.fingerprint}|mouth-box-{mouth_margin}"

    def encode(self, clip_path: str, entry: ClipEntry) -> dict[str, torch.Tensor]:
        from ..io import read_clip

        clip = read_clip(clip_path)
        if clip.waveform is None:
            raise ValueError(f"{clip_path} has no audio stream; JoVA trains on clips with sound")
        return self.encode_clip(clip.frames, clip.waveform, clip.sample_rate, clip.fps, entry.prompt, clip_path,
                                entry.text_embedding)

    def clip_text(self, prompt: str, text_embedding: str = "", name: str = "clip") -> torch.Tensor:
        """[text_len, text_dim]: the prompt encoded, or with "precomputed" the clip's own file."""
        if isinstance(self.text_encoder, PrecomputedTextEncoder):
            if not text_embedding:
                raise ValueError(f"{name}: text_encoder is 'precomputed' but the captions name no text_embedding "
                                 "file for this clip")
            return self.text_encoder.encode_one(text_embedding)
        return self.text_encoder(prompt)[0]

    def encode_clip(self, frames, waveform, sample_rate: int, fps: float, prompt: str, name: str = "clip",
                    text_embedding: str = "") -> dict[str, torch.Tensor]:
        """frames [T, H, W, 3] 0..1, waveform [C, N] -> the cached tensors of one clip."""
        from ..mouth import extract_mouth_masks

        text = self.clip_text(prompt, text_embedding, name)  # first: its errors are cheap to hit
        frames = torch.as_tensor(frames).float()
        # The causal VAE keeps 1 + stride * k frames; drop the tail that would not fill a latent frame.
        geometry = self.video_codec.geometry
        frames = frames[: geometry.valid_num_frames(frames.shape[0])]
        with torch.no_grad():
            video = self.video_codec.encode(frames[None])[0]
            audio = self.audio_codec.encode(torch.as_tensor(waveform).float()[None], sample_rate)[0]
        mouth = extract_mouth_masks(frames, margin=self.mouth_margin, fps=fps, geometry=geometry)
        if not mouth.landmarks.tracks:
            raise ValueError(f"{name}: no face found in any frame, so there is no mouth to weight")
        return {
            "video": video,
            "audio": audio,
            "text": text,
            "mouth_mask": mouth.latent,  # [F, H/8, W/8], union over the faces
            "fps": torch.tensor([float(fps)]),
        }


SYNTHETIC_KEYS = {"clips", "seconds", "fps", "size", "first_seed", "head_motion"}


def synthetic_items(cfg: TrainConfig, encoder: LatentClipEncoder) -> list[CacheItem]:
    """Cache items for recipe.synthetic: talking-astronaut clips by seed, never written as MP4."""
    from . import synthetic

    spec = dict(cfg.synthetic)
    unknown = set(spec) - SYNTHETIC_KEYS
    if unknown or "clips" not in spec:
        raise ValueError(f"synthetic needs 'clips' and takes only {sorted(SYNTHETIC_KEYS)}; got {sorted(spec)}")
    wrong = [k for k, v in spec.items() if isinstance(v, bool) or not isinstance(v, (int, float))
             or (k in ("clips", "first_seed", "size") and v != int(v)) or v < 0]
    if wrong or spec["clips"] < 1:
        raise ValueError(f"synthetic: {', '.join(wrong) or 'clips'} must be a number >= 0 (clips, first_seed, size "
                         f"whole, clips >= 1); got {json.dumps(spec)}")
    first = int(spec.pop("first_seed", 0))
    count = int(spec.pop("clips"))
    items = []
    for seed in range(first, first + count):
        def make(seed=seed):
            clip = synthetic.make_talking_clip(seed, **spec)
            prompt = ClipEntry("", clip.video_caption, clip.audio_caption, clip.transcript).prompt
            return encoder.encode_clip(clip.frames, clip.waveform, clip.sample_rate, clip.fps, prompt, f"synthetic clip {seed}")

        stamp = json.dumps({"synthetic": seed, **spec}, sort_keys=True)
        items.append(CacheItem(os.path.join(cfg.cache_dir, f"synthetic_{seed:06d}.safetensors"), stamp, make))
    return items


def cached_dataset(cfg: TrainConfig, show_progress: bool = True, progress=None) -> CachedClips:
    """Cache the recipe's clips (cfg.data_dir, or cfg.synthetic; skipping those already
    cached) and return the dataset; with neither, the dataset the cache index lists."""
    if not cfg.data_dir and not cfg.synthetic:
        # A stale empty prompt from other encoders matters (and is refused) only when used.
        empty = empty_text_path(cfg.cache_dir)
        return CachedClips(read_index(cfg.cache_dir), empty if cfg.caption_dropout and os.path.isfile(empty) else "")
    from ..config import preset_config

    model_cfg = preset_config(cfg.preset, **cfg.model_overrides)
    if cfg.init_checkpoint:
        from ..checkpoint import read_metadata
        from ..config import JoVAConfig

        model_cfg = JoVAConfig.from_json(read_metadata(cfg.init_checkpoint)["jova_config"])
    if cfg.data_dir and not os.path.isdir(cfg.data_dir):
        raise FileNotFoundError(f"data_dir {cfg.data_dir} is not a folder; point it at the folder of clips and captions")
    entries = [] if cfg.synthetic else read_captions(os.path.join(cfg.data_dir, cfg.captions))
    named = [e.file for e in entries if e.text_embedding]
    if cfg.text_encoder == "precomputed" and cfg.synthetic:
        raise ValueError("synthetic clips have no precomputed text embeddings; use text_encoder 'demo' or 'umt5:<path>'")
    if named and cfg.text_encoder != "precomputed":
        raise ValueError(f"the captions name text_embedding files (e.g. for {named[0]!r}) but text_encoder is "
                         f"{cfg.text_encoder!r}; set text_encoder to 'precomputed' to train on them, or drop the field")
    video_codec, audio_codec = build_codecs(cfg)
    files = "|".join(os.path.basename(f) for f in (cfg.video_codec, cfg.audio_codec, cfg.audio_vocoder))
    encoder = LatentClipEncoder(video_codec, audio_codec, build_text_encoder(cfg.text_encoder, model_cfg.text_dim, model_cfg.text_len), files)
    if cfg.synthetic and cfg.data_dir:
        raise ValueError("the recipe sets both data_dir and synthetic; choose one data source")
    # The empty prompt first (its errors are cheap to hit); "precomputed" has it only from
    # the recipe's empty_text_embedding (required with caption_dropout, see TrainConfig).
    empty = ""
    source = cfg.empty_text_embedding
    if source and not os.path.isfile(source):
        raise FileNotFoundError(f"empty_text_embedding {source} does not exist; save the empty prompt's text "
                                "hidden states there (like the clips' text_embedding files)")
    if source or cfg.text_encoder != "precomputed":
        empty = cache_empty_text(cfg.cache_dir, encoder.fingerprint,
                                 lambda: encoder.clip_text("", source, "the empty prompt"), source)
    if cfg.synthetic:
        items = synthetic_items(cfg, encoder)
        paths, _ = cache_items(items, cfg.cache_dir, encoder.fingerprint, progress, show_progress)
    else:
        paths, _ = preprocess(entries, cfg.data_dir, cfg.cache_dir, encoder, progress=progress, show_progress=show_progress)
    return CachedClips(paths, empty)
