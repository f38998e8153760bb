"""Training data: the captions file, the resumable preprocessing cache, the cached dataset.

A dataset is a folder of clips (MP4 with sound) plus a captions file naming them:
  JSON: a list of {"file", "video_caption", "audio_caption", "transcript"} objects, or an
        object mapping each file name to {"video_caption", "audio_caption", "transcript"};
  CSV:  a header row with those column names.
Optional per clip: "text_embedding", a safetensors file (relative to the clip folder)
holding the prompt's text hidden states, read when the recipe's text_encoder is
"precomputed" (see jova_core.text.precomputed).
Preprocessing turns each clip into one safetensors file in the cache folder holding
everything a training step needs (video latents, audio latents, text embeddings, latent
mouth mask). A clip whose cache file exists and was made from the same source file by the
same encoder is skipped, so an interrupted run continues where it stopped. The cache also
holds the text encoder's encoding of the empty prompt (empty_prompt.safetensors), which
caption dropout trains with.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, replace
from typing import Callable, Protocol

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..files import atomic_output
from ..text import format_prompt

CAPTION_FIELDS = ("video_caption", "audio_caption", "transcript")


@dataclass(frozen=True)
class ClipEntry:
    file: str
    video_caption: str
    audio_caption: str = ""
    transcript: str = ""
    text_embedding: str = ""  # precomputed text hidden states (safetensors), or ""

    @property
    def prompt(self) -> str:
        return format_prompt(self.video_caption, self.audio_caption, self.transcript)


def _entry(file: str, fields: dict, source: str) -> ClipEntry:
    if not file:
        raise ValueError(f"{source}: an entry has no 'file' naming its clip")
    if not str(fields.get("video_caption", "")).strip():
        raise ValueError(f"{source}: clip {file!r} has no video_caption")
    return ClipEntry(file, *(str(fields.get(k) or "") for k in CAPTION_FIELDS),
                     text_embedding=str(fields.get("text_embedding") or "").strip())


def read_captions(path: str) -> list[ClipEntry]:
    """The clips and captions listed in a JSON or CSV captions file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"captions file {path} not found; write a JSON or CSV listing each clip's captions")
    if path.lower().endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        entries = [_entry(row.get("file", ""), row, path) for row in rows]
    else:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})") from None
        if isinstance(data, dict) and isinstance(data.get("clips"), list):
            data = data["clips"]
        if isinstance(data, dict):  # file name -> captions
            items = list(data.items())
        elif isinstance(data, list):  # captions with their "file"
            items = [(item.get("file", "") if isinstance(item, dict) else "", item) for item in data]
        else:
            items = [("", data)]
        if not all(isinstance(fields, dict) for _, fields in items):
            raise ValueError(f"{path}: expected a JSON list of clips {{\"file\": ..., \"video_caption\": ...}} or an "
                             "object mapping each file name to its captions")
        entries = [_entry(str(name or ""), fields, path) for name, fields in items]
    if not entries:
        raise ValueError(f"{path} lists no clips")
    return entries


class ClipEncoder(Protocol):
    """Turns one clip into the tensors a training step needs."""

    fingerprint: str  # changes whenever the tensors it makes would change

    def encode(self, clip_path: str, entry: ClipEntry) -> dict[str, torch.Tensor]: ...


def cache_path(cache_dir: str, entry: ClipEntry) -> str:
    stem = os.path.splitext(entry.file)[0].replace("/", "__").replace("\\", "__")
    return os.path.join(cache_dir, stem + ".safetensors")


def _source_stamp(path: str, entry: ClipEntry) -> str:
    st = os.stat(path)
    stamp = [st.st_size, int(st.st_mtime), entry.prompt]
    if entry.text_embedding:  # a re-encoded prompt redoes the clip
        emb = os.stat(entry.text_embedding)
        stamp += [emb.st_size, emb.st_mtime_ns]
    return json.dumps(stamp)


def _is_current(path: str, fingerprint: str, stamp: str) -> bool:
    if not os.path.exists(path):
        return False
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
    except Exception:  # a truncated file from a killed run: redo it
        return False
    return meta.get("encoder") == fingerprint and meta.get("source") == stamp


@dataclass(frozen=True)
class CacheItem:
    """One thing to cache: its cache file, a stamp of its source (redo when it changes),
    and how to make its tensors."""

    path: str
    stamp: str
    make: Callable[[], dict[str, torch.Tensor]]


