"""transforms/lake/partitions.py: a step's rows into a zone, one part file per partition named by the source
file, so a re-run replaces the same files and a failed file can be withdrawn by the same name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from transforms.lake import partitions
from transforms.lake.connection import connect
from transforms.lake.partitions import ZoneWrite, commit_partitions, part_name, withdraw_parts

SHA_A, SHA_B = "a1" * 32, "b2" * 32
PART_A, PART_B = "part-a1a1a1a1a1a1a1a1.parquet", "part-b2b2b2b2b2b2b2b2.parquet"

# Four rows of one file: r1 and r3 on 21 Nov, r2 on 22 Nov, r4 on 23 Nov.
ROWS = """
    SELECT 'r' || i AS record_id, i AS source_row, DATE '2026-11-20' + day AS event_date,
           '+3864011111' || i AS origin_number, 60 * i AS duration_s
    FROM (VALUES (1, 1), (2, 2), (3, 1), (4, 3)) t(i, day)
"""
ONE_ROW_B = ("SELECT 'x1' AS record_id, 1 AS source_row, DATE '2026-11-22' AS event_date,"
             " '+38641000000' AS origin_number, 1 AS duration_s")


def write_partitioned(src: str, lake, zone: str, column: str, work_dir: Path, sha: str) -> ZoneWrite:
    """The rows of the Parquet file `src` into `zone`, as a step writes its query's rows."""
    con = connect(work_dir / "tmp")
    try:
        return partitions.write_partitioned(con, "SELECT * FROM read_parquet($src)", {"src": src}, lake, zone, column,
                                            work_dir, sha)
    finally:
        con.close()


@pytest.fixture()
def source(work_dir, pq_write) -> str:
    return str(pq_write(work_dir / "valid.parquet", ROWS))


def zone_files(lake, zone="billing") -> list[str]:
    return sorted(str(p.relative_to(lake.root)) for p in lake.zone(zone).rglob("*") if p.is_file())


def test_part_name_is_sha_prefix():
    assert part_name(SHA_A) == "part-a1a1a1a1a1a1a1a1.parquet"   # first 16 hex digits


def test_one_part_per_partition_named_by_the_source(source, lake, work_dir, pq_read):
    w = write_partitioned(source, lake, "billing", "event_date", work_dir, SHA_A)
    expected = [f"billing/event_date=2026-11-{d}/{PART_A}" for d in (21, 22, 23)]
    assert w == ZoneWrite("billing", 4, {"2026-11-21": 2, "2026-11-22": 1, "2026-11-23": 1}, tuple(expected))
    assert zone_files(lake) == expected                   # paths relative to the lake root, nothing else
    rows = pq_read(lake.zone("billing") / "*" / "*.parquet",
                   "SELECT CAST(event_date AS VARCHAR), record_id, origin_number FROM t ORDER BY record_id", hive=True)
    assert rows == [("2026-11-21", "r1", "+38640111111"), ("2026-11-22", "r2", "+38640111112"),
                    ("2026-11-21", "r3", "+38640111113"), ("2026-11-23", "r4", "+38640111114")]


def test_the_partition_column_is_in_the_path_not_repeated_in_the_file(source, lake, work_dir, pq_columns):
    # Every other column of the source, in its order (what was `select=` narrowed before is the caller's now).
    w = write_partitioned(source, lake, "quarantine", "event_date", work_dir, SHA_A)
    assert w.zone == "quarantine"
    for f in w.files:
        assert pq_columns(lake.root / f) == ["record_id", "source_row", "origin_number", "duration_s"]
    assert zone_files(lake, "billing") == []


