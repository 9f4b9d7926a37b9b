"""Lateness — a file's valid rows by event date against the night: arrived late, or dated after it.

Validate lays a file's valid rows out by event date (`event_date=YYYY-MM-DD/`, the UTC day of start_time,
as the billing zone partitions them). This step reads those days' row counts and counts the rows dated
more than the policy's `lateness.window_days` before the night, and the rows dated after the night. Both
are loaded as delivered; the counts go to the file's `source_files` row, the night's summary and the
report (docs/design.md §9). Counts and dates only, never a value of a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from transforms.lake.connection import connect, execute
from transforms.policy import Policy

PARTITION = "event_date"


@dataclass(frozen=True)
class LatenessResult:
    """One file's valid rows against the night and the policy's lateness window (counts and days only)."""

    night: date
    window_days: int                          # the policy's lateness.window_days, as applied
    clause: str
    rows_counted: int                         # valid rows with an event date
    rows_before_window: int                   # dated more than window_days before the night
    rows_after_night: int                     # dated after the night
    days_before_window: tuple[date, ...] = ()   # the event dates of those rows, ascending
    days_after_night: tuple[date, ...] = ()


def count_lateness(valid_dir: str | Path, night: str | date, policy: Policy,
                   temp_dir: Path | None = None) -> LatenessResult:
    """Count a file's valid rows (`valid_dir/event_date=…/*.parquet`) dated before the window or after the night."""
    night = date.fromisoformat(night) if isinstance(night, str) else night
    rule = policy.lateness
    base = dict(night=night, window_days=rule.window_days, clause=rule.clause)
    folder = Path(valid_dir)
    if not any(folder.glob(f"{PARTITION}=*/*.parquet")):
        return LatenessResult(**base, rows_counted=0, rows_before_window=0, rows_after_night=0)
    con = connect(temp_dir)
    try:
        # Row counts per day come from the Parquet footers; the day is the folder's name (hive partition).
        source = f"read_parquet($glob, hive_partitioning = true, hive_types = {{'{PARTITION}': DATE}})"
        (counted, early, after, early_days, after_days), = execute(con, f"""
            WITH days AS (SELECT {PARTITION} AS day, count(*) AS n FROM {source} GROUP BY ALL)
            SELECT coalesce(sum(n), 0),
                   coalesce(sum(n) FILTER (WHERE day < CAST($night AS DATE) - CAST($window AS INTEGER)), 0),
                   coalesce(sum(n) FILTER (WHERE day > CAST($night AS DATE)), 0),
                   coalesce(list(day ORDER BY day) FILTER (WHERE day < CAST($night AS DATE) - CAST($window AS INTEGER)),
                            []),
                   coalesce(list(day ORDER BY day) FILTER (WHERE day > CAST($night AS DATE)), [])
            FROM days""", {"glob": str(folder / f"{PARTITION}=*" / "*.parquet"), "night": night,
                           "window": rule.window_days}).fetchall()
    finally:
        con.close()
    return LatenessResult(**base, rows_counted=int(counted), rows_before_window=int(early),
                          rows_after_night=int(after), days_before_window=tuple(early_days),
                          days_after_night=tuple(after_days))
