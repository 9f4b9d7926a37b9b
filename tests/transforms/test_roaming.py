"""transforms/roaming.py: monthly fair-use aggregates and the window flag, on hand-made billing partitions.

Expected states are written from the rule (Impl. Reg. (EU) 2016/2286 Art. 4, policy §3.2 ¶4): over a
window of four months, a subscriber is flagged when days roaming in the EU/EEA outweigh domestic days AND
roaming consumption outweighs domestic consumption; equal is not "outweighs"; less than a full window of
history is never flagged.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.leakscan import scan
from transforms.policy import load_policy
from transforms.pseudonymize import demo_keyring, token
from transforms.roaming import (
    MONTH_SCHEMA, affected_months, assess_window, build_months, read_statuses, shift_month, window_months,
)

HOME, AT, DE, IT, CH, UNKNOWN = "29340", "23201", "26201", "22201", "22801", "99901"
MB = 1_000_000
WINDOW = ["2026-03", "2026-04", "2026-05", "2026-06"]

# Subscribers: IMSI and number (raw values that must never reach the roaming zone).
COMMUTER = ("293401000000001", "+38640100001")
LONG_STAY = ("293401000000002", "+38640100002")
NEWCOMER = ("293401000000003", "+38640100003")
TIE_PRESENCE = ("293401000000004", "+38640100004")
TIE_CONSUMPTION = ("293401000000005", "+38640100005")


def ev(sub, day: date, net: str | None, service="data", direction="outgoing", seconds=0, volume=None,
       area=None):
    """One billing row of `sub` on `day` on visited network `net` (where the rule reads it)."""
    imsi, msisdn = sub
    incoming = direction in ("incoming", "forwarded")
    return {
        "origin_number": "+38641999999" if incoming else msisdn,
        "destination_number": msisdn if incoming else "+38641999999",
        "direction": direction, "service_type": service,
        "start_time": f"{day} 12:00:00", "duration_s": seconds,
        "data_volume_bytes": volume, "imsi": imsi,
        # the visited network is the termination network of what the subscriber receives, else the origin
        "origin_network": HOME if incoming else net,
        "termination_network": net if incoming else HOME,
        "service_area": area if area is not None else (None if net is None else ("home" if net == HOME else "roaming")),
        "event_date": day,
    }


def month_days(month: str, first: int, count: int) -> list[date]:
    y, m = map(int, month.split("-"))
    return [date(y, m, first + i) for i in range(count)]


def write_billing(lake, rows: list[dict], part: str = "part-test") -> list[Path]:
    """Write rows as billing/event_date=D/<part>.parquet, one file per day (the billing zone's layout)."""
    by_day: dict[date, list[dict]] = {}
    for r in rows:
        by_day.setdefault(r["event_date"], []).append(r)
    schema = pa.schema([("origin_number", pa.string()), ("destination_number", pa.string()),
                        ("direction", pa.string()), ("service_type", pa.string()),
                        ("start_time", pa.string()), ("duration_s", pa.int64()),
                        ("data_volume_bytes", pa.int64()), ("imsi", pa.string()),
                        ("origin_network", pa.string()), ("termination_network", pa.string()),
                        ("service_area", pa.string())])
    paths = []
    for day, rs in sorted(by_day.items()):
        d = lake.zone("billing") / f"event_date={day}"
        d.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "event_date"} for r in rs], schema=schema)
        pq.write_table(table, d / f"{part}.parquet")
        paths.append(d / f"{part}.parquet")
    return paths


