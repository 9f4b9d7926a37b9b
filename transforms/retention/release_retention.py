"""Retention of aggregate releases, when the policy gives them a category (docs/design.md §3, §4).

Releases are anonymous by default (`anonymous_datasets`), and the sweep never touches them. An operator who
declares a retention category for `aggregates` (counted from the event date; the loader checks) has the
sweep delete a day's releases whole once due: the day is first marked retired (`privacy.releases.retire`,
so the night never releases it again from what is left of its rows), then each file of each release is
journaled and removed, and proven gone like every removed file. An active legal hold on the data set (or on
every data set) whose dates cover the day keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pyarrow.parquet as pq

from transforms.lake import Lake
from transforms.lake.commit import remove_tree, sha256_file
from transforms.policy import RetentionRule
from transforms.privacy.releases import day_folder, retire
from transforms.retention.holds import Hold
from transforms.retention.journal import Journal
from transforms.retention.plan import RetentionAction

DATASET = "aggregates"


def _days(lake: Lake) -> list[str]:
    return sorted(p.name.split("=", 1)[1] for p in lake.zone(DATASET).glob("event_date=*")
                  if any(p.glob("release=*/*")))


def _holds_of(day: date, holds: list[Hold]) -> list[str]:
    """Active holds that keep the day: on this data set or every one, dates covering it. A subject hold keeps it
    too — a release holds no subject's rows to tell apart, and more is kept, never less."""
    return sorted(h.hold_id for h in holds if h.dataset in (None, DATASET)
                  and (h.date_from is None or h.date_from <= day) and (h.date_to is None or day <= h.date_to))


def _rows(lake: Lake, day: str) -> tuple[int, int]:
    """Rows of the day's release tables, and its release files (tables and manifests)."""
    files = sorted(p for p in day_folder(lake, day).glob("release=*/*") if p.is_file())
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files if f.suffix == ".parquet"), len(files)


def plan_releases(lake: Lake, rule: RetentionRule, holds: list[Hold], as_of: date) -> list[RetentionAction]:
    """Per day with releases: deleted (due as of `as_of`), held, or kept (with its due date)."""
    actions = []
    for day in _days(lake):
        due = rule.due_on(date.fromisoformat(day))
        held = _holds_of(date.fromisoformat(day), holds)
        rows, files = _rows(lake, day)
        action = "kept" if as_of < due else "held" if held else "deleted"
        actions.append(RetentionAction(dataset=DATASET, partition=f"event_date={day}", category=rule.category,
                                       action=action, rows=rows, due_on=due.isoformat(),
                                       legal_basis=rule.legal_basis, clause=rule.clause,
                                       hold_ids=",".join(held) if action == "held" else None, files=files))
    return actions


def delete_releases(lake: Lake, actions: list[RetentionAction], journal: Journal,
                    say: Callable[[str], None]) -> None:
    """Delete the releases of every day planned `deleted`: each file journaled (intent, then done) and removed;
    the proofs and `retention_actions` rows come from the journal as for every removed file."""
    for a in (a for a in actions if a.action == "deleted"):
        day = a.partition.split("=", 1)[1]
        say(f"aggregates/{a.partition}: deleting its releases, {a.files:,} file(s), {a.rows:,} rows")
        for path in retire(lake, day):
            rows = pq.ParquetFile(path).metadata.num_rows if path.suffix == ".parquet" else 0
            entry = {"file": str(path.relative_to(lake.root)), "dataset": DATASET, "partition": a.partition,
                     "category": a.category, "action": "deleted", "rows_before": rows, "rows_removed": rows,
                     "rows_kept": 0, "due_on": a.due_on, "legal_basis": a.legal_basis, "clause": a.clause,
                     "before_sha256": sha256_file(path), "after_sha256": None, "evidence": None, "state": "intent"}
            journal.note(entry)
            path.unlink()
            journal.note({**entry, "state": "done"})
        for folder in day_folder(lake, day).glob("release=*"):
            remove_tree(folder)     # empty now; the day folder keeps the retired mark
