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
        run_id=run_id, event_date=date.fromisoformat(day), dataset="aggregates", k=r.k,
        groups_total=r.groups_total, groups_released=r.groups_released,
        groups_suppressed_primary=r.groups_suppressed_primary,
        groups_suppressed_secondary=r.groups_suppressed_secondary, rows_suppressed=r.rows_suppressed)
        for day, r in releases.items()))
    return releases