def cache_item(item: CacheItem, fingerprint: str) -> bool:
    """Write the item's cache file unless it is current; True when it was made now."""
    if _is_current(item.path, fingerprint, item.stamp):
        return False
    tensors = {k: v.detach().contiguous().cpu() for k, v in item.make().items()}
    with atomic_output(item.path, overwrite=True) as partial:  # a killed run never leaves a half file
        save_file(tensors, partial, metadata={"encoder": fingerprint, "source": item.stamp})
    return True


def cache_items(
    items: list[CacheItem],
    cache_dir: str,
    fingerprint: str,
    progress: Callable[[int, int], None] | None = None,
    show_progress: bool = True,
) -> tuple[list[str], int]:
    """Write every item whose cache file is missing, stale or broken; returns (cache file
    per item, how many were made this time) and writes the cache index.

    `progress(done, total)` is called after each item; raise from it to interrupt (what
    was finished stays cached).
    """
    from tqdm.auto import tqdm

    os.makedirs(cache_dir, exist_ok=True)
    made = 0
    for i, item in enumerate(tqdm(items, desc="caching clips", disable=not show_progress)):
        made += cache_item(item, fingerprint)
        if progress is not None:
            progress(i + 1, len(items))
    paths = [item.path for item in items]
    write_index(cache_dir, paths)
    return paths, made


def preprocess(
    entries: list[ClipEntry],
    data_dir: str,
    cache_dir: str,
    encoder: ClipEncoder,
    progress: Callable[[int, int], None] | None = None,
    show_progress: bool = True,
) -> tuple[list[str], int]:
    """Cache every clip of a folder; returns (cache file per entry, how many were encoded now)."""
    items = []
    for entry in entries:
        clip = os.path.join(data_dir, entry.file)
        if not os.path.isfile(clip):
            raise FileNotFoundError(f"clip {clip} (listed in the captions) does not exist")
        if entry.text_embedding:
            entry = replace(entry, text_embedding=os.path.join(data_dir, entry.text_embedding))
            if not os.path.isfile(entry.text_embedding):
                raise FileNotFoundError(f"text_embedding {entry.text_embedding} (listed for {entry.file}) does not exist")
        make = lambda clip=clip, entry=entry: encoder.encode(clip, entry)  # noqa: E731 (bind per entry)
        items.append(CacheItem(cache_path(cache_dir, entry), _source_stamp(clip, entry), make))
    return cache_items(items, cache_dir, encoder.fingerprint, progress, show_progress)


EMPTY_TEXT_NAME = "empty_prompt.safetensors"


def empty_text_path(cache_dir: str) -> str:
    return os.path.join(cache_dir, EMPTY_TEXT_NAME)


def cache_empty_text(
    cache_dir: str, fingerprint: str, make: Callable[[], torch.Tensor], source_file: str = ""
) -> str:
    """Cache the text encoder's encoding of the empty prompt "" ("text" [L, D]) once, next
    to the clips and made by the same encoders (`fingerprint`): caption dropout trains with
    it because guidance contrasts with it at inference. source_file: the precomputed file
    it is read from, if any (an edit to it redoes it). Returns the cache file."""
    stamp = ["empty prompt"]
    if source_file:
        st = os.stat(source_file)
        stamp += [os.path.abspath(source_file), st.st_size, st.st_mtime_ns]
    os.makedirs(cache_dir, exist_ok=True)
    path = empty_text_path(cache_dir)
    cache_item(CacheItem(path, json.dumps(stamp), lambda: {"text": make()}), fingerprint)
    return path


INDEX_NAME = "index.json"


def write_index(cache_dir: str, paths: list[str]) -> None:
    """Record which cache files make up the dataset (so training can run from the cache alone)."""
    index = os.path.join(cache_dir, INDEX_NAME)
    with atomic_output(index, overwrite=True) as partial, open(partial, "w", encoding="utf-8") as f:
        json.dump([os.path.relpath(p, cache_dir) for p in paths], f, indent=0)


