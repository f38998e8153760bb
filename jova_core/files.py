"""Writing output files so that nothing a user made is lost or left half-written.

    check_writable(path, overwrite=False, sources=())   before any long work
    with atomic_output(path, overwrite) as partial:     write `partial`; on success it
        save_file(tensors, partial)                     becomes `path` in one step

The partial is a hidden file in the target's folder (so the final rename never crosses
file systems) whose name carries this process's id and host; it is removed on any error,
KeyboardInterrupt included, and partials of processes that no longer run (a killed
write) are removed by the next write into that folder (not on Windows, where a
process cannot be probed without a risk of ending it). The finished file gets the
permissions a plain open() would give it (some writers, e.g. safetensors, make 0600
files).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from contextlib import contextmanager
from typing import Iterable, Iterator

PARTIAL_PREFIX = ".partial-"
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24] or "host"
# .partial-<pid>@<host>-<random>-<target name>
_PARTIAL_NAME = re.compile(re.escape(PARTIAL_PREFIX) + r"(\d+)@([A-Za-z0-9]+)-")
# When each folder was last cleaned: a cache writes thousands of files into one folder.
_CLEANED_AT: dict[str, float] = {}
_CLEAN_EVERY_S = 60.0


class NotWritable(PermissionError, ValueError):
    """The output cannot be written there (a read-only folder, or a folder in its place).
    Also a ValueError, so callers that report bad arguments report this one too."""


def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_writable(path: str, overwrite: bool = False, sources: Iterable[str] = ()) -> None:
    """Fail now, with a one-line message, where writing `path` later would fail or destroy
    something: its folder is missing or not writable, it is one of `sources` (the files
    the output is made from), or it exists and `overwrite` is False."""
    folder = _folder(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist; create it first")
    if os.path.isdir(path):
        raise NotWritable(f"cannot write {path}: it is a folder; name a file inside it")
    for source in sources:
        if _same_file(source, path):
            raise ValueError(f"{path} is the source being read ({source}); write the result to another file")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; choose another name or ask to overwrite it (overwrite=True, --overwrite)")
    try:  # the only reliable test (permissions, read-only mounts, ACLs) is to try
        with partial_file(folder, os.path.basename(path)):
            pass
    except OSError as err:
        raise NotWritable(f"cannot write {path}: the folder {folder} is not writable ({err.strerror})") from None


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there: never clean
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def clean_stale_partials(folder: str) -> list[str]:
    """Remove the partials in `folder` left by processes of this host that no longer run;
    returns their paths. Partials of running processes and of other hosts stay."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        found = _PARTIAL_NAME.match(name)
        if found and found.group(2) == _HOST and not _alive(int(found.group(1))):
            try:
                os.remove(os.path.join(folder, name))
                removed.append(os.path.join(folder, name))
            except OSError:  # gone meanwhile, or not ours to remove
                pass
    return removed


@contextmanager
def partial_file(folder: str, name: str) -> Iterator[str]:
    """A new, empty hidden file in `folder` (created with open()'s permissions), removed
    when the block ends however it ends. `name` (the target's) keeps its extension last,
    for writers that choose a format by it."""
    partial = os.path.join(folder, f"{PARTIAL_PREFIX}{os.getpid()}@{_HOST}-{secrets.token_hex(4)}-{name[-96:]}")
    os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # the umask applies, as for open()
    try:
        yield partial
    finally:
        try:
            os.remove(partial)
        except FileNotFoundError:
            pass


@contextmanager
def atomic_output(path: str, overwrite: bool = False, sources: Iterable[str] = ()) -> Iterator[str]:
    """Yield a partial file to write; when the block succeeds it replaces `path` at once.
    Checks `path` first (see check_writable) and never replaces a file that appeared
    meanwhile unless `overwrite`."""
    check_writable(path, overwrite, sources)
    folder = _folder(path)
    if time.monotonic() - _CLEANED_AT.get(folder, -_CLEAN_EVERY_S) >= _CLEAN_EVERY_S:
        clean_stale_partials(folder)
        _CLEANED_AT[folder] = time.monotonic()
    with partial_file(folder, os.path.basename(path)) as partial:
        mode = os.stat(partial).st_mode & 0o777
        yield partial
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} appeared while writing; choose another name or ask to overwrite it")
        os.chmod(partial, mode)  # writers that recreate the file (safetensors: 0600) lose open()'s mode
        with open(partial, "r+b") as f:
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(partial, path)
