"""The night's k-anonymous aggregates: every event date tonight's files added analytics rows to.

Each date is aggregated over all of its analytics rows (every file, every night so far), so a late file
for an earlier day updates that day, and a re-run gives the same release (docs/design.md §4).
"""

from __future__ import annotations

from datetime import date

from transforms.audit_store.tables import AggregateRelease
from transforms.lake import Lake
from transforms.nightly.facts import AGGREGATES, analytics_event_dates, write_night_rows
from transforms.policy import Policy
from transforms.privacy.aggregates import AggregateResult, aggregate_day


def aggregate_night(lake: Lake, policy: Policy, *, run_id: str) -> dict[str, AggregateResult]:
    """Recompute the aggregates of tonight's event dates; leave their `aggregate_releases` rows."""
    releases = {}
    for day in analytics_event_dates(lake, run_id):
        releases[day] = aggregate_day(f"{lake.zone('analytics')}/event_date={day}/*.parquet", policy,
                                      lake.work_dir(run_id) / f"aggregate-{day}", lake.zone("aggregates"))
    write_night_rows(lake, run_id, AGGREGATES, tuple(AggregateRelease(
        run_id=run_id, event_date=date.fromisoformat(t.event_date), dataset="aggregates", k=r.k,
        groups_total=t.cells, groups_released=t.cells_released,
        groups_suppressed_primary=t.cells_suppressed_primary,
        groups_suppressed_secondary=t.cells_suppressed_secondary, rows_suppressed=t.events - t.events_released,
        release_table=t.table, clause=t.clause, other_cells_released=t.other_cells_released, events=t.events,
        events_released=t.events_released, share_events_released=round(t.share_events_released, 6))
        for r in releases.values() for t in r.tables))
    return releases
