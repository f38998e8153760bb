"""The ffmpeg binary that imageio-ffmpeg ships: running it and reading what it reports about a file.

imageio-ffmpeg ships no ffprobe, so stream facts are parsed from `ffmpeg -i`'s stream lines.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field

import imageio_ffmpeg


@dataclass
class StreamInfo:
    kind: str  # "video" | "audio" | other ffmpeg stream type, lower case
    codec: str
    pix_fmt: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channels: int | None = None


@dataclass
class MediaInfo:
    duration: float | None
    streams: list[StreamInfo] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[StreamInfo]:
        return [s for s in self.streams if s.kind == kind]


_STREAM = re.compile(r"^\s*Stream #\d+:\d+\S*: (\w+): (\w+)(.*)$")
_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_CHANNEL_LAYOUTS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], what: str) -> bytes:
    """Run ffmpeg with `args`; stdout bytes, or an error that quotes ffmpeg's last lines."""
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args], capture_output=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.decode(errors="replace").strip().splitlines()[-6:])
        raise RuntimeError(f"ffmpeg failed while {what}:\n{tail}")
    return result.stdout


def _parse_stream(kind: str, codec: str, rest: str) -> StreamInfo:
    info = StreamInfo(kind=kind.lower(), codec=codec)
    parts = [p.strip() for p in re.split(r",(?![^(]*\))", rest)]
    if info.kind == "video":
        for part in parts:
            size = re.match(r"^(\d+)x(\d+)", part)
            if size and info.width is None:
                info.width, info.height = int(size.group(1)), int(size.group(2))
            fps = re.match(r"^(\d+(?:\.\d+)?)(k?) fps", part)
            if fps:
                info.fps = float(fps.group(1)) * (1000 if fps.group(2) else 1)
        if len(parts) > 1:
            info.pix_fmt = parts[1].split("(")[0].strip() or None
    elif info.kind == "audio":
        for part in parts:
            rate = re.match(r"^(\d+) Hz", part)
            if rate:
                info.sample_rate = int(rate.group(1))
            layout = part.split("(")[0].strip()
            if layout in _CHANNEL_LAYOUTS:
                info.channels = _CHANNEL_LAYOUTS[layout]
            count = re.match(r"^(\d+) channels", part)
            if count:
                info.channels = int(count.group(1))
    return info


def probe_media(path: str) -> MediaInfo:
    """Container duration and per-stream codec/size/fps/sample rate/channels of a media file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no media file at {path!r}")
    # Without an output ffmpeg exits 1 after printing the input description; that is expected.
    stderr = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path], capture_output=True).stderr
    text = stderr.decode(errors="replace")
    if "moov atom not found" in text:
        raise ValueError(f"{path} is a truncated or unfinished MP4 (its index, the moov atom, is missing); "
                         "export or download it again")
    if "Invalid data found" in text or "Stream #" not in text:
        raise ValueError(f"{path} is not a media file ffmpeg can read")
    duration = None
    match = _DURATION.search(text)
    if match:
        h, m, s = match.groups()
        duration = int(h) * 3600 + int(m) * 60 + float(s)
    streams = []
    for line in text.splitlines():
        stream = _STREAM.match(line)
        if stream:
            streams.append(_parse_stream(*stream.groups()))
    return MediaInfo(duration=duration, streams=streams)
