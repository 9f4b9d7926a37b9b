"""The night's k-anonymous aggregates: every day whose window closed is released, once (docs/design.md §4).

The run of a night releases each day whose `aggregate_release` window closed by that night and that has no
release yet, and the late rows of released days once they pass k on their own (`privacy.releases`); a
released folder is never rewritten, so a re-run changes nothing. Each release, and each day's rows that
wait (window open, or below k), is left as rows for `aggregate_releases` and `aggregate_waiting`.
"""

from __future__ import annotations

from datetime import date

from transforms.audit_store.tables import AggregateRelease, AggregateWaiting
from transforms.lake import Lake
from transforms.nightly.facts import AGGREGATES, AGGREGATES_WAITING, write_night_rows
from transforms.policy import Policy
from transforms.privacy.releases import ReleaseNight, release_night


def aggregate_night(lake: Lake, policy: Policy, *, run_id: str, night: str | date) -> ReleaseNight:
    """Release what the night's window allows; leave the `aggregate_releases` and `aggregate_waiting` rows."""
    night = date.fromisoformat(night) if isinstance(night, str) else night
    releases = release_night(lake, policy, night, run_id=run_id)
    # The releases made tonight, and those made before that still stand: close records each release once,
    # so one that a killed run made and never recorded is recorded now (docs/design.md §4).
    write_night_rows(lake, run_id, AGGREGATES, tuple(AggregateRelease(
        run_id=run_id, event_date=date.fromisoformat(t.event_date), dataset="aggregates", k=m.k,
        groups_total=t.cells, groups_released=t.cells_released,
        groups_suppressed_primary=t.cells_suppressed_primary,
        groups_suppressed_secondary=t.cells_suppressed_secondary, rows_suppressed=t.events - t.events_released,
        release_table=t.table, clause=t.clause, other_cells_released=t.other_cells_released, events=t.events,
        events_released=t.events_released, share_events_released=round(t.share_events_released, 6),
        release_kind=m.kind, release_number=m.release, parts=len(m.parts), rows_aggregated=m.rows,
        late_rows_pending=m.late_rows_pending, window_closes_on=date.fromisoformat(m.window_closes_on))
        for m in (*(rel.manifest for rel in releases.released), *releases.standing) for t in m.tables))
    write_night_rows(lake, run_id, AGGREGATES_WAITING, tuple(AggregateWaiting(
        run_id=run_id, event_date=date.fromisoformat(w.event_date), reason=w.reason, parts=w.parts,
        rows_waiting=w.rows, window_closes_on=date.fromisoformat(w.window_closes_on)) for w in releases.waiting))
    return releases
