"""transforms/privacy/suppression.py: primary and secondary suppression, and the Released type.

Expected figures are worked out by hand from the rule (k from the policy; a released total must not
reveal, by subtracting what is released beneath it, fewer than two suppressed cells or fewer than k
subscribers together — a union of people, not a sum).
"""

from __future__ import annotations

import dataclasses
import random
import types
from decimal import Decimal
from pathlib import Path

import pytest

from tests.transforms.privacy.conftest import DAY, generated_rows, row, run_aggregates, write_rows
from transforms.lake.connection import connect
from transforms.privacy.aggregates import build_groups
from transforms.privacy.suppression import (
    PRIMARY, SECONDARY, Released, SuppressionDecision, _union_size, suppress, write_released,
)


def cell_key(r: dict | tuple) -> tuple:
    if isinstance(r, dict):
        return (str(r["event_hour"])[:19], r["service_type"], r["area"], r["service_area"], r["called_country_code"])
    return (r[1][:19], r[2], r[3] if r[3] is not None else "unknown", r[4], r[5])


def raw_cells(rows: list[tuple]) -> dict:
    """{date: {cell key: (set of tokens, events)}} straight from the input rows."""
    out: dict = {}
    for r in rows:
        subs, events = out.setdefault(r[9], {}).get(cell_key(r), (set(), 0))
        out[r[9]][cell_key(r)] = (subs | {r[0]}, events + 1)
    return out


def assert_release_rule(rows: list[tuple], output: dict, k: int) -> None:
    """Every released figure covers ≥ k subscribers and no total minus its released parts isolates < k."""
    raw = raw_cells(rows)
    for day, cells in raw.items():
        got = output.get(day, {"cells": [], "by_service": [], "day": []})
        released = {cell_key(c): c for c in got["cells"]}
        for key, c in released.items():
            assert c["subscribers"] == len(cells[key][0]) >= k
            assert c["events"] == cells[key][1]
        services = {key[1] for key in cells}
        by_service = {t["service_type"]: t for t in got["by_service"]}
        hidden_by_service = {}
        for s in services:
            under = {key: v for key, v in cells.items() if key[1] == s}
            hidden_by_service[s] = [v for key, v in under.items() if key not in released]
            if s in by_service:
                t = by_service[s]
                assert t["subscribers"] == len(set().union(*(v[0] for v in under.values()))) >= k
                diff = t["events"] - sum(released[key]["events"] for key in under if key in released)
                _assert_hidden_safe(diff, hidden_by_service[s], k)
        for t in got["day"]:
            assert t["subscribers"] == len(set().union(*(v[0] for v in cells.values()))) >= k
            # day − released service totals − released cells of the suppressed service totals
            diff = t["events"] - sum(v["events"] for v in by_service.values()) - sum(
                c["events"] for key, c in released.items() if key[1] not in by_service)
            hidden = [v for s in services if s not in by_service for v in hidden_by_service[s]]
            _assert_hidden_safe(diff, hidden, k)


def _assert_hidden_safe(diff: int, hidden: list, k: int) -> None:
    assert diff == sum(v[1] for v in hidden)
    if diff != 0:
        assert len(hidden) >= 2
        assert len(set().union(*(v[0] for v in hidden))) >= k


# --- the decision alone (plain Python over a hand-made group list) -----------------------------------

def no_union(ids):
    raise AssertionError(f"the union of {sorted(ids)} was not needed")


def decide(k: int, cells: list[tuple], services: dict[str, int], union_size=no_union) -> SuppressionDecision:
    """A decision over one day's `cells` (id, service, subscribers, events) under per-service totals
    ({service: subscribers}) and the day total (the largest service count, as when everyone used it)."""
    totals = [(100, DAY, None, True, max(services.values()))]
    totals += [(101 + i, DAY, s, False, n) for i, (s, n) in enumerate(sorted(services.items()))]
    decision = SuppressionDecision(k, [(c, DAY, s, n, e) for c, s, n, e in cells], totals, union_size)
    decision.run()
    decision.verify()
    return decision


