"""transforms/roaming/months.py: each month's per-subscriber presence and consumption, from billing partitions.

Expected figures are written from the rule (conftest): days counted once with home > EU/EEA > other,
consumption kept at home and in the EU/EEA only, the IMSI held only as its keyed token.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import date

import duckdb

from tests.leakscan import scan
from tests.transforms.roaming.conftest import (
    AT, CH, HOME, IT, MB, TIE_PRESENCE, UNKNOWN, WINDOW, ev, golden_rows, month_days, month_row, states, tok,
    write_billing,
)
from transforms.roaming import months
from transforms.roaming.months import billing_files_of_month, build_months
from transforms.roaming.periods import affected_months
from transforms.roaming.schema import MONTH_COLUMNS
from transforms.roaming.window import assess_window


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
    assert (res.key_id, res.clause) == (keyring.current.key_id, policy.roaming.clause)


def test_month_columns(golden, pq_columns):
    lake, _ = golden
    assert pq_columns(lake.zone("roaming") / "month=2026-03" / "part.parquet") == [n for n, _ in MONTH_COLUMNS]


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


def test_a_day_in_passes_gives_the_same_month(golden, policy, keyring, work_dir, monkeypatch):
    # A subscriber's rows of a day are all in one pass, so the month is the same however many passes a day takes.
    lake, _ = golden
    path = lake.zone("roaming") / "month=2026-03" / "part.parquet"
    (one,) = build_months(lake, policy, keyring, ["2026-03"], work_dir).months
    before = path.read_bytes()
    passes = []
    real = months._passes
    monkeypatch.setattr(months, "IMSIS_PER_PASS", 1)
    monkeypatch.setattr(months, "_passes", lambda con, files: passes.append(real(con, files)) or passes[-1])
    (many,) = build_months(lake, policy, keyring, ["2026-03"], work_dir).months
    assert max(passes) > 1 and path.read_bytes() == before    # days of several subscribers took several passes
    assert many == one


def test_late_file_changes_only_its_month(golden, policy, keyring, work_dir):
    lake, _ = golden
    assert states(lake, assess_window(lake, policy, "2026-06"))[tok(TIE_PRESENCE)]["state"] == "not_flagged"
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
    assert (got["days_home"], got["days_eu_roaming"], got["state"]) == (40, 41, "flagged")


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


def test_billing_files_of_month(lake):
    files = write_billing(lake, [ev(TIE_PRESENCE, d, HOME) for d in (date(2026, 3, 31), date(2026, 4, 1),
                                                                      date(2026, 4, 30), date(2026, 5, 1))])
    assert billing_files_of_month(lake, "2026-04") == files[1:3]
    assert billing_files_of_month(lake, "2026-06") == []


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
    assert {r["mcc"] for r in rows if r["iso2"] in ("AT", "DE", "HR", "IT", "NO")} == {
        "232", "262", "219", "222", "242"}
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
    assert status.subscribers == len(states(lake, status)) > 0
    assert status.insufficient_history == status.subscribers    # two months of data: never a full window
