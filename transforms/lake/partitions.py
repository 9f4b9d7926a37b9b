"""How a step's rows enter a zone: one part file per partition, named by the source file.

Each source file owns one part per partition (`part-<sha256 prefix>.parquet`), so a re-run replaces the
same files with the same rows and nothing is counted twice; a file that fails is withdrawn by the same
name. Parts are written to the run's work area and renamed into the zone one by one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from transforms.lake.commit import commit_file, remove_tree
from transforms.lake.connection import execute
from transforms.lake.zones import Lake


@dataclass(frozen=True)
class ZoneWrite:
    """Rows and files one step committed to a zone."""

    zone: str
    rows_written: int
    rows_by_partition: dict[str, int] = field(default_factory=dict)
    files: tuple[str, ...] = ()          # relative to the lake root


# A part's column keeps a Parquet dictionary only while a row group holds at most this many values of it (DuckDB's
# DICTIONARY_SIZE_LIMIT counts entries): a number, time or amount that differs on every row is written plainly at
# once rather than after a dictionary that fails. At 4.5M rows the billing and analytics parts took 0.9 and 0.65
# CPU s less (of ~8.7 and ~7.3), for files ~2% larger (benchmarks/README.md, issue 17).
PART_DICTIONARY_ENTRIES = 1000


def part_name(source_sha256: str) -> str:
    return f"part-{source_sha256[:16]}.parquet"


# A part's subject index (`transforms.privacy.subject_index`) sits beside it under the part's name with this
# suffix instead of `.parquet`: the zone's readers (`*.parquet` globs) never see it, its folder gives it the
# zone's mode, and whoever removes or rewrites the part finds it by name.
INDEX_SUFFIX = ".tokens"


_PARTITION = re.compile(r"^[a-z_]+=[0-9-]+$")


def part_files(lake: Lake, zone: str) -> list[Path]:
    """A zone's part files, in partition folders (`name=value`); none under a dot folder (a release's links to
    parts, `Lake.release_snapshots`)."""
    root = lake.zone(zone)
    return sorted(p for p in root.rglob("part*.parquet") if _PARTITION.match(p.parent.name)
                  and not any(x.startswith(".") for x in p.relative_to(root).parts))


def index_path(part: Path) -> Path:
    """Where the subject index of the part file `part` is (whether or not it exists)."""
    return part.with_suffix(INDEX_SUFFIX)


def commit_partitions(src_dir: Path, lake: Lake, zone: str, source_sha256: str) -> ZoneWrite:
    """Move `src_dir/<column>=<value>/<one file>.parquet` into `zone`, one part per partition."""
    counts, files = {}, []
    for part_dir in sorted(p for p in Path(src_dir).iterdir() if p.is_dir()):
        written = sorted(part_dir.glob("*.parquet"))
        assert len(written) == 1, f"expected one file per partition in {part_dir.name}"
        counts[part_dir.name.split("=", 1)[1]] = pq.read_metadata(written[0]).num_rows
        final = lake.zone(zone) / part_dir.name / part_name(source_sha256)
        index_path(final).unlink(missing_ok=True)   # an index is never older than its part's rows
        commit_file(written[0], final)   # commit point for this partition
        files.append(str(final.relative_to(lake.root)))
    return ZoneWrite(zone, sum(counts.values()), counts, tuple(files))


def write_partitioned(con, query: str, params: dict, lake: Lake, zone: str, partition_col: str,
                      work_dir: Path, source_sha256: str) -> ZoneWrite:
    """Write the rows of `query` (over `con`, with `params`) into `zone`, one part file per value of
    `partition_col`, atomically per file. A step passes its own query: the rows are written once, not first
    to a file of their own and copied."""
    out = work_dir / f"{zone}_out"
    remove_tree(out)
    out.mkdir(parents=True)
    execute(con, f"""
        COPY ({query})
        TO $dst (FORMAT parquet, COMPRESSION zstd, DICTIONARY_SIZE_LIMIT {PART_DICTIONARY_ENTRIES},
                 PARTITION_BY ({partition_col}), FILENAME_PATTERN 'part', OVERWRITE_OR_IGNORE)""",
            {**params, "dst": str(out)})
    written = commit_partitions(out, lake, zone, source_sha256)
    remove_tree(out)
    return written


def withdraw_parts(lake: Lake, zones: tuple[str, ...], source_sha256: str) -> None:
    """Remove every part a source file committed to `zones` (a file that failed leaves nothing behind)."""
    for zone in zones:
        for part in lake.zone(zone).glob(f"*/{part_name(source_sha256)}"):
            index_path(part).unlink(missing_ok=True)     # the index first: it never outlives its part
            part.unlink()
