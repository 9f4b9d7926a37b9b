"""A reader on one host never keeps a copy of the audit store taken while a writer of another host changed it
(docs/design.md §6).

A reader's shared flock keeps out the writers of its own host only. Here the writer and the reader are two
hosts (`on_host`: own hostname, flock switched off as on NFS). The writer holds the writer lease and rewrites
`audit.duckdb` in place, slowly: half, a pause, the rest. The reader must wait for it or give up naming it,
and a copy it began before the writer came is discarded and taken again (the writers' generation moved):
what it returns is the store before or after the writer, byte for byte, never half of each. The controls,
with the reader's checks of the lease and generation taken out, get the torn copy.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.transforms.audit_store.conftest import events
from tests.transforms.lake.conftest import needs_unshare, on_host, wait_for
from transforms.audit_store import append_log, writing
from transforms.lake import Lake

# The writer, on host-a: once `start` exists, holds the store's writer lock and lease and rewrites the live
# file with the bytes of `argv[3]`: the first half, then (`half`) waits for `finish`, then the rest.
_WRITER = """
import os, sys, time
from pathlib import Path
from transforms.audit_store.store import writer_lock
from transforms.lake import Lake
lake, new, work = Lake.at(sys.argv[2]), Path(sys.argv[3]).read_bytes(), Path(sys.argv[4])
while not (work / "start").exists():
    time.sleep(0.005)
