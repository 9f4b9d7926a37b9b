"""Compliance reads, never writes, through the real command line: reader commands leave the audit zone as it
was, and a night runs to completion while a reader holds the store open (docs/design.md §6)."""

from __future__ import annotations

import hashlib
import shutil
import time
from datetime import date

import pytest

from tests.conftest import audit_rows, run_cli
from tests.transforms.lake.conftest import python, wait_for

pytestmark = pytest.mark.slow


def audit_zone(lake) -> dict[str, tuple[str, int]]:
    """Every file of the audit zone: its sha256 and mtime."""
    return {str(p.relative_to(lake)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted((lake / "audit").rglob("*")) if p.is_file()}


def test_reader_commands_leave_the_audit_zone_as_it_was(cli_run, tmp_path):
    lake = str(cli_run.lake)
    before = audit_zone(cli_run.lake)
    for args in (("verify", "--lake", lake), ("summary", "--lake", lake), ("hold", "list", "--lake", lake),
                 ("report", "--lake", lake, "--out", str(tmp_path / "report.html")),
                 ("snapshot", "--lake", lake, "--out", str(tmp_path / "copy.duckdb")),
                 ("lookup", "--lake", lake, "--number", "040123456", "--demo")):
        done = run_cli(*args)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        assert audit_zone(cli_run.lake) == before, args
    copy = tmp_path / "copy.duckdb"
    assert copy.stat().st_size > 0 and not copy.with_name("copy.duckdb.wal").exists()


_READER = """
import sys, time
from pathlib import Path
from transforms.audit_store import reading
from transforms.lake import Lake
held, stop = Path(sys.argv[2]), Path(sys.argv[3])
with reading(Lake.at(sys.argv[1])) as con:
    before = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    held.write_text("")
    deadline = time.monotonic() + 300
    while not stop.exists() and time.monotonic() < deadline:
        con.execute("SELECT count(*) FROM v_nightly_volumes, v_audit_chain").fetchall()   # a reader that looks long
        time.sleep(0.05)
    print(before, con.execute("SELECT count(*) FROM runs").fetchone()[0])
"""


def test_a_night_runs_while_a_reader_holds_the_store(cli_run, tmp_path):
    from sample_data.generate import generate_night

    lake = tmp_path / "lake"
    shutil.copytree(cli_run.lake, lake)
    (runs,), = audit_rows(lake, "SELECT count(*) FROM runs")       # the session's lake: one run or more
    landing = tmp_path / "landing"
    generate_night(landing, rows=400, seed=5, night=date(2026, 11, 23))
    held, stop = tmp_path / "held", tmp_path / "stop"
    reader = python(_READER, lake, held, stop)
    try:
        wait_for(held, reader)
        started = time.monotonic()
        done = run_cli("run", "--landing", str(landing), "--lake", str(lake), "--date", "2026-11-23", "--quiet")
        took = time.monotonic() - started
        assert done.returncode == 0, done.stderr[-2000:]
        assert "held open by another process" not in done.stderr and "being written" not in done.stderr
        assert reader.poll() is None, "the reader was to hold the store throughout the run"
        stop.write_text("")
        out, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, err
        assert out.split() == [str(runs), str(runs)]      # its copy, as of when it started
    finally:
        reader.kill()
    assert took < 300
    assert audit_rows(lake, "SELECT count(*) FROM runs") == [(runs + 1,)]
    assert audit_rows(lake, "SELECT status FROM runs WHERE night = '2026-11-23'") == [("completed",)]
