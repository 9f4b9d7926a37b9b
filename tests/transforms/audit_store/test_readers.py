"""Compliance reads, never writes: every reader of the audit store reads a private copy, cannot change the
store, and keeps the single writer out for no longer than the copy (docs/design.md §6).

Real DuckDB files and real processes throughout: a reader or an outside DuckDB session in one process, the
writer in another.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest

from tests.transforms.audit_store.conftest import events, source_file
from tests.transforms.lake.conftest import python, wait_for
from transforms.audit_store import (StoreBusy, StoreError, append_log, connect, insert, reading, snapshot,
                                    verify_store, writing)
from transforms.audit_store.anchors import check_anchors, forget_copy, read_anchors
from transforms.audit_store.store import WAIT_ENV, WRITER_LOCK, store_wait_s
from transforms.audit_store.views import define_views
from transforms.entry.cli import main

REPO = Path(__file__).resolve().parents[3]


GENERATION = "audit/.writer.generation"


def audit_zone(lake) -> dict[str, tuple[str, int]]:
    """Every file of the audit zone: its sha256 and mtime."""
    return {str(p.relative_to(lake.root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(lake.zone("audit").rglob("*")) if p.is_file()}


def entries(lake) -> int:
    with reading(lake) as c:
        return c.execute("SELECT count(*) FROM audit_log").fetchone()[0]


@pytest.fixture()
def store(lake, policy):
    """A store with a file, three log entries, the views and an anchor, written as the pipeline writes."""
    with writing(lake) as c:
        insert(c, [source_file()])
        append_log(c, events(3))
        define_views(c, lake, policy)
    assert len(read_anchors(lake)) == 1
    return lake


# A child that holds something (`{hold}`, a `with` target) open until told to stop or 20 s have passed, then
# prints what it reads then.
_HOLDER = """
import sys, time
from pathlib import Path
import duckdb
from transforms.audit_store import reading, writing, writer_lock, connect, append_log, LogEvent
from transforms.lake import Lake
lake, held, stop = Lake.at(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
with {hold} as con:
    {inside}
    held.write_text("")
    deadline = time.monotonic() + {hold_s}
    while not stop.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    {after}
"""


def holder(lake, tmp_path, hold: str, inside: str = "pass", after: str = "pass", hold_s: float = 20):
    held, stop = tmp_path / "held", tmp_path / "stop"
    held.unlink(missing_ok=True)
    stop.unlink(missing_ok=True)
    child = python(_HOLDER.format(hold=hold, inside=inside, after=after, hold_s=hold_s), lake.root, held, stop)
    wait_for(held, child)
    return child, stop


# ---------------------------------------------------------------- a reader cannot change the store

def test_a_readers_connection_refuses_every_change_and_reaches_no_file(store, tmp_path):
    live, before = store.audit_db, audit_zone(store)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with reading(store) as c:
        assert c.execute("SELECT count(*) FROM audit_log").fetchone() == (3,)
        for sql in ("INSERT INTO rejection_reasons VALUES ('r', 'a', 'f', 'x', 1)", "DELETE FROM audit_log",
                    "UPDATE audit_log SET actor = 'someone'", "CREATE TABLE t (i INTEGER)", "DROP TABLE audit_log",
                    "ALTER TABLE audit_log ADD COLUMN x INTEGER", "CREATE VIEW v AS SELECT 1",
                    "CREATE OR REPLACE VIEW v_last_run AS SELECT 1",
                    # A read-only connection may ATTACH another file read-write, unless it reaches no file.
                    f"ATTACH '{live}' AS live (READ_WRITE)", f"ATTACH '{live}' AS live",
                    f"ATTACH '{elsewhere / 'new.duckdb'}' AS n", f"COPY audit_log TO '{elsewhere / 'log.csv'}'",
                    f"COPY audit_log TO '{store.zone('audit') / 'log.parquet'}' (FORMAT parquet)",
                    "SET enable_external_access = true", "SET allowed_directories = ['/']", "RESET access_mode",
                    "INSTALL httpfs", "LOAD httpfs"):
            with pytest.raises(duckdb.Error):
                c.execute(sql)
        assert c.execute("SELECT count(*) FROM audit_log").fetchone() == (3,)
    assert audit_zone(store) == before and not any(elsewhere.iterdir())


def test_a_plain_read_only_connection_could_attach_the_store_read_write(store, tmp_path):
    # Why the reader's connection reaches no file: DuckDB's read-only mode binds only the file it opened.
    other = tmp_path / "other.duckdb"
    shutil.copyfile(store.audit_db, other)
    first = tmp_path / "first.duckdb"
    shutil.copyfile(store.audit_db, first)
    c = duckdb.connect(str(first), read_only=True)
    try:
        c.execute(f"ATTACH '{other}' AS w (READ_WRITE)")
        c.execute("DELETE FROM w.audit_log")
        assert c.execute("SELECT count(*) FROM w.audit_log").fetchone() == (0,)
    finally:
        c.close()


def test_the_copy_is_private_outside_the_lake_and_removed(store):
    with reading(store) as c:
        path = Path(c.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
                    .fetchone()[0])
        assert path.is_file() and not path.is_relative_to(store.root)
        assert path.stat().st_size == store.audit_db.stat().st_size
        assert os.stat(path.parent).st_mode & 0o777 == 0o700
    assert not path.parent.exists()


def test_views_answer_on_the_copy(store, policy):
    with reading(store) as c:
        assert c.execute("SELECT entries, links_ok FROM v_audit_chain").fetchone() == (3, True)
        define_views(c, store, policy, temp=True)          # what the report and `summary` do
        assert c.execute("SELECT count(*) FROM roaming_status").fetchone() == (0,)
        assert c.execute("SELECT entries FROM v_audit_chain").fetchone() == (3,)


def test_every_reader_command_leaves_the_audit_zone_as_it_was(store, tmp_path, capsys):
    before = audit_zone(store)
    lake = str(store.root)
    for argv in (["verify", "--lake", lake], ["summary", "--lake", lake], ["hold", "list", "--lake", lake],
                 ["report", "--lake", lake, "--out", str(tmp_path / "report.html")],
                 ["snapshot", "--lake", lake, "--out", str(tmp_path / "copy.duckdb")],
                 ["lookup", "--lake", lake, "--number", "040123456", "--demo"]):
        assert main(argv) == 0, (argv, capsys.readouterr().err)
        assert audit_zone(store) == before, argv
    assert not (store.root / "reports").exists() or not any((store.root / "reports").iterdir())


# ---------------------------------------------------------------- the writer is not kept out by a reader

def test_a_long_read_keeps_the_writer_out_only_for_the_copy(store, tmp_path):
    # The reader holds its connection for up to 20 s and reads again once the writer is done.
    child, stop = holder(store, tmp_path, "reading(lake)",
                         after="print(con.execute('SELECT count(*) FROM audit_log').fetchone()[0])")
    try:
        started = time.monotonic()
        with writing(store) as c:
            waited = time.monotonic() - started
            append_log(c, events(1, prefix="during-the-read"))
        assert waited < 5, f"the writer waited {waited:.1f} s for a reader"
        assert child.poll() is None                        # the read goes on
        stop.write_text("")
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert out.strip() == "3"                          # the reader's copy, as of its start
    finally:
        child.kill()
    assert entries(store) == 4


def test_a_reader_waits_for_a_writers_session_and_says_so(store, tmp_path, capsys):
    child, stop = holder(store, tmp_path, "writing(lake)", hold_s=2.5,
                         inside="append_log(con, [LogEvent('w1', 'pipeline', 'file_loaded', 'f.csv', {})])")
    try:
        started = time.monotonic()
        with reading(store, wait_s=60) as c:
            waited = time.monotonic() - started
            assert c.execute("SELECT count(*) FROM audit_log").fetchone() == (4,)   # after the writer
        assert 1.5 < waited < 30
        assert "is being written" in capsys.readouterr().err
    finally:
        child.kill()
        child.wait()


def test_a_reader_gives_up_after_its_wait(store, tmp_path):
    child, stop = holder(store, tmp_path, "writer_lock(lake)")
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusy, match=r"was being written for longer than 0.3 s \(CDR_AUDIT_STORE_WAIT_S\)"
                                            rf" by pid {child.pid} on host "):
            with reading(store, wait_s=0.3, say=None):
                pass
        assert time.monotonic() - started < 5
    finally:
        child.kill()
        child.wait()


def test_a_writer_waits_for_an_outside_session_on_the_live_file_then_writes(store, tmp_path, capsys, monkeypatch):
    # Someone's `duckdb -readonly` shell on the live store: DuckDB's lock keeps the writer out while it is open.
    monkeypatch.setenv(WAIT_ENV, "60")
    child, stop = holder(store, tmp_path, "duckdb.connect(str(lake.audit_db), read_only=True)", hold_s=3)
    try:
        started = time.monotonic()
        with writing(store) as c:
            waited = time.monotonic() - started
            append_log(c, events(1, prefix="after-the-shell"))
        assert 2 < waited < 60
        err = capsys.readouterr().err
        assert f"held open by another process (pid {child.pid}, " in err and "waiting up to 60 s" in err
    finally:
        child.kill()
        child.wait()
    assert entries(store) == 4


def test_a_writer_gives_up_on_an_outside_session_naming_it(store, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(WAIT_ENV, "0.5")
    before = audit_zone(store)
    child, stop = holder(store, tmp_path, "duckdb.connect(str(lake.audit_db), read_only=True)")
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusy, match=rf"held open by another process \(pid {child.pid}, .*0.5 s"
                                            r".*cdr-audit snapshot"):
            with writing(store):
                pass
        assert time.monotonic() - started < 5
        # Not opened: no anchor, nothing; only the writers' generation moved, as it does whenever the lease is taken.
        assert {**audit_zone(store), GENERATION: None} == {**before, GENERATION: None}
        # The command line says the same and exits 1.
        assert main(["hold", "place", "--lake", str(store.root), "--reason", "dispute 2026/114", "--by", "dpo",
                     "--dataset", "billing", "--demo"]) == 1
        err = capsys.readouterr().err
        assert f"(pid {child.pid}, " in err and "cdr-audit snapshot --lake LAKE --out FILE" in err
    finally:
        child.kill()
        child.wait()


def test_the_wait_comes_from_the_environment():
    assert store_wait_s({}) == 300
    assert store_wait_s({WAIT_ENV: "2.5"}) == 2.5
    for bad in ("soon", "-1", "nan", "inf"):
        with pytest.raises(StoreError, match=WAIT_ENV):
            store_wait_s({WAIT_ENV: bad})


# ---------------------------------------------------------------- what the copy is held to

def test_anchors_written_after_the_copy_are_no_sign_of_a_deleted_tail(store):
    with reading(store) as c:
        with writing(store) as w:                          # the copy is taken: a writer gets in
            append_log(w, events(2, prefix="later"))
        assert len(read_anchors(store)) == 2
        check = check_anchors(c, store)
        assert check.ok and check.checked == 1, check.problems
        forget_copy(c)                                     # held to every anchor, the copy would look cut short
        assert "entries were deleted" in check_anchors(c, store).problems[0]
    assert verify_store(store).ok and verify_store(store).chain.entries == 5


def test_reading_while_this_thread_writes_is_refused_not_a_deadlock(store):
    with writing(store):
        with pytest.raises(StoreError, match="holds the audit store for writing"):
            with reading(store, wait_s=1):
                pass


def test_a_store_without_the_lock_file_is_read_and_nothing_is_created(lake):
    c = connect(lake)                                      # written without the writer's lock: no lock file
    append_log(c, events(2))
    c.close()
    lock = lake.zone("audit") / WRITER_LOCK
    assert not lock.exists()
    assert entries(lake) == 2
    assert not lock.exists()


def test_a_wal_a_killed_writer_left_is_read_and_folded_into_a_snapshot(store, tmp_path):
    child, stop = holder(store, tmp_path, "writer_lock(lake)",
                         inside="con = connect(lake); append_log(con, [LogEvent('k1', 'pipeline', 'file_loaded',"
                                " 'f.csv', {})])")
    child.kill()                                           # kill -9 mid-session: the commit is in the WAL only
    child.wait()
    wal = store.audit_db.with_name("audit.duckdb.wal")
    assert wal.exists()
    before = audit_zone(store)
    assert entries(store) == 4
    out = tmp_path / "snap" / "audit-copy.duckdb"
    snap = snapshot(store, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["audit-copy.duckdb"]   # one file, no WAL beside it
    assert (snap.entries, snap.head_seq) == (4, 4)
    assert audit_zone(store) == before


# ---------------------------------------------------------------- the snapshot

def test_a_snapshot_is_the_store_as_of_now(store, tmp_path):
    before = audit_zone(store)
    out = tmp_path / "dpo" / "audit.duckdb"
    snap = snapshot(store, out)
    assert snap.path == out and snap.bytes == out.stat().st_size and (snap.entries, snap.head_seq) == (3, 3)
    assert snap.seconds < 5
    assert sorted(p.name for p in out.parent.iterdir()) == ["audit.duckdb"]
    c = duckdb.connect(str(out), read_only=True)
    try:
        assert c.execute("SELECT entries, links_ok FROM v_audit_chain").fetchone() == (3, True)
        assert c.execute("SELECT count(*) FROM v_roaming_states").fetchone() == (0,)
        ours = c.execute("SELECT seq, hash FROM audit_log ORDER BY seq").fetchall()
    finally:
        c.close()
    with reading(store) as c:
        assert c.execute("SELECT seq, hash FROM audit_log ORDER BY seq").fetchall() == ours
    # While the snapshot is open in someone's shell, the writer is not kept out: it is not the live file.
    holding = duckdb.connect(str(out), read_only=True)
    try:
        with writing(store) as w:
            append_log(w, events(1, prefix="after-the-snapshot"))
    finally:
        holding.close()
    assert audit_zone(store) != before


def test_a_snapshot_is_written_outside_the_lake_only(store, capsys):
    before = audit_zone(store)
    for out in (store.audit_db, store.zone("reports") / "audit.duckdb"):
        with pytest.raises(StoreError, match="outside the lake"):
            snapshot(store, out)
        assert main(["snapshot", "--lake", str(store.root), "--out", str(out)]) == 1
        assert "outside the lake" in capsys.readouterr().err
    assert audit_zone(store) == before


def test_the_snapshot_command_says_where_and_how_much(store, tmp_path, capsys):
    out = tmp_path / "copy.duckdb"
    assert main(["snapshot", "--lake", str(store.root), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"snapshot of {store.audit_db}: {out} ({out.stat().st_size:,} bytes" in said
    assert "audit log: 3 entries, head seq 3" in said and f"duckdb -readonly {out}" in said


# ---------------------------------------------------------------- a reader that may only read the audit zone

@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to run as another user")
def test_a_reader_that_may_only_read_the_audit_zone(policy):
    # As a compliance reader would be: not the owner, in the lake's group, which may read but not write.
    root = Path(tempfile.mkdtemp(prefix="cdr-audit-group-"))
    try:
        root.chmod(0o755)
        from transforms.lake import Lake

        lake = Lake.at(root / "lake")
        lake.ensure()
        with writing(lake) as c:
            append_log(c, events(3))
            define_views(c, lake, policy)
        for p in [lake.root, *lake.root.rglob("*")]:
            os.chown(p, 0, 65534)
            p.chmod(0o750 if p.is_dir() else 0o640)
        before = audit_zone(lake)
        out = root / "dpo"
        out.mkdir()
        os.chown(out, 65534, 65534)
        code = ("import sys\nfrom transforms.audit_store import reading, snapshot\nfrom transforms.lake import Lake\n"
                "lake = Lake.at(sys.argv[1])\n"
                "with reading(lake) as c:\n    print(c.execute('SELECT entries FROM v_audit_chain').fetchone()[0])\n"
                "print(snapshot(lake, sys.argv[2]).entries)\n")
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                               "-c", code, str(lake.root), str(out / "copy.duckdb")],
                              capture_output=True, text=True, cwd=REPO, timeout=120,
                              env={**os.environ, "HOME": str(out), "TMPDIR": str(out)})
        assert (proc.returncode, proc.stdout.split()) == (0, ["3", "3"]), proc.stderr[-2000:]
        assert audit_zone(lake) == before
        # The same reader cannot write: it could not even take the writer's lock.
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                               "-c", "import sys\nfrom transforms.audit_store import writing\n"
                               "from transforms.lake import Lake\nwith writing(Lake.at(sys.argv[1])): pass",
                               str(lake.root)], capture_output=True, text=True, cwd=REPO, timeout=120,
                              env={**os.environ, "HOME": str(out), "TMPDIR": str(out)})
        assert proc.returncode != 0 and "PermissionError" in proc.stderr
        assert audit_zone(lake) == before
    finally:
        shutil.rmtree(root, ignore_errors=True)
