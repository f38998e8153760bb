"""jova_core.files: outputs appear whole or not at all, with normal permissions; killed
writes leave nothing behind for long; unwritable targets fail before any long work."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import save_file

from jova_core.checkpoint import convert_checkpoint, load_native, save_transformer
from jova_core.cli import main
from jova_core.config import preset_config
from jova_core.files import NotWritable, PARTIAL_PREFIX, atomic_output, check_writable, clean_stale_partials
from jova_core.model.transformer import JoVATransformer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def unwritable_folder(tmp_path):
    """A folder this user cannot create files in: a read-only one, or (root ignores
    permissions) /proc, where nobody can."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        probe = folder / "probe"
        probe.touch()
        probe.unlink()
    except OSError:
        yield str(folder)
    else:
        if not os.path.isdir("/proc"):
            pytest.skip("no folder this user cannot write")
        yield "/proc"
    folder.chmod(0o755)


def partials(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(PARTIAL_PREFIX))


def test_output_appears_whole_with_open_permissions(tmp_path):
    path = str(tmp_path / "out.safetensors")
    umask = os.umask(0o022)
    try:
        with atomic_output(path) as partial:
            assert os.path.dirname(partial) == str(tmp_path) and os.path.basename(partial).startswith(PARTIAL_PREFIX)
            assert partial.endswith(".safetensors")  # writers that choose a format by extension still can
            save_file({"a": torch.arange(4.0)}, partial)  # safetensors itself writes 0600 files
            assert not os.path.exists(path)
        save_transformer(JoVATransformer(preset_config("tiny")), str(tmp_path / "jova.safetensors"))
    finally:
        os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.stat(tmp_path / "jova.safetensors").st_mode & 0o777 == 0o644
    assert partials(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failed_write_leaves_the_old_file_and_no_partial(tmp_path, error):
    path = tmp_path / "out.bin"
    path.write_bytes(b"the user's file")
    with pytest.raises(error):
        with atomic_output(str(path), overwrite=True) as partial:
            with open(partial, "wb") as f:
                f.write(b"half")
            raise error("stopped")
    assert path.read_bytes() == b"the user's file"
    assert partials(tmp_path) == []


def test_never_replaces_unless_asked_even_a_file_that_appears_meanwhile(tmp_path):
    path = tmp_path / "out.bin"
    with pytest.raises(FileExistsError, match=r"appeared while writing"):
        with atomic_output(str(path)) as partial:
            with open(partial, "wb") as f:
                f.write(b"ours")
            path.write_bytes(b"someone else's")
    assert path.read_bytes() == b"someone else's" and partials(tmp_path) == []
    with pytest.raises(FileExistsError, match=r"out\.bin exists; choose another name or ask to overwrite it"):
        with atomic_output(str(path)):
            pytest.fail("the block must not run")


WRITER = textwrap.dedent("""
    import sys, time
    from jova_core.files import atomic_output
    with atomic_output(sys.argv[1]) as partial:
        open(partial, "wb").write(b"half")
        print("writing", flush=True)
        time.sleep(600)
""")


def start_writer(path):
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    return child


def test_partials_of_killed_writers_are_cleaned_by_the_next_write(tmp_path):
    running = start_writer(tmp_path / "b.bin")
    try:
        alive = partials(tmp_path)[0]
        killed = start_writer(tmp_path / "a.bin")
        killed.kill()
        killed.wait()
        stale = next(n for n in partials(tmp_path) if n.startswith(f"{PARTIAL_PREFIX}{killed.pid}@"))
        assert sorted(partials(tmp_path)) == sorted([alive, stale])
        # Another host's partial: its process cannot be checked from here, so it stays.
        foreign = f"{PARTIAL_PREFIX}{killed.pid}@otherhost-0a1b2c3d-c.bin"
        (tmp_path / foreign).write_bytes(b"")
        with atomic_output(str(tmp_path / "c.bin")) as partial:
            open(partial, "wb").write(b"whole")
        assert partials(tmp_path) == sorted([alive, foreign])
        assert (tmp_path / "c.bin").read_bytes() == b"whole"
    finally:
        running.kill()
        running.wait()
    assert clean_stale_partials(str(tmp_path)) == [str(tmp_path / alive)]


def test_check_writable_fails_before_the_work(tmp_path, unwritable_folder):
    source = tmp_path / "source.safetensors"
    source.write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match=r"the folder .*missing does not exist; create it first"):
        check_writable(str(tmp_path / "missing" / "out.safetensors"))
    with pytest.raises(NotWritable, match="is not writable") as err:
        check_writable(os.path.join(unwritable_folder, "out.safetensors"))
    assert isinstance(err.value, PermissionError) and isinstance(err.value, ValueError)
    with pytest.raises(NotWritable, match="it is a folder"):
        check_writable(str(tmp_path), overwrite=True)
    os.link(source, tmp_path / "hardlink.safetensors")
    for same in (source, tmp_path / "hardlink.safetensors", tmp_path / "." / "source.safetensors"):
        with pytest.raises(ValueError, match="is the source being read"):
            check_writable(str(same), overwrite=True, sources=[str(source)])
    check_writable(str(tmp_path / "new.safetensors"), sources=[str(source)])
    assert partials(tmp_path) == []


@pytest.fixture
def wan_file(tmp_path):
    from convert_fixtures import tiny_diffusers_wan

    path = tmp_path / "wan.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_diffusers_wan(seed=1).state_dict().items()}, str(path))
    return path


def test_convert_refuses_to_replace_its_own_source(wan_file, capsys):
    before = wan_file.read_bytes()
    argv = ["convert", "--format", "wan2.1", "--src", str(wan_file), "--out", str(wan_file), "--overwrite"]
    assert main(argv) == 1
    assert "is the source being read" in capsys.readouterr().err
    with pytest.raises(ValueError, match="is the source being read"):
        convert_checkpoint(str(wan_file.parent), str(wan_file), "wan2.1", overwrite=True)  # its folder, too
    assert wan_file.read_bytes() == before


def test_convert_into_missing_or_read_only_folder_fails_before_reading(wan_file, tmp_path, unwritable_folder,
                                                                      monkeypatch, capsys):
    import jova_core.checkpoint

    def no_reading(*args, **kwargs):
        raise AssertionError("a tensor was read before the output was checked")

    monkeypatch.setattr(jova_core.checkpoint, "read_state_dict", no_reading)
    missing = str(tmp_path / "missing" / "jova.safetensors")
    assert main(["convert", "--format", "wan2.1", "--src", str(wan_file), "--out", missing]) == 1
    assert "does not exist; create it first" in capsys.readouterr().err
    read_only = os.path.join(unwritable_folder, "jova.safetensors")
    assert main(["init-from-wan", "--src", str(wan_file), "--out", read_only]) == 1
    assert "is not writable" in capsys.readouterr().err
    assert not os.path.exists(read_only)

    monkeypatch.undo()
    out = str(tmp_path / "jova.safetensors")
    assert main(["init-from-wan", "--src", str(wan_file), "--out", out]) == 0
    assert load_native(out).config.num_layers == 2 and partials(tmp_path) == []

