"""transforms/audit_store/store.py: opening audit.duckdb, typed rows in and out by column name, one writer at a
time, and stores written by an earlier version."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import typing
from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest

from tests.transforms.audit_store.conftest import AT, TABLE_NAMES, rows, source_file
from tests.transforms.lake.conftest import assert_second_process_waits
from transforms import audit_store
from transforms.audit_store import connect, insert, now_utc, reading, select, writer_lock, writing
from transforms.audit_store.tables import TABLES, RejectionReason, RoamingRun, Run, column_names


def sample(row_type: type, n: int, nulls: bool = False):
    """Row `n` of a table: every column a distinct value of its type (None for the nullable ones if `nulls`)."""
    hints = typing.get_type_hints(row_type)
    values = {}
    for i, f in enumerate(dataclasses.fields(row_type)):
        hint = hints[f.name]
        optional = type(None) in typing.get_args(hint)
        base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
        if optional and nulls:
            values[f.name] = None
        else:
            values[f.name] = {str: f"{f.name}-{n}", int: 100 * n + i, bool: n % 2 == 0, float: n + i / 8,
                              date: date(2026, 1, 1) + timedelta(days=n + i),
                              datetime: AT + timedelta(hours=n, minutes=i)}[base]
    if row_type.__table__ == "source_files":
        values["rows_read"] = values["rows_loaded"] + values["rows_rejected"]
    if row_type.__table__ == "subject_requests":        # its CHECKs take one of a few names (dates already ascend)
        values.update(subject_right=("access", "erasure", "objection")[n % 3], subject_kind=("msisdn", "imsi")[n % 2],
                      status=("open", "extended", "fulfilled", "refused")[n % 4])
    return row_type(**values)


# ---------------------------------------------------------------- connect

def test_connect_creates_the_store_and_every_table(con, lake):
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert TABLE_NAMES <= names
    assert lake.audit_db.is_file()


def test_schema_is_idempotent(lake):
    connect(lake).close()
    c = connect(lake)      # CREATE TABLE IF NOT EXISTS: reopening must not fail or wipe
    try:
        assert c.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
    finally:
        c.close()


def test_reopening_keeps_the_rows(lake):
    with writing(lake) as c:
        insert(c, [source_file()])
    with writing(lake) as c:
        assert select(c, type(source_file())) == [source_file()]


def test_read_only_without_a_store_is_an_error_and_creates_nothing(lake):
    with pytest.raises(FileNotFoundError, match="no audit store"):
        connect(lake, read_only=True)
    with pytest.raises(FileNotFoundError):
        with reading(lake):
            pass
    assert not lake.audit_db.exists()


def test_reading_refuses_writes_and_closes(lake):
    connect(lake).close()
    with reading(lake) as c:
        assert c.execute("SELECT count(*) FROM runs").fetchone() == (0,)
        with pytest.raises(duckdb.Error):
            c.execute("DELETE FROM runs")
    with pytest.raises(duckdb.ConnectionException):
        c.execute("SELECT 1")


def test_writing_closes_even_when_the_body_fails(lake):
    with pytest.raises(RuntimeError):
        with writing(lake) as c:
            raise RuntimeError("step failed")
    with pytest.raises(duckdb.ConnectionException):
        c.execute("SELECT 1")


TIMEZONES = """
import sys
from transforms.audit_store import reading, writing
from transforms.lake import Lake
lake = Lake.at(sys.argv[1])
with writing(lake) as con:
    print(con.execute("SELECT current_setting('TimeZone')").fetchone()[0])
with reading(lake) as con:
    print(con.execute("SELECT current_setting('TimeZone')").fetchone()[0])
