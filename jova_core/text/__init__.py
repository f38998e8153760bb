"""Text: JoVA's prompt format and the text encoders that turn prompts into features.

    format_prompt(video_caption, audio_caption="", transcript="") -> prompt   (prompt.py)
    DemoTextEncoder(text_dim, text_len)      the CPU demo's hash encoder      (demo.py)
    UMT5TextEncoder.load(path, ...)          umT5-XXL as Wan2.1 uses it       (umt5.py;
                                             needs transformers, imported only there)
"""

from .prompt import format_prompt

__all__ = ["format_prompt"]