@pytest.mark.parametrize("n, released", [(2, False), (3, True), (4, True)])
def test_decision_at_k_minus_one_k_and_k_plus_one(n, released):
    d = decide(3, [(1, "call", n, n)], {"call": n})
    if released:
        assert (d.released_cells(), d.released_totals()) == ({1}, {100, 101})
        assert d.cell_reason == {} and d.total_reason == {}
    else:
        assert d.released_cells() == set() and d.released_totals() == set()
        assert d.cell_reason == {1: PRIMARY} and d.total_reason == {100: PRIMARY, 101: PRIMARY}


def test_decision_takes_the_smallest_released_cell_with_a_lone_small_one():
    # X (2) is primary; the call total minus Y and Z would give X alone, so the smaller of them goes too.
    d = decide(3, [(1, "call", 2, 2), (2, "call", 5, 5), (3, "call", 4, 4), (4, "sms", 6, 6)],
               {"call": 11, "sms": 6})
    assert d.cell_reason == {1: PRIMARY, 3: SECONDARY} and d.total_reason == {}


def test_decision_asks_for_the_union_of_people_not_the_sum():
    # P and Q hold 2 subscribers each, 4 summed, but they are the same 2 people: not k.
    asked = []

    def union_size(ids):
        asked.append(set(ids))
        return 2
    d = decide(3, [(1, "data", 2, 2), (2, "data", 2, 2), (3, "data", 5, 5), (4, "data", 6, 6)], {"data": 13},
               union_size)
    assert asked == [{1, 2}]
    assert d.cell_reason == {1: PRIMARY, 2: PRIMARY, 3: SECONDARY}
    # Had they been 4 different people, the two small cells would have hidden each other.
    d = decide(3, [(1, "data", 2, 2), (2, "data", 2, 2), (3, "data", 5, 5), (4, "data", 6, 6)], {"data": 15},
               lambda ids: 4)
    assert d.cell_reason == {1: PRIMARY, 2: PRIMARY}


def test_verify_refuses_a_decision_that_reveals_a_cell():
    d = decide(3, [(1, "call", 2, 2), (2, "call", 5, 5), (3, "call", 4, 4), (4, "sms", 6, 6)],
               {"call": 11, "sms": 6})
    del d.cell_reason[3]                 # undo the secondary suppression: call total − Y − Z = X
    with pytest.raises(AssertionError, match="reveals a suppressed cell"):
        d.verify()
    d.cell_reason[3] = SECONDARY
    del d.cell_reason[1]                 # release the 2-subscriber cell itself
    with pytest.raises(AssertionError, match="fewer than k"):
        d.verify()


# --- primary suppression at the boundary -------------------------------------------------------------