def test_a_rerun_of_the_same_file_replaces_its_parts(source, lake, work_dir, pq_read):
    first = write_partitioned(source, lake, "billing", "event_date", work_dir, SHA_A)
    inode = os.stat(lake.root / first.files[0]).st_ino
    second = write_partitioned(source, lake, "billing", "event_date", work_dir, SHA_A)
    assert second == first                                # same files, same counts
    assert zone_files(lake) == list(first.files)          # no second copy beside the first
    assert os.stat(lake.root / first.files[0]).st_ino != inode   # replaced by rename, not appended to
    assert pq_read(lake.zone("billing") / "*" / "*.parquet",
                   "SELECT count(*), count(DISTINCT record_id) FROM t") == [(4, 4)]   # 4 rows, not 8
    assert not (work_dir / "billing_out").exists()        # the work area is cleaned after the commit


def test_two_source_files_share_a_partition_in_separate_parts(source, lake, work_dir, pq_write, pq_read):
    write_partitioned(source, lake, "billing", "event_date", work_dir, SHA_A)
    other = str(pq_write(work_dir / "other.parquet", ONE_ROW_B))
    w = write_partitioned(other, lake, "billing", "event_date", work_dir, SHA_B)
    assert w.files == (f"billing/event_date=2026-11-22/{PART_B}",)
    assert sorted(p.name for p in (lake.zone("billing") / "event_date=2026-11-22").iterdir()) == [PART_A, PART_B]
    assert pq_read(lake.zone("billing") / "*" / "*.parquet", "SELECT count(*) FROM t") == [(5,)]


def test_an_empty_source_writes_nothing(lake, work_dir, pq_write):
    empty = str(pq_write(work_dir / "empty.parquet", f"SELECT * FROM ({ROWS}) WHERE false"))
    w = write_partitioned(empty, lake, "billing", "event_date", work_dir, SHA_A)
    assert (w.rows_written, w.rows_by_partition, w.files) == (0, {}, ())
    assert zone_files(lake) == []


def lay_out(src: Path, pq_write, partitions: dict[str, list[str]]) -> Path:
    """A step's output as COPY … PARTITION_BY leaves it: `src/<col>=<value>/<file>.parquet`."""
    for folder, files in partitions.items():
        (src / folder).mkdir(parents=True)
        for name in files:
            pq_write(src / folder / name, ONE_ROW_B)
    return src


def test_commit_partitions_moves_one_file_per_partition(lake, work_dir, pq_write):
    src = lay_out(work_dir / "out", pq_write, {"month=2026-10": ["data_0.parquet"], "month=2026-11": ["x.parquet"]})
    w = commit_partitions(src, lake, "roaming", SHA_B)
    assert w == ZoneWrite("roaming", 2, {"2026-10": 1, "2026-11": 1},
                          (f"roaming/month=2026-10/{PART_B}", f"roaming/month=2026-11/{PART_B}"))
    assert not list(src.rglob("*.parquet"))               # moved, not copied


def test_commit_partitions_of_nothing(lake, work_dir):
    (work_dir / "out").mkdir()
    assert commit_partitions(work_dir / "out", lake, "billing", SHA_A) == ZoneWrite("billing", 0, {}, ())


def test_commit_partitions_refuses_two_files_in_one_partition(lake, work_dir, pq_write):
    src = lay_out(work_dir / "out", pq_write, {"event_date=2026-11-22": ["a.parquet", "b.parquet"]})
    with pytest.raises(AssertionError, match="one file per partition"):
        commit_partitions(src, lake, "billing", SHA_A)
    assert zone_files(lake) == []


def test_withdraw_parts_removes_only_that_files_parts_in_the_zones_named(source, lake, work_dir, pq_write):
    other = str(pq_write(work_dir / "other.parquet", ONE_ROW_B))
    for zone in ("billing", "quarantine", "analytics"):
        write_partitioned(source, lake, zone, "event_date", work_dir, SHA_A)
        write_partitioned(other, lake, zone, "event_date", work_dir, SHA_B)
    withdraw_parts(lake, ("billing", "quarantine"), SHA_A)
    for zone in ("billing", "quarantine"):
        assert zone_files(lake, zone) == [f"{zone}/event_date=2026-11-22/{PART_B}"]
    assert len(zone_files(lake, "analytics")) == 4        # a zone not named keeps every part
    withdraw_parts(lake, ("billing",), SHA_A)             # nothing left to withdraw: no error
