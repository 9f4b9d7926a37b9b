"""transforms/privacy/aggregates.py: the release tables' cells from the analytics rows, and the day's release.

Expected figures are worked out by hand from the rows and the policy's release tables (day × service; day ×
area × service; hour × area × service; day × called zone; day × visited zone); what may be released is
`suppression`'s (see test_suppression.py). k from the policy, 3 here.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal

import duckdb

from tests.transforms.privacy.conftest import (
    DAY, cells_of, generated_rows, read_output, row, run_aggregates, write_rows,
)
from transforms.lake.connection import connect
from transforms.privacy.aggregates import aggregate_day, build_cells


def cells(tmp_path, rows: list[tuple], policy, **kwargs) -> tuple[int, dict]:
    """build_cells over `rows`: (rows read, {table: [(dimension values…, subscribers, events, minutes, bytes,
    revenue, parent's dimension values or None)]}), each table's cells in order."""
    src = write_rows(tmp_path / "analytics.parquet", rows)
    con = connect(tmp_path / f"tmp-{kwargs}")
    try:
        rows_in = build_cells(con, str(src), policy, **kwargs)
        out = {}
        for no, t in enumerate(policy.release_tables):
            cols = ", ".join(f"c.{d}" for d in ("event_date", *policy.release_columns(t.name)))
            parent = ", ".join(f"p.{d}" for d in policy.release_columns(t.within)) if t.within else "NULL"
            out[t.name] = con.execute(f"""
                SELECT {cols}, c.subscribers, c.events, c.minutes, c.data_volume_bytes, c.revenue, [{parent}]
                FROM cells c LEFT JOIN cells p ON p.cell_id = c.parent_id WHERE c.table_no = {no}
                ORDER BY ALL""").fetchall()
    finally:
        con.close()
    return rows_in, out


def test_build_cells_of_every_table(tmp_path, policy):
    rows = [row("a", duration=60, amount="0.1000"), row("a", duration=120, amount="0.2000"),
            row("b", duration=30, amount="0.0500", cc="43"),                         # call at 00: a, b
            row("a", hour=1, service="sms", area=None, duration=0, amount="0.0100"),  # sms at 01, no area
            row("c", service="call", direction="incoming", cc="386", duration=60, service_area="roaming",
                network="23201", other_network="29340"),                              # c roaming in Austria
            row("d", day="2026-11-23", service="data", area="LA2", cc=None, duration=0, volume=1000)]
    rows_in, got = cells(tmp_path, rows, policy)
    d1, d2 = date(2026, 11, 22), date(2026, 11, 23)
    h0, h1, h24 = datetime(2026, 11, 22, 0), datetime(2026, 11, 22, 1), datetime(2026, 11, 23, 0)
    m = Decimal
    assert rows_in == 6
    assert got["day_service"] == [     # date, service; subscribers, events, minutes, bytes, revenue; no parent
        (d1, "call", 3, 4, m("4.50"), 0, m("0.4500"), [None]),
        (d1, "sms", 1, 1, m("0.00"), 0, m("0.0100"), [None]),
        (d2, "data", 1, 1, m("0.00"), 1000, m("0.1000"), [None])]
    assert got["day_area_service"] == [
        (d1, "call", "LA1", 3, 4, m("4.50"), 0, m("0.4500"), ["call"]),
        (d1, "sms", "unknown", 1, 1, m("0.00"), 0, m("0.0100"), ["sms"]),
        (d2, "data", "LA2", 1, 1, m("0.00"), 1000, m("0.1000"), ["data"])]
    assert got["hour_area_service"] == [
        (d1, h0, "call", "LA1", 3, 4, m("4.50"), 0, m("0.4500"), ["call", "LA1"]),
        (d1, h1, "sms", "unknown", 1, 1, m("0.00"), 0, m("0.0100"), ["sms", "unknown"]),
        (d2, h24, "data", "LA2", 1, 1, m("0.00"), 1000, m("0.1000"), ["data", "LA2"])]
    assert got["day_called_zone"] == [  # 386 home, 43 Austria; data has no called country
        (d1, "call", "eu_eea", 1, 1, m("0.50"), 0, m("0.0500"), ["call"]),
        (d1, "call", "home", 2, 3, m("4.00"), 0, m("0.4000"), ["call"]),
        (d1, "sms", "home", 1, 1, m("0.00"), 0, m("0.0100"), ["sms"]),
        (d2, "data", None, 1, 1, m("0.00"), 1000, m("0.1000"), ["data"])]
    assert got["day_visited_zone"] == [  # c's incoming call was served in Austria (its termination network)
        (d1, "call", "eu_eea", 1, 1, m("1.00"), 0, m("0.1000"), ["call"]),
        (d1, "call", "home", 2, 3, m("3.50"), 0, m("0.3500"), ["call"]),
        (d1, "sms", "home", 1, 1, m("0.00"), 0, m("0.0100"), ["sms"]),
        (d2, "data", "home", 1, 1, m("0.00"), 1000, m("0.1000"), ["data"])]


def test_a_subscriber_with_many_events_counts_once(tmp_path, policy_k3):
    rows = [row("a", day="2026-11-21") for _ in range(50)] + [row("b", day="2026-11-21")]
    rows += [row("a") for _ in range(50)] + [row("b"), row("c")]
    result, out = run_aggregates(tmp_path, rows, policy_k3)
    assert all(out["2026-11-21"][t] == [] for t in out["2026-11-21"])        # 51 events, but only 2 subscribers
    assert [(c["subscribers"], c["events"]) for c in cells_of(out, DAY, "hour_area_service")] == [(3, 52)]
    first = [t for t in result.tables if t.event_date == "2026-11-21"]
    assert [(t.cells_suppressed_primary, t.events, t.events_released) for t in first] == [(1, 51, 0)] * 5


def test_rows_without_a_token_are_events_not_people(tmp_path, policy_k3):
    rows = [row(1), row(2), (None, *row(3)[1:]), (None, *row(4)[1:])]          # 2 people, 4 events
    rows += [(None, *row(5, hour=1)[1:])]                                      # no person at all
    result, out = run_aggregates(tmp_path, rows, policy_k3)
    assert all(cells == [] for cells in out[DAY].values())
    hourly = next(t for t in result.tables if t.table == "hour_area_service")
    assert (hourly.cells_suppressed_primary, hourly.events, hourly.events_released, result.rows_in) == (2, 5, 0, 5)


def test_tokens_of_two_keys_are_not_counted_as_more_people(tmp_path, policy_k3):
    # After a key rotation a day's late rows carry tokens of the new key: the same two people then hold four
    # tokens. They must not pass for four subscribers.
    rows = [row(p, day="2026-11-21") for p in ("a", "b", "a@k2", "b@k2")]
    rows += [row(p) for p in ("c", "d", "e", "c@k2", "d@k2", "e@k2")]
    src = write_rows(tmp_path / "analytics.parquet", rows, second_key=("a@k2", "b@k2", "c@k2", "d@k2", "e@k2"))
    result = aggregate_day(str(src), policy_k3, tmp_path / "work", tmp_path / "out")
    out = read_output(tmp_path / "out")
    assert all(cells == [] for cells in out["2026-11-21"].values())
    for table in out[DAY]:
        assert [(c["subscribers"], c["events"]) for c in out[DAY][table]] == [(3, 6)]
    assert sum(t.cells_suppressed_primary for t in result.tables) == 5     # the first day's cell of each table


def test_missing_area_is_the_unknown_area(tmp_path, policy_k3):
    rows = [row(1, area=None), row(2, area=None), row(3, area="unknown")]
    _, out = run_aggregates(tmp_path, rows, policy_k3)
    assert [(c["area"], c["subscribers"]) for c in cells_of(out, DAY, "day_area_service")] == [("unknown", 3)]


def test_outputs_hold_no_subscriber_token(tmp_path, policy_k3):
    rows = generated_rows(4)
    result, _ = run_aggregates(tmp_path, rows, policy_k3)
    tokens = sorted({r[0] for r in rows})
    files = sorted((tmp_path / "out").rglob("*.parquet"))
    assert len(files) == len(result.files) == 2 * len(policy_k3.release_tables)
    con = duckdb.connect()
    try:
        for f in files:
            cols = [d[0] for d in con.execute(f"SELECT * FROM read_parquet('{f}') LIMIT 0").description]
            assert "origin_number" not in cols
            text = con.execute(f"SELECT string_agg(concat_ws('|', {', '.join(cols)}), '|') FROM read_parquet('{f}')"
                               ).fetchone()[0] or ""
            data = f.read_bytes()
            for t in tokens:
                assert t not in text
                assert t.encode() not in data and t[:16].encode() not in data
    finally:
        con.close()


def test_layout_rerun_hive_input_and_a_list_of_files(tmp_path, policy_k3):
    # The analytics zone keeps the date in the folder name only, as the nightly run passes it.
    zone = tmp_path / "analytics" / f"event_date={DAY}"
    zone.mkdir(parents=True)
    rows = [row(i, hour=i % 2) for i in range(8)]
    con = duckdb.connect()
    write_rows(tmp_path / "rows.parquet", rows)
    for part, (start, stop) in enumerate(((0, 5), (5, 8))):
        con.execute(f"COPY (SELECT * EXCLUDE (event_date) FROM '{tmp_path}/rows.parquet' LIMIT {stop - start}"
                    f" OFFSET {start}) TO '{zone}/part-{part}.parquet'")
    con.close()
    out = tmp_path / "aggregates"
    first = aggregate_day(f"{tmp_path}/analytics/event_date={DAY}/*.parquet", policy_k3, tmp_path / "w", out)
    before = {p.name: p.read_bytes() for p in (out / f"event_date={DAY}").iterdir()}
    # A late release reads an explicit list of part files: the same rows give the same release.
    second = aggregate_day([str(zone / "part-0.parquet"), str(zone / "part-1.parquet")], policy_k3,
                           tmp_path / "w", out)
    assert sorted(p.name for p in out.iterdir()) == [f"event_date={DAY}"]         # no staging left over
    assert sorted(before) == sorted(f"{t.name}.parquet" for t in policy_k3.release_tables)
    assert {p.name: p.read_bytes() for p in (out / f"event_date={DAY}").iterdir()} == before
    assert dataclasses.replace(first, seconds=0, files=()) == dataclasses.replace(second, seconds=0, files=())
    hourly = [t for t in first.tables if t.table == "hour_area_service"]
    assert [(t.cells, t.cells_released, t.events_released) for t in hourly] == [(2, 2, 8)]
    assert first.clause == policy_k3.analytics_clause
    assert first.event_dates == (DAY,) and first.rows_in == 8
    assert not (tmp_path / "w" / "aggregate_stage").exists()


def test_atoms_named_by_hash_or_by_their_keys_give_the_same_cells(tmp_path, policy):
    # The fast path names an atom by the hash of its keys; the exact path (taken when two atoms share a
    # hash) by the keys themselves. Both must give identical cells in every table.
    rows = generated_rows(3)
    by_hash, exact = (cells(tmp_path, rows, policy, exact_keys=e) for e in (False, True))
    assert by_hash == exact and len(by_hash[1]["hour_area_service"]) > 50


def test_subscribers_counted_in_passes_equal_one_pass(tmp_path, policy, monkeypatch):
    # A big day's distinct pairs are built and counted over ranges of the subscriber's hash, pass by pass
    # (memory stays that of one pass); distinct subscribers of disjoint ranges add up, so every cell of every
    # table must be the same as in one pass, and so must the pairs the suppression reads afterwards.
    import transforms.privacy.aggregates as aggregates

    rows = generated_rows(3)
    for name in ("one", "several"):
        (tmp_path / name).mkdir()
    one = cells(tmp_path / "one", rows, policy)
    monkeypatch.setattr(aggregates, "PAIRS_ROWS_PER_PASS", max(1, len(rows) // 7))
    several = cells(tmp_path / "several", rows, policy)
    assert several == one and len(one[1]["day_area_service"]) > 5
    assert max(s[-6] for s in one[1]["day_service"]) > 3       # cells of several subscribers were counted
