"""transforms/nightly/aggregate_night.py: each day released by the night its window closes, recorded."""

from __future__ import annotations

from datetime import date

from tests.transforms.nightly.conftest import CSV
from transforms.audit_store.tables import AggregateRelease, AggregateWaiting
from transforms.lake import Lake
from transforms.nightly.aggregate_night import aggregate_night
from transforms.nightly.audit_file import audit_file
from transforms.nightly.facts import AGGREGATES, AGGREGATES_WAITING, read_night_rows
from transforms.nightly.plan import plan_night
from transforms.privacy.keys import demo_keyring


def test_each_day_is_released_by_the_night_its_window_closes_and_recorded(landing, tmp_path, policy, formats):
    # Twelve subscribers call at 10:00 on two days: one cell a day with twelve people, at least k.
    rows = b"".join(f"+3864011{i:04d},+38641333444,outgoing,2026-11-{day}T10:00:00Z,60,call\n".encode()
                    for day in (21, 22) for i in range(12))
    (landing / "a.csv").write_bytes(CSV + rows)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    audit_file(plan.to_audit[0], lake, policy, formats, run_id="r1", night="2026-11-22", keyring=demo_keyring())

    # Policy aggregate_release: window_days 3, so 21 Nov is released by the night of 24 Nov, 22 Nov by 25 Nov.
    tonight = aggregate_night(lake, policy, run_id="r1", night="2026-11-22")
    assert tonight.released == () and not any(lake.zone("aggregates").iterdir())
    assert [(w.event_date, w.reason, w.window_closes_on) for w in tonight.waiting] == [
        ("2026-11-21", "window_open", "2026-11-24"), ("2026-11-22", "window_open", "2026-11-25")]
    assert [(r.event_date, r.reason, r.rows_waiting) for r in read_night_rows(lake, "r1", AGGREGATES_WAITING,
                                                                              AggregateWaiting)] == [
        (date(2026, 11, 21), "window_open", 12), (date(2026, 11, 22), "window_open", 12)]

    first = aggregate_night(lake, policy, run_id="r2", night="2026-11-24")
    assert [r.manifest.event_date for r in first.released] == ["2026-11-21"]
    second = aggregate_night(lake, policy, run_id="r3", night="2026-11-25")
    assert [r.manifest.event_date for r in second.released] == ["2026-11-22"]
    tables = [t.name for t in policy.release_tables]
    assert all(r.result.k == policy.k_anonymity and [(t.table, t.cells, t.cells_released) for t in r.result.tables]
               == [(name, 1, 1) for name in tables] for r in first.released + second.released)
    assert sorted(str(p.relative_to(lake.zone("aggregates"))) for p in lake.zone("aggregates").glob("*/*")) == [
        "event_date=2026-11-21/release=1", "event_date=2026-11-22/release=1"]
    rows = read_night_rows(lake, "r3", AGGREGATES, AggregateRelease)
    # One row per release table of the release made, each with its clause and the share of events released; and
    # those of 21 Nov's release standing from the night before (close records a release only once).
    recorded = [r for r in rows if r.event_date == date(2026, 11, 22)]
    assert sorted((r.event_date, r.release_table, r.groups_released, r.events, r.share_events_released,
                   r.release_kind, r.release_number, r.parts, r.rows_aggregated, r.late_rows_pending,
                   r.window_closes_on) for r in recorded) == sorted(
        (date(2026, 11, 22), name, 1, 12, 1.0, "day", 1, 1, 12, 0, date(2026, 11, 25)) for name in tables)
    assert sorted((r.event_date, r.release_number, r.release_table) for r in rows if r not in recorded) == sorted(
        (date(2026, 11, 21), 1, name) for name in tables)
    assert {r.clause for r in recorded} == {t.clause for t in policy.release_tables}


def test_a_night_without_analytics_releases_nothing(landing, tmp_path, policy):
    lake = Lake.at(tmp_path / "lake")
    plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")   # an empty landing folder
    done = aggregate_night(lake, policy, run_id="r1", night="2026-11-22")
    assert done.released == done.waiting == ()
    assert read_night_rows(lake, "r1", AGGREGATES, AggregateRelease) == ()


def test_a_release_whose_run_never_closed_is_recorded_once_by_the_next_run(landing, tmp_path, policy, formats):
    # Run r1 releases 22 Nov and is killed before its close: the release stands, no audit row says so. The next
    # night's run records it (from the rows kept with the release); the night after records nothing again.
    import duckdb

    from transforms.nightly.close import close_night

    rows = b"".join(f"+3864011{i:04d},+38641333444,outgoing,2026-11-22T10:00:00Z,60,call\n".encode() for i in range(12))
    (landing / "a.csv").write_bytes(CSV + rows)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-25", run_id="r1", trigger="test")
    audit_file(plan.to_audit[0], lake, policy, formats, run_id="r1", night="2026-11-25", keyring=demo_keyring())
    (made,) = aggregate_night(lake, policy, run_id="r1", night="2026-11-25").released   # ... and no close
    empty = tmp_path / "empty"
    empty.mkdir()

    def recorded() -> list[tuple]:
        con = duckdb.connect(str(lake.audit_db), read_only=True)
        try:
            return con.execute("SELECT run_id, event_date, release_number, release_table, groups_released,"
                               " rows_aggregated FROM aggregate_releases ORDER BY ALL").fetchall()
        finally:
            con.close()

    tables = sorted(t.name for t in policy.release_tables)
    for run_id, night in (("r2", "2026-11-26"), ("r3", "2026-11-27")):
        plan_night(empty, lake, policy, night=night, run_id=run_id, trigger="test")
        later = aggregate_night(lake, policy, run_id=run_id, night=night)
        assert later.released == () and later.standing == (made.manifest,)
        close_night(lake, policy, run_id=run_id)
        assert recorded() == [("r2", date(2026, 11, 22), 1, name, 1, 12) for name in tables]
