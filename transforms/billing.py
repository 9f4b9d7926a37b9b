"""Step 4 — billing zone: valid rows of a file into `billing/event_date=…/`.

Allowed columns plus lineage, hive-partitioned by event date (UTC). Each
source file owns one part file per partition, named by its sha256, so a re-run
overwrites the same files with the same rows and nothing is counted twice.
Parts are written to the work area and renamed into the zone one by one;
a crash leaves either the old file or the new one in view, never half of one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transforms import lake as lake_mod
from transforms.lake import Lake


@dataclass(frozen=True)
class ZoneWrite:
    """Rows and files one step committed to a zone."""

    zone: str
    rows_written: int
    rows_by_partition: dict[str, int] = field(default_factory=dict)
    files: tuple[str, ...] = ()


def part_name(source_sha256: str) -> str:
    return f"part-{source_sha256[:16]}.parquet"


def write_partitioned(src_parquet: str, lake: Lake, zone: str, partition_col: str, work_dir: Path,
                      source_sha256: str, select: str = "*") -> ZoneWrite:
    """Write `src_parquet` into `zone`, one part file per partition value, atomically per file."""
    out = work_dir / f"{zone}_out"
    lake_mod.remove_tree(out)
    con = lake_mod.connect(work_dir / "tmp")
    try:
        counts = dict(
            (str(k), v) for k, v in lake_mod.execute(
                con, f"SELECT {partition_col}, count(*) FROM read_parquet($src) GROUP BY 1 ORDER BY 1",
                {"src": src_parquet}).fetchall()
        )
        if not counts:
            return ZoneWrite(zone, 0)
        lake_mod.execute(con, f"""
            COPY (SELECT {select} FROM read_parquet($src))
            TO $dst (FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({partition_col}),
                     FILENAME_PATTERN 'part', OVERWRITE_OR_IGNORE)""",
                         {"src": src_parquet, "dst": str(out)})
    finally:
        con.close()
    files = []
    for part_dir in sorted(out.iterdir()):
        written = sorted(part_dir.glob("*.parquet"))
        assert len(written) == 1, f"expected one file per partition in {part_dir.name}"
        final = lake.zone(zone) / part_dir.name / part_name(source_sha256)
        lake_mod.commit_file(written[0], final)   # commit point for this partition
        files.append(str(final.relative_to(lake.root)))
    lake_mod.remove_tree(out)
    return ZoneWrite(zone, sum(counts.values()), counts, tuple(files))


def load_billing(valid_path: str, lake: Lake, work_dir: Path, *, source_sha256: str) -> ZoneWrite:
    """Commit a file's valid rows to the billing zone."""
    return write_partitioned(valid_path, lake, "billing", "event_date", work_dir, source_sha256)
