"""transforms/lake/commit.py: a file or a folder appears whole, in one rename, or not at all; locks make
a second process wait."""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.transforms.lake.conftest import assert_second_process_waits, python, wait_for
from transforms.lake.commit import commit_file, commit_folder, exclusive, remove_tree, sha256_file

OLD = {"a": "old a", "b": "old b"}
NEW = {"a": "new a", "c": "new c"}


def contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def fill_with(files: dict[str, str]):
    def fill(stage: Path) -> int:
        for name, text in files.items():
            (stage / name).write_text(text)
        return len(files)
    return fill


def strays(parent: Path, final: Path) -> list[str]:
    """Everything beside `final` that is not `final`."""
    return sorted(p.name for p in parent.iterdir() if p != final)


@pytest.fixture()
def old_folder(tmp_path) -> Path:
    final = tmp_path / "zone" / "month=2026-09"
    final.mkdir(parents=True)
    for name, text in OLD.items():
        (final / name).write_text(text)
    return final


# ---------------------------------------------------------------- commit_file

def test_commit_file_moves_a_whole_file_into_view(tmp_path):
    tmp = tmp_path / "work" / ".part.tmp"
    tmp.parent.mkdir()
    tmp.write_bytes(b"rows")
    final = tmp_path / "zone" / "event_date=2026-11-21" / "part.parquet"   # folders made as needed
    commit_file(tmp, final)
    assert final.read_bytes() == b"rows"
    assert not tmp.exists()


def test_commit_file_replaces_by_rename_so_an_open_reader_keeps_the_old_bytes(tmp_path):
    final = tmp_path / "part.parquet"
    final.write_bytes(b"old")
    with open(final, "rb") as reader:
        tmp = tmp_path / ".part.tmp"
        tmp.write_bytes(b"new")
        commit_file(tmp, final)
        assert reader.read() == b"old"                  # the old file, whole, not overwritten in place
    assert final.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part.parquet"]


def test_commit_file_of_a_missing_temp_file_leaves_the_final_one(tmp_path):
    final = tmp_path / "part.parquet"
    final.write_bytes(b"old")
    with pytest.raises(FileNotFoundError):
        commit_file(tmp_path / ".never-written", final)
    assert final.read_bytes() == b"old"


# ---------------------------------------------------------------- commit_folder

def test_commit_folder_replaces_the_folder_whole(old_folder):
    assert commit_folder(old_folder, fill_with(NEW)) == 2          # fill's result is handed back
    assert contents(old_folder) == NEW                             # b is gone: nothing of the old folder stays
    assert strays(old_folder.parent, old_folder) == []             # no staging or replaced folder left


def test_commit_folder_makes_a_new_folder_and_its_parents(tmp_path):
    final = tmp_path / "aggregates" / "event_date=2026-11-21"
    commit_folder(final, fill_with(NEW))
    assert contents(final) == NEW
    assert strays(final.parent, final) == []


def test_a_failing_fill_leaves_the_old_folder_and_no_stage(old_folder):
    def fill(stage):
        (stage / "a").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        commit_folder(old_folder, fill)
    assert contents(old_folder) == OLD
    assert strays(old_folder.parent, old_folder) == []


KILLED_IN_FILL = """
import os, signal, sys
from pathlib import Path
from transforms.lake.commit import commit_folder

def fill(stage):
    (stage / "a").write_text("new a")
    (stage / "c").write_text("new c")
    os.kill(os.getpid(), signal.SIGKILL)     # staged, not yet renamed

commit_folder(Path(sys.argv[1]), fill)
"""


def test_a_kill_between_stage_and_rename_leaves_the_old_folder_then_the_next_run_replaces_it(old_folder):
    child = python(KILLED_IN_FILL, old_folder)
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert contents(old_folder) == OLD
    left = strays(old_folder.parent, old_folder)
    assert len(left) == 1 and contents(old_folder.parent / left[0]) == NEW   # the killed run's stage
    # The next run: the folder whole and new, and the stray stage (rows no reader or sweep looks at) gone.
    commit_folder(old_folder, fill_with({"d": "next d"}))
    assert contents(old_folder) == {"d": "next d"}
    assert strays(old_folder.parent, old_folder) == []


