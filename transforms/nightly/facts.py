"""The night's audit facts on their way to the store: typed rows, left as fragments by each task.

The steps that run per file (parallel Airflow tasks, other processes) never open the audit store. Each
leaves a fragment under `audit/_pending/<run>/`: the rows its file adds to each per-file table, as the
store's own row dataclasses (`transforms.audit_store.tables`). The night-wide steps leave theirs the same
way, and `close_night` reads them all back, typed, and inserts them by column name in one transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from transforms.audit_store import tables
from transforms.lake import Lake
from transforms.lake.records import read_record, write_json
from transforms.nightly.plan import PlannedFile

T = TypeVar("T")
AGGREGATES = "aggregates.json"
AGGREGATES_WAITING = "aggregates_waiting.json"
ROAMING = "roaming.json"
MARKETING = "marketing.json"


@dataclass(frozen=True)
class FileFacts:
    """What the audit store learns about one file: its rows for each per-file table."""

    source_file: tables.SourceFile
    field_findings: tuple[tables.FieldFinding, ...] = ()
    validation_results: tuple[tables.ValidationResult, ...] = ()
    rejection_reasons: tuple[tables.RejectionReason, ...] = ()
    pseudonymization_log: tuple[tables.Pseudonymization, ...] = ()
    analytics_findings: tuple[tables.AnalyticsFinding, ...] = ()
    analytics_event_dates: tuple[str, ...] = ()     # days the file added analytics rows to (YYYY-MM-DD)

    def rows(self) -> tuple[tuple, ...]:
        """Every row of this file, one tuple per table (the order close_night inserts them in)."""
        return ((self.source_file,), self.field_findings, self.validation_results, self.rejection_reasons,
                self.pseudonymization_log, self.analytics_findings)


def _file_path(lake: Lake, run_id: str, planned: PlannedFile) -> Path:
    # Per file and path: the same bytes under two names are two files of the night.
    key = hashlib.sha256(f"{planned.sha256}:".encode() + planned.path_bytes).hexdigest()[:24]
    return lake.fragments_dir(run_id) / f"file-{key}.json"


def write_file_facts(lake: Lake, run_id: str, planned: PlannedFile, facts: FileFacts) -> None:
    write_json(_file_path(lake, run_id, planned), facts)


def read_file_facts(lake: Lake, run_id: str, planned: PlannedFile) -> FileFacts | None:
    """The file's facts, or None when its task left none (it died before the end)."""
    path = _file_path(lake, run_id, planned)
    return read_record(path, FileFacts) if path.exists() else None


def analytics_event_dates(lake: Lake, run_id: str) -> list[str]:
    """Every day tonight's files added analytics rows to, sorted."""
    folder = lake.fragments_dir(run_id)
    return sorted({d for p in folder.glob("file-*.json") for d in read_record(p, FileFacts).analytics_event_dates})


def write_night_rows(lake: Lake, run_id: str, name: str, rows: tuple) -> None:
    """Rows of a night-wide step (`AGGREGATES`, `AGGREGATES_WAITING`, `ROAMING`, `MARKETING`), replacing what a
    retried step left."""
    write_json(lake.fragments_dir(run_id) / name, rows)


def read_night_rows(lake: Lake, run_id: str, name: str, row_type: type[T]) -> tuple[T, ...]:
    path = lake.fragments_dir(run_id) / name
    return read_record(path, tuple[row_type, ...]) if path.exists() else ()