"""


def test_writers_and_readers_see_utc_whatever_the_machines_zone(lake):
    # current_date in the views (v_retention_due, v_legal_holds_active) is the UTC day for every reader.
    out = subprocess.run([sys.executable, "-c", TIMEZONES, str(lake.root)], capture_output=True, text=True,
                         env={**os.environ, "TZ": "Pacific/Kiritimati"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["UTC", "UTC"]


def test_now_utc():
    now = now_utc()
    assert now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(timezone.utc)) < timedelta(seconds=5)


# ---------------------------------------------------------------- insert and select

@pytest.mark.parametrize("name", sorted(TABLE_NAMES))
def test_every_tables_rows_go_in_and_come_back_equal(con, name):
    row_type = TABLES[name].row
    written = [sample(row_type, 1), sample(row_type, 2, nulls=True), sample(row_type, 3)]
    assert insert(con, written) == 3
    first_column = column_names(row_type)[0]                # distinct in each sample row
    assert sorted(select(con, row_type), key=lambda r: getattr(r, first_column)) == written


def test_insert_goes_by_column_name_not_position(lake):
    # A store whose table has the columns in another order than the row dataclass's fields.
    names = column_names(RejectionReason)
    raw = duckdb.connect(str(lake.audit_db))
    raw.execute("CREATE TABLE rejection_reasons (rows BIGINT NOT NULL, reason VARCHAR NOT NULL,"
                " file_name VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, run_id VARCHAR NOT NULL)")
    raw.close()
    assert names == ("run_id", "sha256", "file_name", "reason", "rows")
    row = RejectionReason(run_id="r1", sha256="a" * 64, file_name="a.csv", reason="imsi_shape", rows=2)
    with writing(lake) as c:
        insert(c, [row])
        assert rows(c, "SELECT * FROM rejection_reasons") == [(2, "imsi_shape", "a.csv", "a" * 64, "r1")]
        assert select(c, RejectionReason) == [row]


def test_insert_of_nothing(con):
    assert insert(con, []) == 0


def test_insert_refuses_rows_of_two_tables_and_writes_none(con):
    reason = RejectionReason(run_id="r1", sha256="a" * 64, file_name="a.csv", reason="x", rows=1)
    with pytest.raises(TypeError):
        insert(con, [reason, source_file()])
    with pytest.raises(TypeError):
        insert(con, [source_file(), reason])
    assert rows(con, "SELECT (SELECT count(*) FROM rejection_reasons), (SELECT count(*) FROM source_files)") == [
        (0, 0)]


def test_select_with_a_where_clause_and_bound_values(con):
    reasons = [RejectionReason(run_id=r, sha256="a" * 64, file_name="a.csv", reason=why, rows=n)
               for r, why, n in (("r1", "imsi_shape", 2), ("r1", "duplicate_row", 1), ("r2", "imsi_shape", 5))]
    insert(con, reasons)
    got = select(con, RejectionReason, "WHERE reason = ? ORDER BY rows DESC", ["imsi_shape"])
    assert got == [reasons[2], reasons[0]]
    assert select(con, RejectionReason, "WHERE run_id = ? AND rows > ?", ("r1", 1)) == [reasons[0]]
    assert select(con, Run) == []


# ---------------------------------------------------------------- one writer at a time

WRITER = """
from transforms.audit_store import insert, writing
from transforms.audit_store.tables import RejectionReason
from transforms.lake import Lake
lake = Lake.at({root!r})
"""
SECOND_WRITE = "insert(con, [RejectionReason(run_id='second', sha256='b' * 64, file_name='b.csv', reason='x', rows=1)])"


@pytest.mark.parametrize("first", [writing, writer_lock], ids=["writing", "writer_lock"])
def test_a_second_writer_waits_for_the_first_instead_of_failing(lake, first):
    # The first holds the store (or only its lock, without opening it); the second waits, then writes.
    with writing(lake) as c:
        insert(c, [source_file()])
    assert_second_process_waits(first(lake), "writing(lake) as con", lake.root.parent,
                                setup=WRITER.format(root=str(lake.root)), body=SECOND_WRITE)
    with reading(lake) as c:
        assert rows(c, "SELECT run_id FROM rejection_reasons") == [("second",)]
        assert select(c, type(source_file())) == [source_file()]


# ---------------------------------------------------------------- stores written by an earlier version

OLD_ROAMING_RUNS = """
CREATE TABLE roaming_runs (
    run_id VARCHAR NOT NULL, month VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    rows_read BIGINT, rows_counted BIGINT, rows_without_imsi BIGINT, rows_unclassified BIGINT,
    subscribers BIGINT, flagged BIGINT, not_flagged BIGINT, insufficient_history BIGINT,
    long_inactivity BIGINT, key_ids VARCHAR, path VARCHAR NOT NULL)