KILLED_AT_A_RENAME = """
import os, signal, sys
from pathlib import Path
from transforms.lake.commit import commit_folder

final, n = Path(sys.argv[1]), int(sys.argv[2])
calls = []

def killing(real):
    def rename(src, dst, *args, **kwargs):
        calls.append(src)
        if len(calls) == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst, *args, **kwargs)
    return rename

os.replace, os.rename = killing(os.replace), killing(os.rename)

def fill(stage):
    (stage / "a").write_text("new a")
    (stage / "c").write_text("new c")

commit_folder(final, fill)
"""


def test_a_kill_at_any_rename_leaves_the_old_folder_or_the_new_one_never_none(old_folder):
    for n in range(1, 6):
        child = python(KILLED_AT_A_RENAME, old_folder, n)
        _, err = child.communicate(timeout=60)
        if child.returncode == 0:
            break
        assert child.returncode == -signal.SIGKILL, err
        assert old_folder.is_dir(), f"killed before rename {n}: the folder is missing"
        assert contents(old_folder) == OLD, f"killed before rename {n}"   # not renamed yet: the old, whole
    else:
        pytest.fail("commit_folder never finished")
    assert contents(old_folder) == NEW
    assert strays(old_folder.parent, old_folder) == []


SLOW_COMMIT = """
import sys, time
from pathlib import Path
from transforms.lake.commit import commit_folder

final, filling, go = map(Path, sys.argv[1:4])

def fill(stage):
    (stage / "a").write_text("A")
    filling.write_text(str(stage))
    while not go.exists():
        time.sleep(0.02)

commit_folder(final, fill)
"""


def test_a_second_committer_in_the_same_folder_waits_and_keeps_the_first_ones_stage(tmp_path):
    parent = tmp_path / "roaming"
    filling, go = tmp_path / "filling", tmp_path / "go"
    first = python(SLOW_COMMIT, parent / "month=2026-09", filling, go)
    try:
        wait_for(filling, first)
        stage = Path(filling.read_text())
        second = threading.Thread(target=commit_folder, args=(parent / "month=2026-10", fill_with({"b": "B"})))
        second.start()
        time.sleep(0.5)
        assert second.is_alive()                           # waiting for the first commit to finish ...
        assert (stage / "a").read_text() == "A"            # ... without taking its stage for a stray
    finally:
        go.write_text("")                                  # the first one may finish now, whatever happened
    second.join(timeout=60)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert contents(parent / "month=2026-09") == {"a": "A"}
    assert contents(parent / "month=2026-10") == {"b": "B"}
    assert sorted(p.name for p in parent.iterdir()) == ["month=2026-09", "month=2026-10"]


# ---------------------------------------------------------------- sha256_file, remove_tree

@pytest.mark.parametrize("data, digest", [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
])
def test_sha256_file_known_digests(tmp_path, data, digest):
    path = tmp_path / "f"
    path.write_bytes(data)
    assert sha256_file(path) == digest


def test_sha256_file_over_several_blocks(tmp_path):
    data = os.urandom((3 << 20) + 5)                      # 3 MiB and 5 bytes: four reads of 1 MiB
    path = tmp_path / "big"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_remove_tree(tmp_path):
    tree = tmp_path / "t"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("x")
    remove_tree(tree)
    assert not tree.exists()
    remove_tree(tree)                                      # already gone: nothing to do, no error


# ---------------------------------------------------------------- exclusive

def try_lock(lock_file: Path) -> bool:
    """Whether another open of `lock_file` could take the lock now (flock locks are per open file)."""
    with open(lock_file, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
        return True


def test_exclusive_holds_the_lock_until_left_even_by_an_error(tmp_path):
    lock = tmp_path / "audit" / ".writer.lock"            # its folder is made
    with pytest.raises(RuntimeError):
        with exclusive(lock):
            assert not try_lock(lock)
            raise RuntimeError("step failed")
    assert try_lock(lock)


def test_exclusive_makes_a_second_process_wait(tmp_path):
    lock = tmp_path / "audit" / ".writer.lock"
    assert_second_process_waits(
        exclusive(lock), "exclusive(lock)", tmp_path,
        setup=f"from transforms.lake.commit import exclusive\nlock = Path({str(lock)!r})")
