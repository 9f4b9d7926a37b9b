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

import pyarrow.parquet as pq

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


def commit_partitions(src_dir: Path, lake: Lake, zone: str, source_sha256: str) -> ZoneWrite:
    """Move `src_dir/<column>=<value>/<one file>.parquet` into `zone`, one part per partition.

    The part is named by the source file's sha256, so a re-run replaces the
    same file with the same rows instead of adding a second copy.
    """
    counts, files = {}, []
    for part_dir in sorted(p for p in Path(src_dir).iterdir() if p.is_dir()):
        written = sorted(part_dir.glob("*.parquet"))
        assert len(written) == 1, f"expected one file per partition in {part_dir.name}"
        counts[part_dir.name.split("=", 1)[1]] = pq.read_metadata(written[0]).num_rows
        final = lake.zone(zone) / part_dir.name / part_name(source_sha256)
        lake_mod.commit_file(written[0], final)   # commit point for this partition
        files.append(str(final.relative_to(lake.root)))
    return ZoneWrite(zone, sum(counts.values()), counts, tuple(files))


def write_partitioned(src_parquet: str, lake: Lake, zone: str, partition_col: str, work_dir: Path,
                      source_sha256: str, select: str = "*") -> ZoneWrite:
    """Write `src_parquet` into `zone`, one part file per value of `partition_col`, atomically per file."""
    out = work_dir / f"{zone}_out"
    lake_mod.remove_tree(out)
    out.mkdir(parents=True)
    con = lake_mod.connect(work_dir / "tmp")
    try:
        lake_mod.execute(con, f"""
            COPY (SELECT {select} FROM read_parquet($src))
            TO $dst (FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({partition_col}),
                     FILENAME_PATTERN 'part', OVERWRITE_OR_IGNORE)""",
                         {"src": src_parquet, "dst": str(out)})
    finally:
        con.close()
    written = commit_partitions(out, lake, zone, source_sha256)
    lake_mod.remove_tree(out)
    return written


def load_billing(valid_dir: str, lake: Lake, work_dir: Path, *, source_sha256: str) -> ZoneWrite:
    """Commit a file's valid rows (already laid out by event date) to the billing zone."""
    return commit_partitions(Path(valid_dir), lake, "billing", source_sha256)
