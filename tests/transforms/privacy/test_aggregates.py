"""transforms/privacy/aggregates.py: cells and marginal totals from the analytics rows, and the day's release.

Expected figures are worked out by hand from the rows; what may be released is `suppression`'s (see
test_suppression.py). k from the policy, 3 here.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal

import duckdb

from tests.transforms.privacy.conftest import (
    DAY, generated_rows, read_output, row, run_aggregates, write_rows,
)
from transforms.lake.connection import connect
from transforms.privacy.aggregates import aggregate_day, build_groups


def groups(tmp_path, rows: list[tuple], **kwargs) -> tuple[int, list[tuple], list[tuple]]:
    """build_groups over `rows`: (rows read, cells without their hash, totals), in id order."""
    src = write_rows(tmp_path / "analytics.parquet", rows)
    con = connect(tmp_path / f"tmp-{kwargs}")
    try:
        rows_in = build_groups(con, str(src), **kwargs)
        cells = con.execute("SELECT * EXCLUDE (ck) FROM cells ORDER BY ALL").fetchall()
        totals = con.execute("SELECT * FROM totals ORDER BY ALL").fetchall()
    finally:
        con.close()
    return rows_in, cells, totals


def test_build_groups_cells_and_totals(tmp_path):
    rows = [row("a", duration=60, amount="0.1000"), row("a", duration=120, amount="0.2000"),
            row("b", duration=30, amount="0.0500"),                                  # call at 00: a, b
            row("a", hour=1, service="sms", area=None, duration=0, amount="0.0100"),  # sms at 01, no area
            row("c", day="2026-11-23", service="data", area="LA2", cc=None, duration=0, volume=1000)]
    rows_in, cells, totals = groups(tmp_path, rows)
    d1, d2 = date(2026, 11, 22), date(2026, 11, 23)
    h0, h1, h24 = datetime(2026, 11, 22, 0), datetime(2026, 11, 22, 1), datetime(2026, 11, 23, 0)
    assert rows_in == 5
    assert cells == [   # id; date, hour, service, area, service area, cc; subscribers, events, minutes, bytes, revenue
        (1, d1, h0, "call", "LA1", "home", "386", 2, 3, Decimal("3.50"), 0, Decimal("0.3500")),
        (2, d1, h1, "sms", "unknown", "home", "386", 1, 1, Decimal("0.00"), 0, Decimal("0.0100")),
        (3, d2, h24, "data", "LA2", "home", None, 1, 1, Decimal("0.00"), 1000, Decimal("0.1000")),
    ]
    assert totals == [  # id (a day's total first); date, service (NULL: the day), is_day; the same measures
        (1, d1, None, True, 2, 4, Decimal("3.50"), 0, Decimal("0.3600")),     # a and b: a counted once
        (2, d1, "call", False, 2, 3, Decimal("3.50"), 0, Decimal("0.3500")),
        (3, d1, "sms", False, 1, 1, Decimal("0.00"), 0, Decimal("0.0100")),
        (4, d2, None, True, 1, 1, Decimal("0.00"), 1000, Decimal("0.1000")),
        (5, d2, "data", False, 1, 1, Decimal("0.00"), 1000, Decimal("0.1000")),
    ]


def test_a_subscriber_with_many_events_counts_once(tmp_path, policy_k3):
    rows = [row("a", day="2026-11-21") for _ in range(50)] + [row("b", day="2026-11-21")]
    rows += [row("a") for _ in range(50)] + [row("b"), row("c")]
    result, out = run_aggregates(tmp_path, rows, policy_k3)
    assert out["2026-11-21"]["cells"] == []          # 51 events, but only 2 subscribers
    assert [(c["subscribers"], c["events"]) for c in out[DAY]["cells"]] == [(3, 52)]
    assert (result.groups_suppressed_primary, result.rows_suppressed) == (1, 51)


def test_rows_without_a_token_are_events_not_people(tmp_path, policy_k3):
    rows = [row(1), row(2), (None, *row(3)[1:]), (None, *row(4)[1:])]          # 2 people, 4 events
    rows += [(None, *row(5, hour=1)[1:])]                                      # no person at all
    result, out = run_aggregates(tmp_path, rows, policy_k3)
    assert out[DAY]["cells"] == [] and out[DAY]["day"] == []
    assert (result.groups_suppressed_primary, result.rows_suppressed, result.rows_in) == (2, 5, 5)


def test_tokens_of_two_keys_are_not_counted_as_more_people(tmp_path, policy_k3):
    # After a key rotation a day's late rows carry tokens of the new key: the same two people then hold four
    # tokens. They must not pass for four subscribers.
    rows = [row(p, day="2026-11-21") for p in ("a", "b", "a@k2", "b@k2")]
    rows += [row(p) for p in ("c", "d", "e", "c@k2", "d@k2", "e@k2")]
    src = write_rows(tmp_path / "analytics.parquet", rows, second_key=("a@k2", "b@k2", "c@k2", "d@k2", "e@k2"))
    result = aggregate_day(str(src), policy_k3, tmp_path / "work", tmp_path / "out")
    out = read_output(tmp_path / "out")
    assert out["2026-11-21"]["cells"] == [] and out["2026-11-21"]["day"] == []
    assert [(c["subscribers"], c["events"]) for c in out[DAY]["cells"]] == [(3, 6)]
    assert [(t["subscribers"], t["events"]) for t in out[DAY]["day"]] == [(3, 6)]
    assert result.groups_suppressed_primary == 1


def test_missing_area_is_the_unknown_area(tmp_path, policy_k3):
    rows = [row(1, area=None), row(2, area=None), row(3, area="unknown")]
    _, out = run_aggregates(tmp_path, rows, policy_k3)
    assert [(c["area"], c["subscribers"]) for c in out[DAY]["cells"]] == [("unknown", 3)]


def test_outputs_hold_no_subscriber_token(tmp_path, policy_k3):
    rows = generated_rows(4)
    result, _ = run_aggregates(tmp_path, rows, policy_k3)
    tokens = sorted({r[0] for r in rows})
    files = sorted((tmp_path / "out").rglob("*.parquet"))
    assert len(files) == len(result.files) == 6
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


def test_layout_rerun_and_hive_input(tmp_path, policy_k3):
    # The analytics zone keeps the date in the folder name only, as the nightly run passes it.
    zone = tmp_path / "analytics" / f"event_date={DAY}"
    zone.mkdir(parents=True)
    rows = [row(i, hour=i % 2) for i in range(8)]
    con = duckdb.connect()
    write_rows(tmp_path / "rows.parquet", rows)
    con.execute(f"COPY (SELECT * EXCLUDE (event_date) FROM '{tmp_path}/rows.parquet') TO '{zone}/part-1.parquet'")
    con.close()
    out = tmp_path / "aggregates"
    first = aggregate_day(f"{tmp_path}/analytics/event_date={DAY}/*.parquet", policy_k3, tmp_path / "w", out)
    before = {p.name: p.read_bytes() for p in (out / f"event_date={DAY}").iterdir()}
    second = aggregate_day(f"{tmp_path}/analytics/event_date={DAY}/*.parquet", policy_k3, tmp_path / "w", out)
    assert sorted(p.name for p in out.iterdir()) == [f"event_date={DAY}"]         # no staging left over
    assert sorted(before) == ["by_service.parquet", "cells.parquet", "day.parquet"]
    assert {p.name: p.read_bytes() for p in (out / f"event_date={DAY}").iterdir()} == before
    assert dataclasses.replace(first, seconds=0) == dataclasses.replace(second, seconds=0)
    assert first.groups_released == 2 and first.clause == policy_k3.analytics_clause
    assert first.event_dates == (DAY,) and first.rows_in == 8
    assert not (tmp_path / "w" / "aggregate_stage").exists()


def test_cells_named_by_hash_or_by_their_keys_give_the_same_groups(tmp_path):
    # The fast path names a cell by the hash of its keys; the exact path (taken when two cells share a
    # hash) by the keys themselves. Both must give identical cells and totals.
    rows = generated_rows(3)
    by_hash, exact = (groups(tmp_path, rows, exact_cell_keys=e) for e in (False, True))
    assert by_hash == exact and len(by_hash[1]) > 50