def golden_rows() -> list[dict]:
    rows = []
    for month in WINDOW:
        # Commuter: abroad (AT) on 20 days of every month with a little data there; 8 days at home with
        # calls and most of the data. Presence abroad outweighs, consumption does not: not flagged.
        rows += [ev(COMMUTER, d, AT, volume=1 * MB) for d in month_days(month, 1, 20)]
        for d in month_days(month, 21, 8):
            rows += [ev(COMMUTER, d, HOME, "call", seconds=600), ev(COMMUTER, d, HOME, volume=1000 * MB)]
        # Long-stay roamer: 25 days in DE with data and calls, 3 days at home with a little data: flagged.
        for d in month_days(month, 1, 25):
            rows += [ev(LONG_STAY, d, DE, volume=500 * MB), ev(LONG_STAY, d, DE, "call", seconds=300)]
        rows += [ev(LONG_STAY, d, HOME, volume=10 * MB) for d in month_days(month, 26, 3)]
        # Presence tie: 10 days home and 10 days in IT (equal is not "outweighs"), consumption all roaming.
        rows += [ev(TIE_PRESENCE, d, HOME, volume=1 * MB) for d in month_days(month, 1, 10)]
        rows += [ev(TIE_PRESENCE, d, IT, volume=300 * MB) for d in month_days(month, 11, 10)]
        # Consumption tie: 20 days in AT, 5 at home; the same data volume and SMS count in both places.
        rows += [ev(TIE_CONSUMPTION, d, AT, volume=40 * MB) for d in month_days(month, 1, 20)]
        rows += [ev(TIE_CONSUMPTION, d, AT, "sms") for d in month_days(month, 1, 4)]
        rows += [ev(TIE_CONSUMPTION, d, HOME, volume=160 * MB) for d in month_days(month, 21, 5)]
        rows += [ev(TIE_CONSUMPTION, d, HOME, "sms") for d in month_days(month, 21, 4)]
    # Newcomer: first seen in April (three months of the window): roams all the time, never flagged.
    for month in WINDOW[1:]:
        rows += [ev(NEWCOMER, d, DE, volume=800 * MB) for d in month_days(month, 1, 28)]
    return rows


@pytest.fixture()
def keyring():
    return demo_keyring()


@pytest.fixture()
def golden(lake, policy, keyring, work_dir):
    write_billing(lake, golden_rows())
    built = build_months(lake, policy, keyring, WINDOW, work_dir)
    return lake, built


def tok(sub) -> bytes:
    return bytes.fromhex(token(demo_keyring().current, "imsi", sub[0]))


def month_row(lake, month: str, sub) -> dict:
    con = duckdb.connect()
    try:
        cur = con.execute(f"SELECT * FROM read_parquet('{lake.zone('roaming')}/month={month}/part.parquet',"
                          " hive_partitioning = false) WHERE subscriber_token = ?", [tok(sub)])
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else {}
    finally:
        con.close()


def states(lake, result) -> dict[bytes, object]:
    return {s.subscriber_token: s for s in read_statuses(lake.root / result.path)}


# ---------------------------------------------------------------- the window rule, golden cases

def test_golden_states(golden, policy):
    lake, _ = golden
    result = assess_window(lake, policy, "2026-06")
    got = states(lake, result)
    assert got[tok(COMMUTER)].state == "not_flagged"
    assert got[tok(COMMUTER)].presence_outweighs and not got[tok(COMMUTER)].consumption_outweighs
    assert got[tok(LONG_STAY)].state == "flagged"
    assert got[tok(NEWCOMER)].state == "insufficient_history"
    assert got[tok(TIE_PRESENCE)].state == "not_flagged"
    assert not got[tok(TIE_PRESENCE)].presence_outweighs and got[tok(TIE_PRESENCE)].consumption_outweighs
    assert got[tok(TIE_CONSUMPTION)].state == "not_flagged"
    assert got[tok(TIE_CONSUMPTION)].presence_outweighs and not got[tok(TIE_CONSUMPTION)].consumption_outweighs
    assert (result.flagged, result.not_flagged, result.insufficient_history) == (1, 3, 1)
    assert result.window_months == tuple(WINDOW) and result.months_missing == ()
    assert result.path == "roaming/status/as_of=2026-06/part.parquet"


def test_figures_behind_the_flag(golden, policy):
    lake, _ = golden
    s = states(lake, assess_window(lake, policy, "2026-06"))[tok(LONG_STAY)]
    # 4 months x 25 days in DE and 3 at home; 25 calls of 5 min and 25 x 500 MB a month roaming.
    assert (s.days_home, s.days_eu_roaming, s.days_other_roaming) == (12, 100, 0)
    assert s.voice_min_eu_roaming == 500 and s.voice_min_home == 0
    assert s.data_bytes_eu_roaming == 4 * 25 * 500 * MB and s.data_bytes_home == 4 * 3 * 10 * MB
    assert (s.window_start_month, s.as_of_month, s.first_month, s.months_with_data) == (
        "2026-03", "2026-06", "2026-03", 4)
    tie = states(lake, assess_window(lake, policy, "2026-06"))[tok(TIE_CONSUMPTION)]
    assert tie.roaming_consumption_share == pytest.approx(0.5)
    assert tie.data_bytes_eu_roaming == tie.data_bytes_home and tie.sms_out_eu_roaming == tie.sms_out_home


