"""Step 5 — quarantine zone: every rejected row of a file, with its reason.

Two kinds of rejected rows meet here: rows that failed a rule or repeated an
earlier record (allowed columns as text, plus reason), and records the reader
could not parse (only the line and the reason: such a record cannot be split
into columns, so none of its content is kept). Both are named by `source_row`,
the physical line the record starts on. Partitioned by the night the file was
processed.
"""

from __future__ import annotations

from pathlib import Path

from transforms.lake import Lake
from transforms.lake.connection import connect
from transforms.lake.partitions import ZoneWrite, write_partitioned
from transforms.policy import Policy


def quarantine_rows(rejected_path: str | None, unparseable_path: str | None, lake: Lake, work_dir: Path,
                    policy: Policy, *, source_sha256: str, run_id: str, night: str) -> ZoneWrite:
    """Commit the rejected rows of one file to `quarantine/night=…/`."""
    parts = []
    canon = ", ".join(policy.allowed_columns)
    if rejected_path:
        parts.append(f"SELECT record_id, source_file_sha256, source_row, run_id, reason, {canon}"
                     " FROM read_parquet($rejected)")
    if unparseable_path:
        nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in policy.allowed_columns)
        parts.append("SELECT md5($sha || ':' || source_row) AS record_id, $sha AS source_file_sha256,"
                     " source_row, $run_id AS run_id, reason,"
                     f" {nulls} FROM read_parquet($unparseable)")
    if not parts:
        return ZoneWrite("quarantine", 0)
    con = connect(work_dir / "tmp")
    try:
        return write_partitioned(
            con, f"SELECT CAST($night AS DATE) AS night, * FROM ({' UNION ALL '.join(parts)}) ORDER BY source_row",
            {"rejected": rejected_path, "unparseable": unparseable_path, "sha": source_sha256, "run_id": run_id,
             "night": night}, lake, "quarantine", "night", work_dir, source_sha256)
    finally:
        con.close()
