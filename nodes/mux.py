"""JoVA Mux: IMAGE frames + AUDIO + fps -> core VIDEO, optionally saved as an MP4 (never overwriting)."""

from __future__ import annotations

import os
import re
from fractions import Fraction

import folder_paths
from comfy_api.latest import InputImpl, Types, io, ui

from ..jova_core.io import write_mp4_chunks
from .types import CATEGORY

MUX_CHUNK_FRAMES = 32  # frames converted to 8 bits and piped to ffmpeg at a time


def trim_audio(audio: dict, seconds: float) -> dict:
    """The audio cut to the video's length (what core SaveVideo also does)."""
    rate = int(audio["sample_rate"])
    return {"waveform": audio["waveform"][..., : round(seconds * rate)], "sample_rate": rate}


def next_free_path(output_dir: str, prefix: str, extension: str = ".mp4") -> tuple[str, str, str]:
    """(full path, subfolder, file name) of the first unused '<prefix>_NNNNN<ext>' in the output folder."""
    prefix = prefix.strip().replace("\\", "/") or "JoVA/jova"
    if os.path.isabs(prefix) or ".." in prefix.split("/"):
        raise ValueError(f"filename_prefix {prefix!r} must stay inside the output folder (no absolute path, no '..')")
    subfolder, stem = os.path.split(prefix)
    if not re.fullmatch(r"[\w .\-]+", stem):
        raise ValueError(f"filename_prefix {prefix!r}: use letters, digits, spaces, '.', '_' or '-' in the name")
    folder = os.path.join(output_dir, subfolder)
    os.makedirs(folder, exist_ok=True)
    counter = 1
    while True:
        name = f"{stem}_{counter:05d}{extension}"
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            return path, subfolder, name
        counter += 1


class JoVAMux(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVAMux",
            display_name="JoVA Mux",
            category=CATEGORY,
            description="Frames + sound -> a core VIDEO (audio cut to the video's length); optionally saves an MP4 (h264 + aac) to the output folder, never overwriting.",
            is_output_node=True,
            inputs=[
                io.Image.Input("images", tooltip="The frames, e.g. JoVA Decode's images."),
                io.Float.Input("fps", default=16.0, min=1.0, max=120.0, step=1.0,
                               tooltip="Frames per second; connect JoVA Decode's fps so sound and picture stay in step."),
                io.Audio.Input("audio", optional=True, tooltip="The sound; cut to the video's length. Without it the video is silent."),
                io.Boolean.Input("save_mp4", default=True,
                                 tooltip="Also write an MP4 (H.264 + AAC) to ComfyUI's output folder; an existing file is never replaced."),
                io.String.Input("filename_prefix", default="JoVA/jova",
                                tooltip="Subfolder/name in the output folder; _00001, _00002, ... and .mp4 are added."),
            ],
            outputs=[io.Video.Output("video", tooltip="A core VIDEO (e.g. for core Save Video).")],
        )

    @classmethod
    def execute(cls, images, fps: float, save_mp4: bool, filename_prefix: str, audio=None) -> io.NodeOutput:
        seconds = images.shape[0] / fps
        if audio is not None:
            audio = trim_audio(audio, seconds)
        video = InputImpl.VideoFromComponents(
            Types.VideoComponents(images=images, frame_rate=Fraction(fps).limit_denominator(1001), audio=audio)
        )
        if not save_mp4:
            return io.NodeOutput(video)
        path, subfolder, name = next_free_path(folder_paths.get_output_directory(), filename_prefix)
        # Refuses an existing file, so a name taken meanwhile fails instead of overwriting. Frames go
        # to ffmpeg a chunk at a time, so no whole-clip 8-bit copy is made beside the IMAGE.
        write_mp4_chunks(path, images.split(MUX_CHUNK_FRAMES), images.shape[0], fps,
                         None if audio is None else [audio["waveform"][0]],
                         None if audio is None else audio["sample_rate"])
        saved = ui.SavedResult(name, subfolder, io.FolderType.output)
        return io.NodeOutput(video, ui=ui.PreviewVideo([saved]))