def test_history_is_judged_against_the_window_start(golden, policy):
    lake, _ = golden
    # A window ending in May starts in February, before anyone's first month: all insufficient.
    result = assess_window(lake, policy, "2026-05")
    assert result.insufficient_history == 5 and result.flagged == 0
    assert result.months_missing == ("2026-02",)


def test_long_inactivity_indicator(lake, policy, keyring, work_dir):
    # A SIM used almost only abroad, active on a few days of March and then silent to the end of June:
    # 5 roaming days vs 1 home day, and more than 90 days without any event.
    sleeper = ("293401000000009", "+38640100009")
    rows = [ev(sleeper, d, AT, volume=5 * MB) for d in month_days("2026-03", 1, 5)]
    rows += [ev(sleeper, date(2026, 3, 6), HOME, volume=1 * MB)]
    rows += [ev(COMMUTER, d, HOME, volume=MB) for m in WINDOW for d in month_days(m, 1, 3)]
    write_billing(lake, rows)
    build_months(lake, policy, keyring, WINDOW, work_dir)
    got = states(lake, assess_window(lake, policy, "2026-06"))
    s = got[tok(sleeper)]
    assert s.longest_inactive_days == (date(2026, 6, 30) - date(2026, 3, 6)).days
    assert s.long_inactivity and s.state == "flagged"
    assert not got[tok(COMMUTER)].long_inactivity     # mainly at home


# ---------------------------------------------------------------- the monthly aggregates

def test_month_row_day_rules(lake, policy, keyring, work_dir):
    s = ("293401000000007", "+38640100007")
    d = month_days("2026-04", 1, 6)
    rows = [
        ev(s, d[0], HOME, "call", seconds=90), ev(s, d[0], AT, volume=5 * MB),   # home and EU: a home day
        ev(s, d[1], AT, "call", "incoming", seconds=120), ev(s, d[1], CH, volume=MB),  # EU and CH: an EU day
        ev(s, d[2], CH, "sms"),                                                    # outside the EU/EEA only
        ev(s, d[3], UNKNOWN, volume=7 * MB),                                       # unknown MCC: never home
        ev(s, d[4], None, "sms", area="home"),                                    # no network: service area
        ev(s, d[5], HOME, "purchase"),                                             # a purchase is no presence
        ev(s, d[5], AT, "call", "forwarded", seconds=60),                          # forwarded: presence only
    ]
    write_billing(lake, rows)
    res = build_months(lake, policy, keyring, ["2026-04"], work_dir)
    r = month_row(lake, "2026-04", s)
    assert (r["days_home"], r["days_eu_roaming"], r["days_other_roaming"], r["days_active"]) == (2, 2, 2, 6)
    assert r["voice_out_min_home"] == 1.5 and r["voice_in_min_eu_roaming"] == 2
    assert r["voice_in_min_home"] == 0 and r["voice_out_min_eu_roaming"] == 0
    assert r["sms_out_home"] == 1 and r["sms_out_eu_roaming"] == 0
    assert r["data_bytes_eu_roaming"] == 5 * MB and r["data_bytes_home"] == 0   # CH and unknown not kept
    assert r["first_event_date"] == d[0] and r["last_event_date"] == d[5] and r["month"] == "2026-04"
    assert r["hmac_key_id"] == keyring.current.key_id
    (m,) = res.months
    assert (m.rows_read, m.rows_purchase, m.rows_without_imsi, m.rows_unclassified, m.subscribers) == (9, 1, 0, 0, 1)
    assert m.path == "roaming/month=2026-04/part.parquet"


def test_month_columns(golden, pq_columns):
    lake, _ = golden
    assert pq_columns(lake.zone("roaming") / "month=2026-03" / "part.parquet") == [n for n, _ in MONTH_SCHEMA]


def test_rows_without_imsi_or_place_are_counted_not_kept(lake, policy, keyring, work_dir):
    s = ("293401000000008", "+38640100008")
    d = date(2026, 4, 2)
    no_imsi = {**ev(s, d, HOME, "call", seconds=60), "imsi": None}
    nowhere = ev(s, d, None, "call", seconds=60)
    write_billing(lake, [no_imsi, nowhere, ev(s, d, HOME, "sms")])
    (m,) = build_months(lake, policy, keyring, ["2026-04"], work_dir).months
    assert (m.rows_read, m.rows_without_imsi, m.rows_unclassified, m.rows_counted, m.subscribers) == (3, 1, 1, 1, 1)


