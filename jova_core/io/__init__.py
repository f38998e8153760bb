"""Audio/video file I/O through the ffmpeg binary imageio-ffmpeg ships.

    write_mp4(path, frames, fps, waveform=None, sample_rate=None, overwrite=False, crf=18) -> path
    write_mp4_chunks(path, frame_chunks, num_frames, fps, waveform_chunks=None, sample_rate=None, ...) -> path
        (the same from consecutive chunks, piped as they come: a long clip is never held whole)
    read_clip(path, fps=None, sample_rate=None, start=0.0, duration=None)
        -> Clip(frames [T,H,W,3] float 0..1, waveform [C,N] or None, fps, sample_rate)  (unpacks as a tuple)
    read_audio(path, sample_rate=None, start=0.0, duration=None) -> (waveform [C,N], sample_rate)
    probe_media(path) -> MediaInfo(duration, streams=[StreamInfo(kind, codec, ...)])
    to_uint8_frames(frames) -> uint8 [T,H,W,3]  (float 0..1 or uint8, torch or numpy)
"""

from .clip import Clip
from .ffmpeg import MediaInfo, StreamInfo, probe_media
from .frames import to_uint8_frames
from .mp4 import write_mp4, write_mp4_chunks
from .read import read_audio, read_clip

__all__ = ["Clip", "MediaInfo", "StreamInfo", "probe_media", "read_audio", "read_clip", "to_uint8_frames", "write_mp4",
           "write_mp4_chunks"]