"""


def test_an_old_store_takes_a_roaming_run_without_a_file(lake):
    lake.audit_db.parent.mkdir(parents=True, exist_ok=True)
    old = duckdb.connect(str(lake.audit_db))
    old.execute(OLD_ROAMING_RUNS)
    old.execute("INSERT INTO roaming_runs (run_id, month, kind, subscribers, path)"
                " VALUES ('r0', '2026-09', 'window', 12, 'roaming/status/as_of=2026-09/part.parquet')")
    with pytest.raises(duckdb.ConstraintException):       # the old table indeed refuses a NULL path
        old.execute("INSERT INTO roaming_runs (run_id, month, kind, path) VALUES ('x', '2026-10', 'window', NULL)")
    old.close()

    empty_window = RoamingRun(run_id="r1", month="2026-10", kind="window", subscribers=0, path=None)
    with writing(lake) as c:
        insert(c, [empty_window])
        nullable = rows(c, "SELECT is_nullable FROM information_schema.columns"
                           " WHERE table_name = 'roaming_runs' AND column_name = 'path'")
        assert nullable == [("YES",)]
    with writing(lake) as c:                               # the migration runs again, harmlessly
        got = select(c, RoamingRun, "ORDER BY run_id")
    assert [(r.run_id, r.subscribers, r.path) for r in got] == [
        ("r0", 12, "roaming/status/as_of=2026-09/part.parquet"), ("r1", 0, None)]


# source_files as the first release wrote it: no row account by why, no lateness (docs/design.md §9).
OLD_SOURCE_FILES = """
CREATE TABLE source_files (
    run_id VARCHAR NOT NULL, night DATE NOT NULL, file_name VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
    bytes BIGINT NOT NULL, lines BIGINT, profile VARCHAR, status VARCHAR NOT NULL, reason VARCHAR,
    rows_read BIGINT NOT NULL, rows_loaded BIGINT NOT NULL, rows_rejected BIGINT NOT NULL, duplicate_of VARCHAR,
    billing_partitions INTEGER NOT NULL, processed_at TIMESTAMPTZ NOT NULL,
    CHECK (rows_read = rows_loaded + rows_rejected))
"""
ADDED = ("rows_failing", "rows_duplicate", "rows_unparseable", "lateness_window_days", "rows_before_lateness_window",
         "rows_after_night")


def _old_store(lake) -> None:
    """A store as the first release left it: every table, source_files without the added columns."""
    connect(lake).close()
    old = duckdb.connect(str(lake.audit_db))
    old.execute("DROP TABLE source_files")
    old.execute(OLD_SOURCE_FILES)
    old.execute("INSERT INTO source_files VALUES ('r0', DATE '2026-11-21', 'old.csv', 'a', 1, 2, 'canonical_csv',"
                " 'loaded', NULL, 10, 7, 3, NULL, 1, TIMESTAMPTZ '2026-11-22 02:00:00+00')")
    old.close()


def test_an_old_store_gains_the_added_source_files_columns(lake):
    _old_store(lake)
    new = source_file(run_id="r1", rows_failing=1, rows_duplicate=1, rows_unparseable=1, lateness_window_days=7,
                      rows_before_lateness_window=2, rows_after_night=0)
    with writing(lake) as c:
        insert(c, [new])
        got = dict(rows(c, "SELECT column_name, data_type FROM information_schema.columns"
                           " WHERE table_name = 'source_files'"))
    assert {n: got[n] for n in ADDED} == {
        "rows_failing": "BIGINT", "rows_duplicate": "BIGINT", "rows_unparseable": "BIGINT",
        "lateness_window_days": "INTEGER", "rows_before_lateness_window": "BIGINT", "rows_after_night": "BIGINT"}
    with writing(lake) as c:                               # the migration runs again, harmlessly
        back = {r.run_id: r for r in select(c, type(new), "ORDER BY run_id")}
    assert back["r1"] == new
    # The row written before the columns existed has none of them.
    assert [getattr(back["r0"], n) for n in ADDED] == [None] * len(ADDED)
    assert (back["r0"].rows_read, back["r0"].rows_loaded, back["r0"].rows_rejected) == (10, 7, 3)


def test_the_package_exports_the_store():
    assert (audit_store.connect, audit_store.insert, audit_store.select) == (connect, insert, select)