@pytest.mark.parametrize("n, released", [(2, False), (3, True), (4, True)])
def test_cell_released_only_from_k_subscribers(tmp_path, policy_k3, n, released):
    rows = [row(i, duration=60 * (i + 1), amount="0.2500") for i in range(n)]
    result, out = run_aggregates(tmp_path, rows, policy_k3)
    got = out[DAY]
    assert result.k == 3 and result.groups_total == 1
    if released:
        # n subscribers, n calls of 1, 2, … n minutes, 0.25 each
        minutes = Decimal(n * (n + 1) // 2).quantize(Decimal("0.01"))
        expected = {"subscribers": n, "events": n, "minutes": minutes, "data_volume_bytes": 0,
                    "revenue": Decimal("0.25") * n}
        assert [{m: c[m] for m in expected} for c in got["cells"]] == [expected]
        assert [{m: t[m] for m in expected} for t in got["by_service"]] == [expected]
        assert [{m: t[m] for m in expected} for t in got["day"]] == [expected]
        assert (result.groups_released, result.groups_suppressed_primary, result.rows_suppressed) == (1, 0, 0)
    else:
        assert got == {"cells": [], "by_service": [], "day": []}
        assert (result.groups_released, result.groups_suppressed_primary, result.rows_suppressed) == (0, 1, n)
        assert (result.totals_released, result.totals_suppressed_primary) == (0, 2)
    assert result.groups_suppressed_secondary == 0


def test_k_below_two_is_refused(tmp_path):
    src = write_rows(tmp_path / "analytics.parquet", [row(1)])
    con = connect(tmp_path / "tmp")
    try:
        build_groups(con, str(src))
        with pytest.raises(ValueError, match="at least 2"):
            suppress(con, 1, tmp_path / "stage")
    finally:
        con.close()


# --- secondary suppression (differencing) ------------------------------------------------------------

def test_one_small_cell_under_a_total_takes_a_second_cell_with_it(tmp_path, policy_k3):
    rows = [row(s, hour=0) for s in ("a", "b")]                      # X: 2 subscribers  -> primary
    rows += [row(s, hour=1) for s in "cdefg"]                        # Y: 5
    rows += [row(s, hour=2) for s in "hijk"]                         # Z: 4 -> smallest released: secondary
    rows += [row(s, hour=0, service="sms", cc=None) for s in "lmnopq"]   # another service, 6
    result, out = run_aggregates(tmp_path, rows, policy_k3)
    got = out[DAY]
    assert sorted((c["service_type"], c["event_hour"].hour, c["subscribers"]) for c in got["cells"]) == [
        ("call", 1, 5), ("sms", 0, 6)]
    # call total (11 people, 11 events) minus Y (5) leaves X+Z: 6 events of 6 people in 2 cells
    assert {t["service_type"]: (t["subscribers"], t["events"]) for t in got["by_service"]} == {
        "call": (11, 11), "sms": (6, 6)}
    assert [(t["subscribers"], t["events"]) for t in got["day"]] == [(17, 17)]
    assert (result.groups_suppressed_primary, result.groups_suppressed_secondary) == (1, 1)
    assert result.rows_suppressed == 2 + 4
    assert_release_rule(rows, out, 3)


def test_hidden_cells_are_counted_as_a_union_of_people_not_a_sum(tmp_path, policy_k3):
    # P and Q hold the same two people: 2 cells, 4 "subscribers" summed, but only 2 people -> not enough.
    rows = [row(s, hour=0, service="data", cc=None) for s in "ab"]       # P
    rows += [row(s, hour=1, service="data", cc=None) for s in "ab"]      # Q
    rows += [row(s, hour=2, service="data", cc=None) for s in "cdefg"]   # R: 5 -> secondary
    rows += [row(s, hour=3, service="data", cc=None) for s in "hijklm"]  # S: 6
    result, out = run_aggregates(tmp_path, rows, policy_k3)
    assert [(c["event_hour"].hour, c["subscribers"]) for c in out[DAY]["cells"]] == [(3, 6)]
    assert (result.groups_suppressed_primary, result.groups_suppressed_secondary) == (2, 1)
    assert_release_rule(rows, out, 3)


def test_a_small_service_total_under_the_day_total(tmp_path, policy_k3):
    # mms: 2 people (cell and its total primary). The day total minus the sms total would give the mms
    # figures, so the sms total goes too, and then — the day minus S2 would still be M + all of sms —
    # the smaller sms cell S1, leaving M + S1 (2 cells, 6 people) hidden under the day.
    rows = [row(s, service="mms") for s in "ab"]                              # M
    rows += [row(s, hour=1, service="sms", cc=None) for s in "cdef"]          # S1: 4
    rows += [row(s, hour=2, service="sms", cc=None) for s in "ghijkl"]        # S2: 6
    result, out = run_aggregates(tmp_path, rows, policy_k3)
    got = out[DAY]
    assert [(c["service_type"], c["subscribers"]) for c in got["cells"]] == [("sms", 6)]
    assert got["by_service"] == []
    assert [(t["subscribers"], t["events"]) for t in got["day"]] == [(12, 12)]
    assert (result.totals_suppressed_primary, result.totals_suppressed_secondary) == (1, 1)
    assert (result.groups_suppressed_primary, result.groups_suppressed_secondary) == (1, 1)
    assert_release_rule(rows, out, 3)


def test_union_of_small_cells_is_counted_per_key(tmp_path):
    # Cells P, Q, R all under k=3: P and Q hold a and b, R holds c and d. A union counts people once,
    # and tokens of two keys (a rotation) are counted per key, the larger count kept.
    rows = [row(s, hour=h) for h, people in ((0, "ab"), (1, "ab"), (2, "cd")) for s in people]
    rows += [row(s, hour=3) for s in ("a@k2", "b@k2", "e@k2")]              # T: the same a, b and e, new key
    src = write_rows(tmp_path / "analytics.parquet", rows, second_key=("a@k2", "b@k2", "e@k2"))
    con = connect(tmp_path / "tmp")
    try:
        build_groups(con, str(src))
        p, q, r, t = (i for (i,) in con.execute("SELECT cell_id FROM cells ORDER BY event_hour").fetchall())
        assert _union_size(con, 4, {p, q}) == 2
        assert _union_size(con, 4, {p, q, r}) == 4
        assert _union_size(con, 4, {p, t}) == 3        # 2 under k1, 3 under k2: never 5
    finally:
        con.close()


def layered_rows(seed: int, k: int) -> list[tuple]:
    """Few cells per total, sizes around k, people shared between cells: secondary suppression is common."""
    rnd = random.Random(seed)
    pool = [f"p{i}" for i in range(6 * k)]
    rows = []
    for day in (DAY, "2026-11-23"):
        for service in rnd.sample(["call", "sms", "mms", "data", "purchase"], rnd.randint(1, 4)):
            for hour in range(rnd.randint(1, 4)):
                for person in rnd.sample(pool, rnd.randint(1, 2 * k)):
                    for _ in range(rnd.randint(1, 3)):
                        rows.append(row(person, day=day, hour=hour, service=service, cc=None,
                                        duration=rnd.randrange(600), amount=f"{rnd.randrange(10**5) / 10**4:.4f}"))
    return rows


@pytest.mark.parametrize("k", [3, 5])
def test_generated_releases_keep_the_rule(tmp_path, policy, k):
    secondary = 0
    for seed in range(12):
        rows = layered_rows(seed, k)
        result, out = run_aggregates(tmp_path / str(seed), rows, dataclasses.replace(policy, k_anonymity=k))
        for day in out.values():                          # property: every released row covers k people
            assert all(r["subscribers"] >= k for name in day for r in day[name])
        assert_release_rule(rows, out, k)
        assert result.rows_in == len(rows)
        released_events = sum(c["events"] for d in out.values() for c in d["cells"])
        assert released_events + result.rows_suppressed == len(rows)
        secondary += result.groups_suppressed_secondary + result.totals_suppressed_secondary
    assert secondary > 0                                  # the cases do exercise secondary suppression


def test_sparse_generated_release_keeps_the_rule(tmp_path, policy):
    rows = generated_rows(1)
    result, out = run_aggregates(tmp_path, rows, dataclasses.replace(policy, k_anonymity=5))
    assert result.groups_released > 0 and result.groups_suppressed_primary > 0
    assert_release_rule(rows, out, 5)


# --- the Released type and the writer ----------------------------------------------------------------

def _stage(tmp_path, rows, k=3) -> Released:
    src = write_rows(tmp_path / "analytics.parquet", rows)
    con = connect(tmp_path / "tmp")
    try:
        build_groups(con, str(src))
        return suppress(con, k, tmp_path / "stage")
    finally:
        con.close()


def test_released_is_made_only_by_suppression(tmp_path):
    with pytest.raises(TypeError):
        Released(k=3, partitions=(), groups_total=0, groups_released=0, groups_suppressed_primary=0,
                 groups_suppressed_secondary=0, rows_suppressed=0, totals_total=0, totals_released=0,
                 totals_suppressed_primary=0, totals_suppressed_secondary=0)
    released = _stage(tmp_path, [row(i) for i in range(4)])
    with pytest.raises(TypeError):
        dataclasses.replace(released, k=1)
    fake = types.SimpleNamespace(**{f.name: getattr(released, f.name) for f in dataclasses.fields(released)})
    with pytest.raises(TypeError):
        write_released(fake, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    written = write_released(released, tmp_path / "out")
    assert (tmp_path / "out" / f"event_date={DAY}" / "cells.parquet").exists()
    assert [Path(f).name for f in written] == ["cells.parquet", "by_service.parquet", "day.parquet"]
    assert all(Path(f).read_bytes() == Path(s).read_bytes() for f, s in zip(written, (
        released.partitions[0].cells, released.partitions[0].by_service, released.partitions[0].day)))


def test_writer_refuses_staged_files_changed_after_suppression(tmp_path):
    released = _stage(tmp_path, [row(i) for i in range(4)])
    write_rows(Path(released.partitions[0].cells), [row(1)])     # a table that never went through the check
    with pytest.raises(ValueError):
        write_released(released, tmp_path / "out")
    assert not list((tmp_path / "out").glob("event_date=*"))
