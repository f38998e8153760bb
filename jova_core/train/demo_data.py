"""A ready training folder that needs no download: synthetic talking-astronaut clips
(MP4 with sound, see jova_core.train.synthetic) and a captions.json listing
{file, video_caption, audio_caption, transcript} for each."""

from __future__ import annotations

import json
import os
from typing import Callable

CAPTIONS_FILE = "captions.json"


def write_demo_data(
    out: str, clips: int, seconds: float, seed: int = 0, size: int = 128, fps: float = 24.0, sample_rate: int = 16000,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Write clips seed .. seed + clips - 1 and captions.json into `out`; the clip file names.

    Existing files are never overwritten: FileExistsError before anything is written if
    one is in the way."""
    from ..io import write_mp4
    from .synthetic import make_talking_clip

    names = [f"clip_{seed + i:05d}.mp4" for i in range(clips)]
    in_the_way = [n for n in names + [CAPTIONS_FILE] if os.path.exists(os.path.join(out, n))]
    if in_the_way:
        raise FileExistsError(f"{out} already holds {', '.join(in_the_way[:3])}{' ...' if len(in_the_way) > 3 else ''}: "
                              "choose another --out (or --seed), nothing was written")
    os.makedirs(out, exist_ok=True)
    captions = []
    for i, name in enumerate(names):
        clip = make_talking_clip(seed + i, seconds=seconds, fps=fps, size=size, sample_rate=sample_rate)
        write_mp4(os.path.join(out, name), clip.frames, clip.fps, clip.waveform, clip.sample_rate)
        captions.append(
            {"file": name, "video_caption": clip.video_caption, "audio_caption": clip.audio_caption, "transcript": clip.transcript}
        )
        if progress is not None:
            progress(i + 1, clips)
    with open(os.path.join(out, CAPTIONS_FILE), "x", encoding="utf-8") as f:
        json.dump(captions, f, indent=1)
    return names