def test_rerun_gives_identical_files(golden, policy, keyring, work_dir):
    lake, _ = golden
    before = {p: p.read_bytes() for p in lake.zone("roaming").rglob("*.parquet")}
    build_months(lake, policy, keyring, WINDOW, work_dir)
    after = {p: p.read_bytes() for p in lake.zone("roaming").rglob("*.parquet")}
    assert before == after
    assert sorted(p.name for p in lake.zone("roaming").iterdir()) == [f"month={m}" for m in WINDOW]


def test_late_file_changes_only_its_month(golden, policy, keyring, work_dir):
    lake, _ = golden
    assert states(lake, assess_window(lake, policy, "2026-06"))[tok(TIE_PRESENCE)].state == "not_flagged"
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in lake.zone("roaming").glob("month=*/*")}
    # A late file for May: one more day in IT for the presence-tie subscriber (41 roaming days vs 40 home).
    late = write_billing(lake, [ev(TIE_PRESENCE, date(2026, 5, 25), IT, volume=MB)], part="part-late")
    months = affected_months(p.parent.name.split("=")[1] for p in late)
    assert months == ["2026-05"]
    res = build_months(lake, policy, keyring, months, work_dir)
    assert [m.month for m in res.months] == ["2026-05"]
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in lake.zone("roaming").glob("month=*/*")}
    changed = sorted(p.parent.name for p in after if after[p] != before[p])
    assert changed == ["month=2026-05"]
    assert month_row(lake, "2026-05", TIE_PRESENCE)["days_eu_roaming"] == 11
    got = states(lake, assess_window(lake, policy, "2026-06"))[tok(TIE_PRESENCE)]
    assert (got.days_home, got.days_eu_roaming, got.state) == (40, 41, "flagged")


def test_month_without_billing_is_left_alone(golden, policy, keyring, work_dir):
    lake, _ = golden
    res = build_months(lake, policy, keyring, ["2026-01"], work_dir)
    assert res.months == () and res.months_without_billing == ("2026-01",)
    assert not (lake.zone("roaming") / "month=2026-01").exists()


def test_reads_only_the_months_partitions(lake, policy, keyring, work_dir):
    write_billing(lake, golden_rows())
    # A broken file in another month must not be touched when April is rebuilt.
    bad = lake.zone("billing") / "event_date=2026-05-03" / "part-broken.parquet"
    bad.write_bytes(b"not parquet")
    (m,) = build_months(lake, policy, keyring, ["2026-04"], work_dir).months
    assert m.billing_partitions == 28 and m.subscribers == 5


def test_no_raw_identifier_in_roaming_outputs(golden, policy):
    lake, _ = golden
    assess_window(lake, policy, "2026-06")
    subs = [COMMUTER, LONG_STAY, NEWCOMER, TIE_PRESENCE, TIE_CONSUMPTION]
    needles = [s[0] for s in subs] + [s[1] for s in subs] + [s[1].lstrip("+") for s in subs] + ["+38641999999"]
    assert scan([lake.zone("roaming")], needles) == {}
    files = list(lake.zone("roaming").rglob("*"))
    assert all(not p.name.startswith(".") for p in files)       # no staging folders left behind


def test_window_helpers(policy):
    assert window_months("2026-02", 4) == ("2025-11", "2025-12", "2026-01", "2026-02")
    assert shift_month("2026-01", -1) == "2025-12" and shift_month("2025-12", 1) == "2026-01"
    assert affected_months(["2026-04-30", "2026-05-01", "2026-05-02"]) == ["2026-04", "2026-05"]
    with pytest.raises(ValueError):
        shift_month("2026-13", 1)


# ---------------------------------------------------------------- the reference table

EU_EEA = ("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"  # EU 27
          " IS LI NO").split()                                                               # EEA


