"""JoVA's prompt format: one prompt carrying the video caption, audio caption and transcript.

    <Video Caption>: ... <Audio Caption>: ... <Transcript>: ...

Clips without speech omit the transcript section (as in the paper's data).
"""

from __future__ import annotations

import re

_SECTION_TAG = re.compile(r"<(Video Caption|Audio Caption|Transcript)>:")


def format_prompt(video_caption: str, audio_caption: str = "", transcript: str = "") -> str:
    """Assemble the three fields into one JoVA prompt (whitespace trimmed, empty transcript omitted)."""
    fields = {"video caption": video_caption, "audio caption": audio_caption, "transcript": transcript}
    for name, text in fields.items():
        # A tag inside a field would split the prompt at the wrong place for the encoder.
        tag = _SECTION_TAG.search(text)
        if tag:
            raise ValueError(f"the {name} contains the section tag {tag.group(0)!r}; write plain text in each box")
    video_caption, audio_caption, transcript = (" ".join(t.split()) for t in fields.values())
    if not (video_caption or audio_caption or transcript):
        raise ValueError("the prompt is empty: write at least a video caption or an audio caption")
    prompt = f"<Video Caption>: {video_caption} <Audio Caption>: {audio_caption}"
    if transcript:
        prompt += f" <Transcript>: {transcript}"
    return prompt
