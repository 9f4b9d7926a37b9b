"""transforms/steps/quarantine.py: rejected rows and unparseable lines under quarantine/night=…/."""

from __future__ import annotations

import hashlib

import pytest

from transforms.lake.partitions import part_name
from transforms.steps.quarantine import quarantine_rows

SHA = "c3" * 32
RUN = "scheduled__2026-11-22T00:00:00+00:00"
NIGHT = "2026-11-22"


@pytest.fixture()
def rejected(work_dir, policy, pq_write):
    """Two rows validate rejected, shaped like validate's rejected.parquet (canonical text + reason)."""
    others = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in policy.allowed_columns[2:])
    sql = f"""
        SELECT * FROM (VALUES
            ('id2', '{SHA}', 2::BIGINT, '{RUN}', 'origin_number_required', NULL, '+38641000000'),
            ('id5', '{SHA}', 5::BIGINT, '{RUN}', 'duplicate_row', '+38640111111', '+38641000000')
        ) t(record_id, source_file_sha256, source_row, run_id, reason, origin_number, destination_number)
        CROSS JOIN (SELECT {others})"""
    return str(pq_write(work_dir / "rejected.parquet", sql))


@pytest.fixture()
def unparseable(work_dir, pq_write):
    """Two lines the reader could not split: only line and reason exist."""
    return str(pq_write(work_dir / "unparseable.parquet", """
        SELECT * FROM (VALUES (4::BIGINT, 'unparseable: too many columns'),
                              (9::BIGINT, 'unparseable: line size over maximum')) t(source_row, reason)"""))


def quarantine(lake, work_dir, policy, rejected=None, unparseable=None, night=NIGHT):
    return quarantine_rows(rejected, unparseable, lake, work_dir, policy, source_sha256=SHA, run_id=RUN,
                           night=night)


def test_partitioned_by_night(lake, work_dir, policy, rejected, unparseable):
    w = quarantine(lake, work_dir, policy, rejected, unparseable)
    assert w.zone == "quarantine"
    assert w.rows_written == 4                      # 2 rejected rows + 2 unparseable lines
    assert w.rows_by_partition == {NIGHT: 4}
    assert w.files == (f"quarantine/night={NIGHT}/{part_name(SHA)}",)
    assert (lake.root / w.files[0]).is_file()


def test_rows_and_lines_with_reasons(lake, work_dir, policy, rejected, unparseable, pq_read):
    quarantine(lake, work_dir, policy, rejected, unparseable)
    rows = pq_read(lake.zone("quarantine") / "*" / "*.parquet",
                   "SELECT CAST(night AS VARCHAR), source_row, reason, origin_number, destination_number"
                   " FROM t", hive=True)
    # Both kinds named by the line the record starts on, in the file's order.
    assert rows == [
        (NIGHT, 2, "origin_number_required", None, "+38641000000"),
        (NIGHT, 4, "unparseable: too many columns", None, None),
        (NIGHT, 5, "duplicate_row", "+38640111111", "+38641000000"),
        (NIGHT, 9, "unparseable: line size over maximum", None, None),
    ]


def test_unparseable_lines_carry_no_content(lake, work_dir, policy, unparseable, pq_read):
    quarantine(lake, work_dir, policy, unparseable=unparseable)
    nulls = " AND ".join(f"{c} IS NULL" for c in policy.allowed_columns)
    assert pq_read(lake.zone("quarantine") / "*" / "*.parquet", f"SELECT count(*) FROM t WHERE {nulls}") == [(2,)]


def test_record_id_of_an_unparseable_line(lake, work_dir, policy, unparseable, pq_read):
    # md5(sha ':' line), as validate names a record: one line is one record id, stable across re-runs.
    quarantine(lake, work_dir, policy, unparseable=unparseable)
    ids = pq_read(lake.zone("quarantine") / "*" / "*.parquet", "SELECT record_id, run_id FROM t ORDER BY source_row")
    assert ids == [(hashlib.md5(f"{SHA}:4".encode()).hexdigest(), RUN),
                   (hashlib.md5(f"{SHA}:9".encode()).hexdigest(), RUN)]


def test_columns_are_lineage_reason_and_allowed_only(lake, work_dir, policy, rejected, unparseable, pq_columns):
    w = quarantine(lake, work_dir, policy, rejected, unparseable)
    assert pq_columns(lake.root / w.files[0]) == [
        "record_id", "source_file_sha256", "source_row", "run_id", "reason",
        *policy.allowed_columns]


def test_nothing_to_quarantine(lake, work_dir, policy):
    w = quarantine(lake, work_dir, policy)
    assert (w.rows_written, w.files) == (0, ())
    assert list(lake.zone("quarantine").iterdir()) == []


def test_rerun_overwrites_the_same_part(lake, work_dir, policy, rejected, unparseable, pq_read):
    first = quarantine(lake, work_dir, policy, rejected, unparseable)
    second = quarantine(lake, work_dir, policy, rejected, unparseable)
    assert second.files == first.files
    assert pq_read(lake.zone("quarantine") / "*" / "*.parquet", "SELECT count(*) FROM t") == [(4,)]


def test_another_night_is_another_partition(lake, work_dir, policy, rejected):
    quarantine(lake, work_dir, policy, rejected)
    w = quarantine(lake, work_dir, policy, rejected, night="2026-11-23")
    assert w.files == (f"quarantine/night=2026-11-23/{part_name(SHA)}",)
    assert sorted(p.name for p in lake.zone("quarantine").iterdir()) == ["night=2026-11-22", "night=2026-11-23"]


def test_rejected_rows_keep_validates_record_id_and_lineage(lake, work_dir, policy, rejected, pq_read):
    quarantine(lake, work_dir, policy, rejected)
    rows = pq_read(lake.zone("quarantine") / "*" / "*.parquet",
                   "SELECT record_id, source_file_sha256, source_row, run_id FROM t ORDER BY source_row")
    assert rows == [("id2", SHA, 2, RUN), ("id5", SHA, 5, RUN)]