def reference_rows(policy) -> list[dict]:
    with open(policy.roaming.reference_table, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_reference_table_covers_eu_eea(policy):
    rows = reference_rows(policy)
    assert len(EU_EEA) == 30
    zones = {}
    for r in rows:
        zones.setdefault(r["iso2"], set()).add(r["zone"])
    assert {c for c, z in zones.items() if z & {"home", "eu_eea"}} == set(EU_EEA)
    assert zones["SI"] == {"home"} and all(zones[c] == {"eu_eea"} for c in EU_EEA if c != "SI")
    assert [r["mcc"] for r in rows if r["zone"] == "home"] == ["293"]
    assert {r["mcc"] for r in rows if r["iso2"] in ("AT", "DE", "HR", "IT", "NO")} == {"232", "262", "219", "222", "242"}
    mccs = [r["mcc"] for r in rows]
    assert len(mccs) == len(set(mccs)) and all(len(m) == 3 and m.isdigit() for m in mccs)
    assert {r["zone"] for r in rows} == {"home", "eu_eea", "rest_of_world"}


def test_reference_table_resolves_the_generators_networks(policy):
    from sample_data import generate as g

    zone = {r["mcc"]: r["zone"] for r in reference_rows(policy)}
    for plmn, eu in zip(g.PLMNS, g.PLMN_EU, strict=True):
        expected = "home" if plmn.startswith("293") else ("eu_eea" if eu else "rest_of_world")
        assert zone.get(plmn[:3]) == expected, plmn


# ---------------------------------------------------------------- generated nights

def test_generated_nights_in_two_months(tmp_path, lake, policy, keyring, work_dir):
    """Nights of one seed share a population: tokens carry over from one month to the next."""
    from sample_data.generate import generate_night

    nights = [date(2026, 3, 30), date(2026, 3, 31), date(2026, 4, 1), date(2026, 4, 2)]
    imsis: set[str] = set()
    for night in nights:
        landing = tmp_path / f"landing-{night}"
        manifest = generate_night(landing, rows=4000, seed=7, night=night)
        src = landing / f"billing_{night}.parquet"
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            # The canonical Parquet, typed like the billing zone and laid out by its UTC event date.
            con.execute("""CREATE TABLE b AS SELECT * REPLACE (
                               CAST(TRY_CAST(start_time AS TIMESTAMPTZ) AS TIMESTAMP) AS start_time,
                               TRY_CAST(duration_s AS BIGINT) AS duration_s,
                               TRY_CAST(data_volume_bytes AS BIGINT) AS data_volume_bytes)
                           FROM read_parquet(?)""", [str(src)])
            for (day,) in con.execute("SELECT DISTINCT CAST(start_time AS DATE) FROM b WHERE start_time IS NOT NULL"
                                      ).fetchall():
                out = lake.zone("billing") / f"event_date={day}"
                out.mkdir(parents=True, exist_ok=True)
                con.execute(f"COPY (SELECT * FROM b WHERE CAST(start_time AS DATE) = ?) TO "
                            f"'{out / f'part-{night}.parquet'}' (FORMAT parquet)", [day])
            imsis |= {r[0] for r in con.execute("SELECT DISTINCT imsi FROM b WHERE imsi IS NOT NULL").fetchall()}
        finally:
            con.close()
        assert manifest.subscribers > 0
    months = affected_months(p.name.split("=")[1] for p in lake.zone("billing").iterdir())
    assert months == ["2026-03", "2026-04"]
    res = build_months(lake, policy, keyring, months, work_dir)
    assert [m.month for m in res.months] == months
    assert all(m.rows_unclassified == 0 and m.subscribers > 0 for m in res.months)
    con = duckdb.connect()
    try:
        root = lake.zone("roaming")
        per_month = dict(con.execute(f"SELECT month, count(*) FROM read_parquet('{root}/month=*/part.parquet',"
                                     " hive_partitioning = false) GROUP BY month").fetchall())
        shared = con.execute(f"""SELECT count(*) FROM read_parquet('{root}/month=2026-03/part.parquet') a
                                 JOIN read_parquet('{root}/month=2026-04/part.parquet') b USING (subscriber_token)"""
                             ).fetchone()[0]
        bad = con.execute(f"""SELECT count(*) FROM read_parquet('{root}/month=*/part.parquet')
                              WHERE days_home + days_eu_roaming + days_other_roaming <> days_active
                                 OR days_active < 1 OR days_active > 31""").fetchone()[0]
        roaming_days = con.execute(f"SELECT sum(days_eu_roaming + days_other_roaming) FROM"
                                   f" read_parquet('{root}/month=*/part.parquet')").fetchone()[0]
    finally:
        con.close()
    assert per_month == {m.month: m.subscribers for m in res.months}
    assert shared > 0 and bad == 0 and roaming_days > 0
    assert scan([lake.zone("roaming")], sorted(imsis)) == {}
    status = assess_window(lake, policy, "2026-04")
    assert status.subscribers == len(read_statuses(lake.root / status.path)) > 0
    assert status.insufficient_history == status.subscribers    # two months of data: never a full window
