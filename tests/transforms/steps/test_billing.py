"""transforms/steps/billing.py: valid rows into hive partitions event_date=…, one part file per source file;
and which party of a billing row is the served subscriber."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest

from transforms.bundled import BILLING_SUITE
from transforms.lake.partitions import part_name
from transforms.steps.billing import SERVED_IS_CALLED, load_billing, served_party_sql

SHA_A, SHA_B = "a1" * 32, "b2" * 32

# Four valid rows of one file: two on 21 Nov, one on 22 Nov, one on 23 Nov (event_date is UTC).
VALID = """
    SELECT * FROM (VALUES
        ('r1', 1, DATE '2026-11-21', '+38640111111', 60),
        ('r2', 2, DATE '2026-11-22', '+38640222222', 0),
        ('r3', 3, DATE '2026-11-21', '040333333', 5),
        ('r4', 4, DATE '2026-11-23', '0038640444444', 86400)
    ) t(record_id, source_row, event_date, origin_number, duration_s)
"""


def stage_by_day(out: Path, select_sql: str) -> str:
    """Rows as validate hands them over: one folder per event date, the date in the path."""
    duckdb.execute(f"COPY ({select_sql}) TO '{out}' (FORMAT parquet, PARTITION_BY (event_date), OVERWRITE)")
    return str(out)


@pytest.fixture()
def valid(work_dir):
    return stage_by_day(work_dir / "valid", VALID)


def zone_files(lake, zone="billing"):
    return sorted(str(p.relative_to(lake.root)) for p in lake.zone(zone).rglob("*") if p.is_file())


def billing_rows(lake, pq_read, sql):
    return pq_read(lake.zone("billing") / "*" / "*.parquet", sql, hive=True)


def test_hive_partitions_by_event_date(valid, lake, pq_read):
    w = load_billing(valid, lake, source_sha256=SHA_A)
    assert w.zone == "billing"
    assert w.rows_written == 4
    assert w.rows_by_partition == {"2026-11-21": 2, "2026-11-22": 1, "2026-11-23": 1}
    expected = [f"billing/event_date=2026-11-{d}/part-a1a1a1a1a1a1a1a1.parquet" for d in (21, 22, 23)]
    assert list(w.files) == expected
    assert zone_files(lake) == expected
    rows = billing_rows(lake, pq_read,
                        "SELECT CAST(event_date AS VARCHAR), record_id, origin_number FROM t ORDER BY record_id")
    assert rows == [("2026-11-21", "r1", "+38640111111"), ("2026-11-22", "r2", "+38640222222"),
                    ("2026-11-21", "r3", "040333333"), ("2026-11-23", "r4", "0038640444444")]


def test_partition_column_is_in_the_path_not_repeated_in_the_file(valid, lake, pq_columns):
    load_billing(valid, lake, source_sha256=SHA_A)
    part = lake.zone("billing") / "event_date=2026-11-21" / part_name(SHA_A)
    assert pq_columns(part) == ["record_id", "source_row", "origin_number", "duration_s"]


def test_rewrite_of_the_same_file_is_idempotent(valid, lake, work_dir, pq_read):
    first = load_billing(valid, lake, source_sha256=SHA_A)
    inode = os.stat(lake.root / first.files[0]).st_ino
    stage_by_day(work_dir / "valid", VALID)             # a re-run validates the file again
    second = load_billing(valid, lake, source_sha256=SHA_A)
    assert second == first                              # same files, same counts
    assert zone_files(lake) == list(first.files)        # no second copy beside the first
    assert os.stat(lake.root / first.files[0]).st_ino != inode   # replaced by rename, not appended to
    count = billing_rows(lake, pq_read, "SELECT count(*), count(DISTINCT record_id) FROM t")
    assert count == [(4, 4)]                            # 4 rows, not 8


def test_two_source_files_share_a_partition_in_separate_parts(valid, lake, work_dir, pq_read):
    load_billing(valid, lake, source_sha256=SHA_A)
    other = stage_by_day(work_dir / "other",
                         "SELECT 'x1' AS record_id, 1 AS source_row, DATE '2026-11-22' AS event_date,"
                         " '+38641000000' AS origin_number, 1 AS duration_s")
    w = load_billing(str(other), lake, source_sha256=SHA_B)
    assert w.files == ("billing/event_date=2026-11-22/part-b2b2b2b2b2b2b2b2.parquet",)
    assert sorted(p.name for p in (lake.zone("billing") / "event_date=2026-11-22").iterdir()) == [
        "part-a1a1a1a1a1a1a1a1.parquet", "part-b2b2b2b2b2b2b2b2.parquet"]
    assert billing_rows(lake, pq_read, "SELECT count(*) FROM t") == [(5,)]


def test_empty_input_writes_nothing(lake, work_dir):
    empty = work_dir / "valid_empty"
    empty.mkdir()
    w = load_billing(str(empty), lake, source_sha256=SHA_A)
    assert (w.rows_written, w.rows_by_partition, w.files) == (0, {}, ())
    assert zone_files(lake) == []


def test_work_area_is_cleaned_after_commit(valid, lake, work_dir):
    # Validate's files are moved into the zone, not copied: nothing of them stays in the work area.
    load_billing(valid, lake, source_sha256=SHA_A)
    assert not (work_dir / "billing_out").exists()
    assert not list(Path(valid).rglob("*.parquet"))


# ------------------------------------------------------------------------------------ the served party

# One call between A (+38640111111, the operator's subscriber in every row but the last) and B.
# (direction, calling party, called party, the served subscriber by the rule: the called party when the
# record is incoming or forwarded to them, the calling party otherwise)
CALLS = [
    ("outgoing", "+38640111111", "+38641222222", "+38640111111"),
    ("incoming", "+38641222222", "+38640111111", "+38640111111"),
    ("forwarded", "+38641222222", "+38640111111", "+38640111111"),
    (None, "+38640111111", "+38641222222", "+38640111111"),        # no direction: not incoming, so calling
    ("INCOMING", "+38640333333", "+38641222222", "+38640333333"),  # not the validated spelling: calling
]


@pytest.fixture(scope="module")
def calls():
    con = duckdb.connect()
    con.execute("CREATE TABLE calls (direction VARCHAR, origin_number VARCHAR, destination_number VARCHAR,"
                " expected VARCHAR)")
    con.executemany("INSERT INTO calls VALUES (?, ?, ?, ?)", CALLS)
    yield con
    con.close()


def test_served_party_is_called_for_incoming_and_forwarded_else_calling(calls):
    sql = served_party_sql("destination_number", "origin_number")
    got = calls.execute(f"SELECT direction, {sql}, expected FROM calls ORDER BY rowid").fetchall()
    assert [(d, served) for d, served, _ in got] == [(d, expected) for d, _, _, expected in CALLS]


def test_served_party_takes_any_expressions(calls):
    # Callers pass qualified columns or expressions (tokens, normalized numbers), not only bare names.
    sql = served_party_sql("'called:' || c.destination_number", "'calling:' || c.origin_number")
    got = calls.execute(f"SELECT {sql} FROM calls c ORDER BY rowid").fetchall()
    assert got == [("calling:+38640111111",), ("called:+38640111111",), ("called:+38640111111",),
                   ("calling:+38640111111",), ("calling:+38640333333",)]


def test_served_is_called_holds_only_validated_directions():
    suite = json.loads(BILLING_SUITE.read_text())
    (directions,) = [e["kwargs"]["value_set"] for e in suite["expectations"]
                     if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "direction"]
    assert set(SERVED_IS_CALLED) == {"incoming", "forwarded"}
    assert set(SERVED_IS_CALLED) < set(directions)          # "outgoing" is the rest