def read_index(cache_dir: str) -> list[str]:
    path = os.path.join(cache_dir, INDEX_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: set data_dir to a folder of clips so they can be cached first")
    with open(path, encoding="utf-8") as f:
        return [os.path.join(cache_dir, p) for p in json.load(f)]


# Per cached tensor, its time axis: clips of one batch are cut to the batch's shortest
# there (cutting each modality's tail keeps picture and sound aligned, both start at 0).
TIME_AXES = {"video": 1, "mouth_mask": 0, "audio": -1}


class CachedClips(torch.utils.data.Dataset):
    """The cached tensors of each clip; items are dicts of tensors without a batch axis.

    empty_text_file: the cached encoding of the empty prompt (cache_empty_text), which
    batches then carry as "empty_text" [L, D] (one for the whole batch) for caption dropout.
    """

    def __init__(self, paths: list[str], empty_text_file: str = ""):
        if not paths:
            raise ValueError("no cached clips to train on")
        self.paths = paths
        self.empty_text = _read_empty_text(empty_text_file, paths[0]) if empty_text_file else None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        with safe_open(self.paths[index], framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}

    def _length(self, index: int, key: str) -> int:
        with safe_open(self.paths[index], framework="pt") as f:
            return f.get_slice(key).get_shape()[TIME_AXES[key]]

    def batch(self, indices: list[int], global_batch: list[int] | None = None) -> dict[str, torch.Tensor]:
        """The items stacked; clips of different lengths are cut to the shortest of
        `global_batch` (default: these indices; in multi-process training, the whole batch
        of the step, so that the result does not depend on the number of processes)."""
        items = [self[i] for i in indices]
        out = {}
        for key in items[0]:
            tensors = [it[key] for it in items]
            if key in TIME_AXES:
                shortest = min(t.shape[TIME_AXES[key]] for t in tensors)
                if global_batch is not None:
                    shortest = min(self._length(i, key) for i in global_batch)
                tensors = [t.narrow(TIME_AXES[key], 0, shortest) for t in tensors]
            shapes = {tuple(t.shape) for t in tensors}
            if len(shapes) > 1:
                raise ValueError(
                    f"cached {key!r} differ in shape {sorted(shapes)}; clips in one batch must share their frame "
                    "size and frame rate (use batch_size 1 or make the clips uniform)"
                )
            out[key] = torch.stack(tensors)
        if self.empty_text is not None:
            out["empty_text"] = self.empty_text
        return out

    def check_batchable(self) -> str:
        """Before training with batches of several clips: refuse clips that cannot share a
        batch (frame size, frame rate, text shape differ), reading only the files' headers
        and frame rates. Returns a note when the lengths differ (batches are then cut to
        their shortest clip), else ""."""
        first: dict[str, tuple] = {}
        lengths: dict[str, set[int]] = {}
        for path in self.paths:
            with safe_open(path, framework="pt") as f:
                found = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
                if "fps" in found:
                    found["fps"] = tuple(f.get_tensor("fps").tolist())
            for key, shape in found.items():
                axis = TIME_AXES.get(key)
                if axis is not None:
                    lengths.setdefault(key, set()).add(shape[axis])
                    shape = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
                if key not in first:
                    first[key] = (shape, path)
                elif first[key][0] != shape:
                    what = "frame rate" if key == "fps" else f"the size of their cached {key!r} (length aside)"
                    raise ValueError(
                        f"the cached clips differ in {what}: {list(first[key][0])} in {first[key][1]}, {list(shape)} "
                        f"in {path}; clips trained in one batch must share it: make the clips alike or set batch_size 1"
                    )
        differ = {key: (min(v), max(v)) for key, v in lengths.items() if len(v) > 1}
        if not differ:
            return ""
        spans = ", ".join(f"{key} {low}..{high}" for key, (low, high) in differ.items())
        return f"the clips differ in length (latent frames: {spans}); each batch is cut to its shortest clip"


def _read_empty_text(path: str, clip_path: str) -> torch.Tensor:
    """The cached empty prompt [L, D], checked to come from the clip's encoders and to match its text's shape."""
    with safe_open(path, framework="pt") as f:
        made_by = (f.metadata() or {}).get("encoder")
        empty = f.get_tensor("text")
    with safe_open(clip_path, framework="pt") as f:
        clip_by = (f.metadata() or {}).get("encoder")
        clip_shape = tuple(f.get_slice("text").get_shape()) if "text" in f.keys() else None
    if made_by != clip_by:
        raise ValueError(f"{path} was encoded by {made_by!r} but the clips by {clip_by!r}; cache the clips again "
                         "(set data_dir or synthetic in the recipe) so both come from the same text encoder")
    if clip_shape is not None and tuple(empty.shape) != clip_shape:
        raise ValueError(f"{path} holds the empty prompt as {list(empty.shape)} but the clips' text is {list(clip_shape)}")
    return empty
