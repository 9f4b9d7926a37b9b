"""transforms/billing.py: valid rows into hive partitions event_date=…, one part file per source file."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from transforms.billing import load_billing, part_name, write_partitioned

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


@pytest.fixture()
def valid_file(work_dir, pq_write):
    return str(pq_write(work_dir / "valid.parquet", VALID))


def stage_by_day(out: Path, select_sql: str) -> str:
    """Rows as validate hands them over: one folder per event date, the date in the path."""
    duckdb.execute(f"COPY ({select_sql}) TO '{out}' (FORMAT parquet, PARTITION_BY (event_date), OVERWRITE)")
    return str(out)


@pytest.fixture()
def valid(work_dir):
    return stage_by_day(work_dir / "valid", VALID)


def zone_files(lake, zone="billing"):
    return sorted(str(p.relative_to(lake.root)) for p in lake.zone(zone).rglob("*") if p.is_file())


def test_part_name_is_sha_prefix():
    assert part_name(SHA_A) == "part-a1a1a1a1a1a1a1a1.parquet"   # first 16 hex digits


def test_hive_partitions_by_event_date(valid, lake, work_dir, pq_read):
    w = load_billing(valid, lake, work_dir, source_sha256=SHA_A)
    assert w.zone == "billing"
    assert w.rows_written == 4
    assert w.rows_by_partition == {"2026-11-21": 2, "2026-11-22": 1, "2026-11-23": 1}
    expected = [f"billing/event_date=2026-11-{d}/part-a1a1a1a1a1a1a1a1.parquet" for d in (21, 22, 23)]
    assert list(w.files) == expected
    assert zone_files(lake) == expected
    rows = pq_read(lake.zone("billing") / "*" / "*.parquet",
                   "SELECT CAST(event_date AS VARCHAR), record_id, origin_number FROM t ORDER BY record_id", hive=True)
    assert rows == [("2026-11-21", "r1", "+38640111111"), ("2026-11-22", "r2", "+38640222222"),
                    ("2026-11-21", "r3", "040333333"), ("2026-11-23", "r4", "0038640444444")]


def test_partition_column_is_in_the_path_not_repeated_in_the_file(valid, lake, work_dir, pq_columns):
    load_billing(valid, lake, work_dir, source_sha256=SHA_A)
    part = lake.zone("billing") / "event_date=2026-11-21" / part_name(SHA_A)
    assert pq_columns(part) == ["record_id", "source_row", "origin_number", "duration_s"]


def test_rewrite_of_the_same_file_is_idempotent(valid, lake, work_dir, pq_read):
    first = load_billing(valid, lake, work_dir, source_sha256=SHA_A)
    inode = os.stat(lake.root / first.files[0]).st_ino
    stage_by_day(work_dir / "valid", VALID)             # a re-run validates the file again
    second = load_billing(valid, lake, work_dir, source_sha256=SHA_A)
    assert second == first                              # same files, same counts
    assert zone_files(lake) == list(first.files)        # no second copy beside the first
    assert os.stat(lake.root / first.files[0]).st_ino != inode   # replaced by rename, not appended to
    count = pq_read(lake.zone("billing") / "*" / "*.parquet", "SELECT count(*), count(DISTINCT record_id) FROM t")
    assert count == [(4, 4)]                            # 4 rows, not 8


def test_two_source_files_share_a_partition_in_separate_parts(valid, lake, work_dir, pq_write, pq_read):
    load_billing(valid, lake, work_dir, source_sha256=SHA_A)
    other = stage_by_day(work_dir / "other",
                         "SELECT 'x1' AS record_id, 1 AS source_row, DATE '2026-11-22' AS event_date,"
                         " '+38641000000' AS origin_number, 1 AS duration_s")
    w = load_billing(str(other), lake, work_dir, source_sha256=SHA_B)
    assert w.files == ("billing/event_date=2026-11-22/part-b2b2b2b2b2b2b2b2.parquet",)
    assert sorted(p.name for p in (lake.zone("billing") / "event_date=2026-11-22").iterdir()) == [
        "part-a1a1a1a1a1a1a1a1.parquet", "part-b2b2b2b2b2b2b2b2.parquet"]
    assert pq_read(lake.zone("billing") / "*" / "*.parquet", "SELECT count(*) FROM t") == [(5,)]


def test_empty_input_writes_nothing(lake, work_dir):
    empty = work_dir / "valid_empty"
    empty.mkdir()
    w = load_billing(str(empty), lake, work_dir, source_sha256=SHA_A)
    assert (w.rows_written, w.rows_by_partition, w.files) == (0, {}, ())
    assert zone_files(lake) == []


def test_work_area_is_cleaned_after_commit(valid, lake, work_dir):
    load_billing(valid, lake, work_dir, source_sha256=SHA_A)
    assert not (work_dir / "billing_out").exists()


def test_write_partitioned_with_a_select(valid_file, lake, work_dir, pq_columns):
    w = write_partitioned(valid_file, lake, "billing", "event_date", work_dir, SHA_A,
                          select="record_id, event_date")
    assert w.rows_written == 4
    assert pq_columns(lake.root / w.files[0]) == ["record_id"]
