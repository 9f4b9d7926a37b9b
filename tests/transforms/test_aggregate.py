"""Aggregates: k-anonymous cells and totals, primary and secondary suppression, the Released type.

Expected figures below are worked out by hand from the rule (k from the policy;
a released total must not reveal, by subtracting what is released beneath it,
fewer than two suppressed cells or fewer than k subscribers together).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import types
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from transforms import aggregate as agg
from transforms import lake as lake_mod
from transforms.aggregate import Released, aggregate_day, write_released

DAY = "2026-11-22"
COLUMNS = ("origin_number", "event_hour", "service_type", "area", "service_area", "called_country_code",
           "duration_s", "data_volume_bytes", "charged_amount", "event_date")
CELL_KEYS = ("event_hour", "service_type", "area", "service_area", "called_country_code")


def token(n: int | str) -> str:
    """A subscriber token as the analytics zone holds it (hex HMAC)."""
    return hashlib.sha256(f"subscriber-{n}".encode()).hexdigest()


def row(sub, *, day=DAY, hour=0, service="call", area="LA1", service_area="home", cc="386",
        duration=60, volume=0, amount="0.1000"):
    return (token(sub), f"{day} {hour:02d}:00:00", service, area, service_area, cc, duration, volume,
            Decimal(amount), day)


def write_rows(path: Path, rows: list[tuple]) -> Path:
    con = duckdb.connect()
    try:
        con.execute("""CREATE TABLE t (origin_number VARCHAR, event_hour TIMESTAMP, service_type VARCHAR,
                       area VARCHAR, service_area VARCHAR, called_country_code VARCHAR, duration_s BIGINT,
                       data_volume_bytes BIGINT, charged_amount DECIMAL(18,4), event_date DATE)""")
        columns = list(zip(*rows)) or [[] for _ in COLUMNS]
        con.execute("INSERT INTO t SELECT " + ", ".join(f"unnest(${c})" for c in COLUMNS),
                    {c: [str(v) if isinstance(v, Decimal) else v for v in col] for c, col in zip(COLUMNS, columns)})
        con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    finally:
        con.close()
    return path


@pytest.fixture()
def policy_k3(policy):
    return dataclasses.replace(policy, k_anonymity=3)


def run(tmp_path: Path, rows: list[tuple], policy) -> tuple[agg.AggregateResult, dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = write_rows(tmp_path / "analytics.parquet", rows)
    result = aggregate_day(str(src), policy, tmp_path / "work", tmp_path / "out")
    return result, read_output(tmp_path / "out")


def read_output(out: Path) -> dict:
    """{date: {"cells": [dict], "by_service": [dict], "day": [dict]}} from the written files."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    found = {}
    try:
        for part in sorted(out.glob("event_date=*")):
            day = part.name.split("=", 1)[1]
            found[day] = {}
            for name in ("cells", "by_service", "day"):
                cur = con.execute(f"SELECT * FROM read_parquet('{part / name}.parquet')")
                cols = [d[0] for d in cur.description]
                found[day][name] = [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()
    return found


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


# --- primary suppression at the boundary -------------------------------------------------------------

@pytest.mark.parametrize("n, released", [(2, False), (3, True), (4, True)])
def test_cell_released_only_from_k_subscribers(tmp_path, policy_k3, n, released):
    rows = [row(i, duration=60 * (i + 1), amount="0.2500") for i in range(n)]
    result, out = run(tmp_path, rows, policy_k3)
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


def test_a_subscriber_with_many_events_counts_once(tmp_path, policy_k3):
    rows = [row("a", day="2026-11-21") for _ in range(50)] + [row("b", day="2026-11-21")]
    rows += [row("a") for _ in range(50)] + [row("b"), row("c")]
    result, out = run(tmp_path, rows, policy_k3)
    assert out["2026-11-21"]["cells"] == []          # 51 events, but only 2 subscribers
    assert [(c["subscribers"], c["events"]) for c in out[DAY]["cells"]] == [(3, 52)]
    assert (result.groups_suppressed_primary, result.rows_suppressed) == (1, 51)


def test_rows_without_a_token_are_events_not_people(tmp_path, policy_k3):
    rows = [row(1), row(2), (None, *row(3)[1:]), (None, *row(4)[1:])]          # 2 people, 4 events
    rows += [(None, *row(5, hour=1)[1:])]                                      # no person at all
    result, out = run(tmp_path, rows, policy_k3)
    assert out[DAY]["cells"] == [] and out[DAY]["day"] == []
    assert (result.groups_suppressed_primary, result.rows_suppressed, result.rows_in) == (2, 5, 5)


def test_tokens_of_two_keys_are_not_counted_as_more_people(tmp_path, policy_k3):
    # After a key rotation a day's late rows carry tokens of the new key: the same two people then hold four
    # tokens. They must not pass for four subscribers.
    rows = [row(p, day="2026-11-21") for p in ("a", "b", "a@k2", "b@k2")]
    rows += [row(p) for p in ("c", "d", "e", "c@k2", "d@k2", "e@k2")]
    plain = write_rows(tmp_path / "plain.parquet", rows)
    src = tmp_path / "analytics.parquet"
    k2 = [token(p) for p in ("a@k2", "b@k2", "c@k2", "d@k2", "e@k2")]
    con = duckdb.connect()
    con.execute(f"COPY (SELECT *, CASE WHEN list_contains($k2, origin_number) THEN 'k2' ELSE 'k1' END AS hmac_key_id"
                f" FROM '{plain}') TO '{src}' (FORMAT parquet)", {"k2": k2})
    con.close()
    result = aggregate_day(str(src), policy_k3, tmp_path / "work", tmp_path / "out")
    out = read_output(tmp_path / "out")
    assert out["2026-11-21"]["cells"] == [] and out["2026-11-21"]["day"] == []
    assert [(c["subscribers"], c["events"]) for c in out[DAY]["cells"]] == [(3, 6)]
    assert [(t["subscribers"], t["events"]) for t in out[DAY]["day"]] == [(3, 6)]
    assert result.groups_suppressed_primary == 1


def test_missing_area_is_the_unknown_area(tmp_path, policy_k3):
    rows = [row(1, area=None), row(2, area=None), row(3, area="unknown")]
    _, out = run(tmp_path, rows, policy_k3)
    assert [(c["area"], c["subscribers"]) for c in out[DAY]["cells"]] == [("unknown", 3)]


# --- secondary suppression (differencing) ------------------------------------------------------------

def test_one_small_cell_under_a_total_takes_a_second_cell_with_it(tmp_path, policy_k3):
    rows = [row(s, hour=0) for s in ("a", "b")]                      # X: 2 subscribers  -> primary
    rows += [row(s, hour=1) for s in "cdefg"]                        # Y: 5
    rows += [row(s, hour=2) for s in "hijk"]                         # Z: 4 -> smallest released: secondary
    rows += [row(s, hour=0, service="sms", cc=None) for s in "lmnopq"]   # another service, 6
    result, out = run(tmp_path, rows, policy_k3)
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
    result, out = run(tmp_path, rows, policy_k3)
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
    result, out = run(tmp_path, rows, policy_k3)
    got = out[DAY]
    assert [(c["service_type"], c["subscribers"]) for c in got["cells"]] == [("sms", 6)]
    assert got["by_service"] == []
    assert [(t["subscribers"], t["events"]) for t in got["day"]] == [(12, 12)]
    assert (result.totals_suppressed_primary, result.totals_suppressed_secondary) == (1, 1)
    assert (result.groups_suppressed_primary, result.groups_suppressed_secondary) == (1, 1)
    assert_release_rule(rows, out, 3)


def generated_rows(seed: int, n: int = 2500, people: int = 90) -> list[tuple]:
    rnd = random.Random(seed)
    rows = []
    for _ in range(n):
        sub = int(rnd.paretovariate(1.2)) % people
        service = rnd.choices(["call", "sms", "mms", "data", "purchase"], [40, 30, 3, 25, 2])[0]
        rows.append(row(sub, day=rnd.choice([DAY, "2026-11-23"]), hour=rnd.randrange(6), service=service,
                        area=rnd.choice(["LA1", "LA2", "LA3", None]),
                        service_area=rnd.choices(["home", "roaming"], [9, 1])[0],
                        cc=rnd.choice(["386", "386", "43"]) if service in ("call", "sms", "mms") else None,
                        duration=rnd.randrange(600), volume=rnd.randrange(10**6),
                        amount=f"{rnd.randrange(10**5) / 10**4:.4f}"))
    return rows


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
        result, out = run(tmp_path / str(seed), rows, dataclasses.replace(policy, k_anonymity=k))
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
    result, out = run(tmp_path, rows, dataclasses.replace(policy, k_anonymity=5))
    assert result.groups_released > 0 and result.groups_suppressed_primary > 0
    assert_release_rule(rows, out, 5)


# --- the Released type and the writer ----------------------------------------------------------------

def _stage(tmp_path, rows, k=3) -> Released:
    src = write_rows(tmp_path / "analytics.parquet", rows)
    con = lake_mod.connect(tmp_path / "tmp")
    try:
        agg.build_groups(con, str(src))
        return agg.suppress(con, k, tmp_path / "stage")
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
    write_released(released, tmp_path / "out")
    assert (tmp_path / "out" / f"event_date={DAY}" / "cells.parquet").exists()


def test_writer_refuses_staged_files_changed_after_suppression(tmp_path):
    released = _stage(tmp_path, [row(i) for i in range(4)])
    write_rows(Path(released.partitions[0].cells), [row(1)])     # a table that never went through the check
    with pytest.raises(ValueError):
        write_released(released, tmp_path / "out")
    assert not list((tmp_path / "out").glob("event_date=*"))


def test_outputs_hold_no_subscriber_token(tmp_path, policy_k3):
    rows = generated_rows(4)
    result, _ = run(tmp_path, rows, policy_k3)
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
    assert not (tmp_path / "w" / "aggregate_stage").exists()


def test_cells_named_by_hash_or_by_their_keys_give_the_same_groups(tmp_path):
    # The fast path names a cell by the hash of its keys; the exact path (taken when two cells share a
    # hash) by the keys themselves. Both must give identical cells and totals.
    src = write_rows(tmp_path / "analytics.parquet", generated_rows(3))
    tables = []
    for exact in (False, True):
        con = lake_mod.connect(tmp_path / f"tmp-{exact}")
        try:
            agg.build_groups(con, str(src), exact_cell_keys=exact)
            tables.append([con.execute(f"SELECT * EXCLUDE (ck) FROM {t} ORDER BY ALL").fetchall() if t == "cells"
                           else con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ("cells", "totals")])
        finally:
            con.close()
    assert tables[0] == tables[1] and len(tables[0][0]) > 50
