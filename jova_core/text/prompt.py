"""Prompt formats: how the three text boxes (video caption, audio caption, transcript)
become the one prompt a text encoder reads. The format is the text encoder's
(`TextEncoder.prompt_format`), as its model was trained with it:

    "sections" (JoVA / JavisDiT++ / the demo, umT5):
        <Video Caption>: ... <Audio Caption>: ... <Transcript>: ...
      Clips without speech omit the transcript section (as in the paper's data).
    "plain" (daVinci-MagiHuman, T5Gemma): one plain-text description, as its inference takes
      a free-text prompt: the non-empty boxes joined by spaces, the transcript in double
      quotes (the words spoken). Write everything in the video caption box to send your own
      text exactly.

format_prompt assembles a prompt; split_prompt is the one parser of the sections.
"""

from __future__ import annotations

import re

SECTIONS = ("Video Caption", "Audio Caption", "Transcript")
PROMPT_FORMATS = ("sections", "plain")
_SECTION_TAG = re.compile(r"<(Video Caption|Audio Caption|Transcript)>:")


def format_prompt(video_caption: str, audio_caption: str = "", transcript: str = "", style: str = "sections") -> str:
    """Assemble the three fields into one prompt of format `style` (PROMPT_FORMATS; whitespace
    collapsed; "sections": empty transcript omitted, "plain": empty fields omitted)."""
    if style not in PROMPT_FORMATS:
        raise ValueError(f"prompt format must be one of {list(PROMPT_FORMATS)}, got {style!r}")
    fields = {"video caption": video_caption, "audio caption": audio_caption, "transcript": transcript}
    for name, text in fields.items():
        # A tag inside a field would split the prompt at the wrong place for the encoder.
        tag = _SECTION_TAG.search(text)
        if tag:
            raise ValueError(f"the {name} contains the section tag {tag.group(0)!r}; write plain text in each box")
    video_caption, audio_caption, transcript = (" ".join(t.split()) for t in fields.values())
    if not (video_caption or audio_caption or transcript):
        raise ValueError("the prompt is empty: write at least a video caption or an audio caption")
    if style == "plain":
        return " ".join([t for t in (video_caption, audio_caption) if t] + ([f'"{transcript}"'] if transcript else []))
    prompt = f"<Video Caption>: {video_caption} <Audio Caption>: {audio_caption}"
    if transcript:
        prompt += f" <Transcript>: {transcript}"
    return prompt


def split_prompt(prompt: str) -> dict[str, str]:
    """Section name -> text. Text before any section tag counts as the video caption."""
    parts = _SECTION_TAG.split(prompt)
    sections = {name: "" for name in SECTIONS}
    sections["Video Caption"] = parts[0].strip()
    for name, text in zip(parts[1::2], parts[2::2]):
        sections[name] = (sections[name] + " " + text).strip()
    return sections
