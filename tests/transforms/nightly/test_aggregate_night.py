"""transforms/nightly/aggregate_night.py: the aggregates of every day tonight's files touched, recorded."""

from __future__ import annotations

from datetime import date

from tests.transforms.nightly.conftest import CSV
from transforms.audit_store.tables import AggregateRelease
from transforms.lake import Lake
from transforms.nightly.aggregate_night import aggregate_night
from transforms.nightly.audit_file import audit_file
from transforms.nightly.facts import AGGREGATES, read_night_rows
from transforms.nightly.plan import plan_night
from transforms.privacy.keys import demo_keyring


def test_each_touched_day_is_released_and_recorded(landing, tmp_path, policy, formats):
    # Twelve subscribers call at 10:00 on two days: one cell a day with twelve people, at least k.
    rows = b"".join(f"+3864011{i:04d},+38641333444,outgoing,2026-11-{day}T10:00:00Z,60,call\n".encode()
                    for day in (21, 22) for i in range(12))
    (landing / "a.csv").write_bytes(CSV + rows)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    audit_file(plan.to_audit[0], lake, policy, formats, run_id="r1", night="2026-11-22", keyring=demo_keyring())

    releases = aggregate_night(lake, policy, run_id="r1")
    assert sorted(releases) == ["2026-11-21", "2026-11-22"]
    tables = [t.name for t in policy.release_tables]
    assert all(r.k == policy.k_anonymity and [(t.table, t.cells, t.cells_released) for t in r.tables]
               == [(name, 1, 1) for name in tables] for r in releases.values())
    assert sorted(p.name for p in lake.zone("aggregates").iterdir()) == ["event_date=2026-11-21", "event_date=2026-11-22"]
    recorded = read_night_rows(lake, "r1", AGGREGATES, AggregateRelease)
    # One row per event date and release table, each with its clause and the share of events released.
    assert sorted((r.event_date, r.release_table, r.groups_released, r.events, r.share_events_released)
                  for r in recorded) == sorted((date(2026, 11, day), name, 1, 12, 1.0)
                                               for day in (21, 22) for name in tables)
    assert {r.clause for r in recorded} == {t.clause for t in policy.release_tables}


def test_a_night_without_analytics_releases_nothing(landing, tmp_path, policy):
    lake = Lake.at(tmp_path / "lake")
    plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")   # an empty landing folder
    assert aggregate_night(lake, policy, run_id="r1") == {}
    assert read_night_rows(lake, "r1", AGGREGATES, AggregateRelease) == ()