with writer_lock(lake):
    with open(lake.audit_db, "r+b") as fh:
        fh.write(new[:len(new) // 2])
        fh.flush()
        (work / "half").write_text("")
        while not (work / "finish").exists():
            time.sleep(0.01)
        fh.write(new[len(new) // 2:])
        fh.truncate()
(work / "written").write_text("")
"""

# The reader, on host-b: copies the store (`copy_store`, what `reading` and `snapshot` copy with) to `argv[3]`
# waiting up to `argv[5]` s and prints the copy's sha256. With `argv[6]` == "slow", its first copy of the
# store takes the first half, says so (`copying`) and takes the rest only once `written` exists.
_READER = """
import hashlib, os, shutil, sys, time
from pathlib import Path
from transforms.audit_store import store
from transforms.lake import Lake
lake, dest, work, wait_s, slow = Lake.at(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
{setup}
real_copy = shutil.copyfile
def slow_copy(src, dst, **k):
    if Path(src) != lake.audit_db or (work / "copying").exists():
        return real_copy(src, dst, **k)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(fin.read(os.path.getsize(src) // 2))
        (work / "copying").write_text("")
        while not (work / "written").exists():
            time.sleep(0.01)
        fout.write(fin.read())
if slow == "slow":
    store.shutil.copyfile = slow_copy
store.copy_store(lake, dest, wait_s=wait_s)
print(hashlib.sha256(dest.read_bytes()).hexdigest())
"""

# Without the reader's checks: no lease seen, no generation (a flock only, which host-a's writer does not take
# here).
NO_CHECKS = """
store.current_lease = lambda lake: None
store.generation = lambda lake: ""
"""


# The reader notes (`looked`) its first look for writers, so a test times its wait from there.
NOTES_ITS_FIRST_LOOK = """
real_writers_now = store._writers_now
def noting_writers_now(lake):
    (work / "looked").touch()
    return real_writers_now(lake)
store._writers_now = noting_writers_now
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def versions(lake, tmp_path) -> tuple[str, str, object]:
    """The live store (3 entries) and the bytes the writer puts in its place (a store of 60 entries): their
    sha256s, and the new bytes' file."""
    with writing(lake) as con:
        append_log(con, events(3))
    other = Lake.at(tmp_path / "other")
    other.ensure()
    with writing(other) as con:
        append_log(con, events(60, prefix="n"))
    new = tmp_path / "new.duckdb"
    new.write_bytes(other.audit_db.read_bytes())
    return sha(lake.audit_db.read_bytes()), sha(new.read_bytes()), new


def writer(lake, tmp_path, new):
    return on_host("host-a", _WRITER, lake.root, new, tmp_path)


def reader(lake, tmp_path, *, wait_s: float, slow: bool = False, setup: str = ""):
    return on_host("host-b", _READER.format(setup=setup), lake.root, tmp_path / "copy.duckdb", tmp_path, wait_s,
                   "slow" if slow else "plain")


def finish(child) -> tuple[str, str]:
    out, err = child.communicate(timeout=120)
    return out.strip(), err


@contextmanager
def writer_half_way(lake, tmp_path, new_file) -> Iterator[None]:
    """host-a's writer holding the lease, the live file half rewritten, for the block; then it finishes."""
    w = writer(lake, tmp_path, new_file)
    (tmp_path / "start").write_text("")
    wait_for(tmp_path / "half", w)
    try:
        yield
    finally:
        (tmp_path / "finish").write_text("")
        assert w.wait(timeout=60) == 0


def copy_a_writer_comes_into(lake, tmp_path, new_file, setup: str = "") -> tuple[str, str]:
    """host-b's reader copies the first half of the store; host-a's writer then rewrites it whole (not pausing)
    and lets go; the reader copies the rest. What the reader printed."""
    (tmp_path / "finish").write_text("")
    r = reader(lake, tmp_path, wait_s=60, slow=True, setup=setup)
    w = writer(lake, tmp_path, new_file)
    wait_for(tmp_path / "copying", r)
    (tmp_path / "start").write_text("")
    assert w.wait(timeout=60) == 0
    out, err = finish(r)
    assert r.returncode == 0, err
    return out, err


@needs_unshare
def test_a_reader_waits_for_another_hosts_writer_and_copies_what_it_wrote(lake, tmp_path, versions):
    old, new, new_file = versions
    with writer_half_way(lake, tmp_path, new_file):
        r = reader(lake, tmp_path, wait_s=60, setup=NOTES_ITS_FIRST_LOOK)
        wait_for(tmp_path / "looked", r)        # started (a loaded machine may take seconds to import)
        time.sleep(2.0)
        assert r.poll() is None and not (tmp_path / "copy.duckdb").exists()     # waits, has copied nothing
    out, err = finish(r)
    assert r.returncode == 0, err
    assert out == new                                       # the store as the writer left it, whole
    assert "being written by pid" in err and "on host host-a" in err


@needs_unshare
def test_a_reader_gives_up_on_another_hosts_writer_naming_its_host(lake, tmp_path, versions):
    with writer_half_way(lake, tmp_path, versions[2]):
        out, err = finish(reader(lake, tmp_path, wait_s=1.0))
    assert "StoreBusy" in err and "was being written for longer than 1 s" in err and "on host host-a" in err
    assert out == "" and not (tmp_path / "copy.duckdb").exists()


@needs_unshare
def test_without_the_readers_checks_it_would_copy_the_torn_file(lake, tmp_path, versions):
    """The control of the two above: the reader copies the live file while host-a's writer is half way."""
    old, new, new_file = versions
    with writer_half_way(lake, tmp_path, new_file):
        out, err = finish(reader(lake, tmp_path, wait_s=60, setup=NO_CHECKS))
    assert out not in (old, new), err                       # half of each


@needs_unshare
def test_a_copy_a_writer_came_into_is_discarded_and_taken_again(lake, tmp_path, versions):
    """The writer takes the lease after the reader began its copy and lets go before it ends: no lease at
    either end, but the generation moved."""
    old, new, new_file = versions
    out, _ = copy_a_writer_comes_into(lake, tmp_path, new_file)
    assert out == new


@needs_unshare
def test_without_the_generation_the_copy_a_writer_came_into_would_be_kept(lake, tmp_path, versions):
    """The control: the reader checks the lease at both ends, but no generation."""
    old, new, new_file = versions
    out, _ = copy_a_writer_comes_into(lake, tmp_path, new_file, setup='store.generation = lambda lake: ""')
    assert out not in (old, new)
