"""The retention sweep: golden due dates written from the policy text (§5, §3.2, §3.3), holds, safety.

Every expected date below is worked out by hand from the law, not read off the code:

* §5 ¶1-2: billing data are kept "do popolnega plačila storitve oziroma najdlje do poteka
  zastaralnih rokov" — until full payment, at most until the claim's limitation period (our
  catalog: consumer claims 1 year, business 3 years, from the end of the billing period);
* §5 ¶1: invoices "še 10 let po poteku leta, na katerega se račun nanaša" — 10 years after the end
  of the year the invoice is for;
* §3.2 ¶4: roaming aggregates six months; the catalog counts from the end of the aggregated month;
* §3.3 ¶6: fraud history five years after the customer relationship ends.

A period ends on the same day number so many months/years later, or on the last day of a shorter
month (Obligacijski zakonik, Art. 59); the data are kept through that day and are due the next.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from transforms import holds, retention
from transforms.analytics import build_analytics
from transforms.lake import Lake
from transforms.policy import Period
from transforms.pseudonymize import demo_keyring
from transforms.retention import RetentionError, sweep

KEYRING = demo_keyring()

PAID = "+38640111111"        # March 2026 invoice paid on 20 April 2026
UNPAID = "+38640222222"      # March 2026 invoice open
BUSINESS = "+38640333333"    # March 2026 invoice open, business claim
DISPUTED = "+38640444444"    # March 2026 invoice disputed, under a legal hold
NO_INVOICE = "+38640555555"  # no invoice in any payments extract
LEAP = "+38640666666"        # a call on 29 February 2024, never paid


# --- the rules themselves (policy object, no lake) ---------------------------------------------------

@pytest.mark.parametrize("category, anchor, claim, due", [
    # unpaid consumer call of 14 Mar 2026: period ends 31 Mar 2026, +1 year = 31 Mar 2027, due 1 Apr 2027
    ("billing_cdr", date(2026, 3, 31), "consumer_services", date(2027, 4, 1)),
    ("billing_cdr", date(2026, 3, 31), "business_services", date(2029, 4, 1)),   # 3 years
    ("billing_cdr", date(2026, 3, 31), None, date(2027, 4, 1)),                 # default claim: 1 year
    # leap day: February 2024 ends on the 29th; 29 Feb 2025 does not exist, so 28 Feb 2025; due 1 Mar
    ("billing_cdr", date(2024, 2, 29), "consumer_services", date(2025, 3, 1)),
    # an invoice dated 31 December 2025 is for 2025: kept through 31 Dec 2035, due 1 Jan 2036
    ("invoice", date(2025, 12, 31), None, date(2036, 1, 1)),
    # roaming aggregate of August 2026: 31 Aug + 6 months = 28 Feb 2027 (shorter month), due 1 Mar 2027
    ("roaming_aggregate", date(2026, 8, 31), None, date(2027, 3, 1)),
    ("roaming_aggregate", date(2024, 2, 29), None, date(2024, 8, 30)),         # 29 Feb + 6 months = 29 Aug
    # fraud history, relationship ended 30 June 2026: five years, due 1 July 2031
    ("fraud_history", date(2026, 6, 30), None, date(2031, 7, 1)),
    ("fraud_history", date(2024, 2, 29), None, date(2029, 3, 1)),
    ("authority_request_log", date(2026, 1, 15), None, date(2029, 1, 16)),     # three years from the request
    ("lawful_interception", date(2026, 1, 15), None, date(2056, 1, 16)),       # thirty years from the measure
])
def test_due_dates_from_the_law(policy, category, anchor, claim, due):
    assert policy.retention_for(category).due_on(anchor, claim) == due


def test_period_sql_twin_agrees_with_python():
    con = duckdb.connect()
    days = [date(2023, 1, 31), date(2024, 2, 29), date(2024, 12, 31), date(2025, 8, 31), date(2026, 3, 30)]
    for period in (Period(0, 6), Period(1), Period(3), Period(10), Period(0, 1), Period(0, 0, 30)):
        for d in days:
            got = con.execute(f"SELECT {period.after_sql('$d')}", {"d": d}).fetchone()[0]
            assert got == period.after(d), (period, d)


# --- a hand-made lake -----------------------------------------------------------------------------------

def _billing(lake: Lake, policy, day: str, rows: list[tuple], name: str = "part-aaaaaaaaaaaaaaaa.parquet") -> Path:
    """Billing rows (origin number, direction, destination) of one event date, typed like the zone."""
    cols = []
    for f in policy.fields:
        if f.column in ("origin_number", "direction", "destination_number"):
            continue
        value = {"start_time": f"CAST('{day} 10:00:00' AS TIMESTAMP)", "service_type": "'call'",
                 "duration_s": "60", "imsi": "'2934' || substr(o, 6)", "cell_id": "'C0FFEE1'",
                 "location_area": "'1A2B'", "charged_amount": "0.10"}.get(f.column, "NULL")
        cols.append(f"CAST({value} AS {f.type}) AS {f.column}")
    values = ", ".join(f"({i}, '{o}', '{d}', '{t}')" for i, (o, d, t) in enumerate(rows))
    path = lake.zone("billing") / f"event_date={day}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.execute(f"""COPY (SELECT md5('{name}:' || i) AS record_id, repeat('a', 64) AS source_file_sha256,
                                   i AS source_row, 'test' AS run_id, o AS origin_number, t AS destination_number,
                                   d AS direction, {', '.join(cols)}
                            FROM (VALUES {values}) v(i, o, d, t)) TO '{path}' (FORMAT parquet)""")
    return path


def _invoices(lake: Lake, year: int, rows: list[tuple]) -> Path:
    """(invoice id, account, number, period, status, paid date, claim type, as of)."""
    path = lake.zone("invoices") / f"invoice_year={year}" / "part-bbbbbbbbbbbbbbbb.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    values = ", ".join("(" + ", ".join("NULL" if v is None else f"'{v}'" for v in r) + ")" for r in rows)
    duckdb.execute(f"""COPY (SELECT md5(invoice_id) AS record_id, invoice_id, account_id, subscriber_number,
                                   billing_period, CAST(paid_date AS DATE) AS paid_date, status, claim_type,
                                   CAST(as_of AS DATE) AS as_of, repeat('b', 64) AS source_file_sha256,
                                   row_number() OVER () AS source_row
                            FROM (VALUES {values}) v(invoice_id, account_id, subscriber_number, billing_period,
                                                    status, paid_date, claim_type, as_of))
                       TO '{path}' (FORMAT parquet)""")
    return path


def _roaming_month(lake: Lake, month: str, subscribers: int = 3, folder: str = "month={m}") -> Path:
    path = lake.zone("roaming") / folder.format(m=month) / "part.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.execute(f"""COPY (SELECT unhex(sha256('{month}:' || i)) AS subscriber_token,
                                   '{KEYRING.current.key_id}' AS hmac_key_id, '{month}' AS month, 3 AS days_home
                            FROM range({subscribers}) t(i)) TO '{path}' (FORMAT parquet)""")
    return path


@pytest.fixture()
def golden_lake(lake, policy, tmp_path) -> Lake:
    """March 2026 calls of each payment state, a leap-day call, invoices of 2025 and 2026, roaming months."""
    march = [(n, "outgoing", "+38651000000") for n in (PAID, UNPAID, BUSINESS, DISPUTED, NO_INVOICE)]
    _billing(lake, policy, "2026-03-14", march + [("+38651000000", "incoming", PAID)])  # PAID is served here too
    _billing(lake, policy, "2024-02-29", [(LEAP, "outgoing", "+38651000000")])
    files = [str(p) for p in lake.zone("billing").rglob("*.parquet")]
    build_analytics(files, lake, policy, KEYRING, tmp_path / "analytics-work", source_sha256="a" * 64)
    _invoices(lake, 2026, [
        ("INV-1", "ACC-1", PAID, "2026-03", "open", None, "consumer_services", "2026-04-05"),
        ("INV-1", "ACC-1", PAID, "2026-03", "paid", "2026-04-20", "consumer_services", "2026-04-21"),  # latest wins
        ("INV-2", "ACC-2", UNPAID, "2026-03", "open", None, "consumer_services", "2026-04-21"),
        ("INV-3", "ACC-3", BUSINESS, "2026-03", "open", None, "business_services", "2026-04-21"),
        ("INV-4", "ACC-4", DISPUTED, "2026-03", "disputed", None, "consumer_services", "2026-04-21"),
    ])
    _invoices(lake, 2025, [("INV-0", "ACC-1", PAID, "2025-12", "paid", "2026-01-10", "consumer_services", "2026-01-10")])
    _roaming_month(lake, "2026-08")
    _roaming_month(lake, "2026-08", folder="status/as_of={m}")    # the window assessed with August last
    _roaming_month(lake, "2024-02")
    return lake


def _numbers_left(lake: Lake) -> set[str]:
    files = [str(p) for p in lake.zone("billing").rglob("*.parquet")]
    if not files:
        return set()
    rows = duckdb.execute("SELECT DISTINCT origin_number FROM read_parquet(?, union_by_name = true)"
                          " WHERE direction = 'outgoing'", [files]).fetchall()
    return {r[0] for r in rows}


def _analytics_rows(lake: Lake) -> int:
    files = [str(p) for p in lake.zone("analytics").rglob("*.parquet")]
    return duckdb.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0] if files else 0


def _run(lake, policy, day: str, **kw):
    return sweep(lake, policy, KEYRING, date.fromisoformat(day), **kw)


def test_golden_billing_days(golden_lake, policy):
    lake = golden_lake
    hold = holds.place(lake, policy, KEYRING, reason="dispute INV-4", placed_by="billing-ops", subscriber=DISPUTED)
    everyone = {PAID, UNPAID, BUSINESS, DISPUTED, NO_INVOICE, LEAP}
    # 28 Feb 2025: the leap-day call is kept through 28 Feb 2025 (1 year after 29 Feb 2024) ...
    _run(lake, policy, "2025-02-28")
    assert _numbers_left(lake) == everyone
    # ... and goes on 1 March 2025.
    _run(lake, policy, "2025-03-01")
    assert _numbers_left(lake) == everyone - {LEAP}
    # The paid March invoice: kept through the payment day (20 April), gone on 21 April 2026.
    _run(lake, policy, "2026-04-20")
    assert PAID in _numbers_left(lake)
    result = _run(lake, policy, "2026-04-21")
    assert _numbers_left(lake) == {UNPAID, BUSINESS, DISPUTED, NO_INVOICE}
    # The incoming call PAID received went too (PAID is its served subscriber), and its analytics row.
    assert [(a.action, a.rows, a.due_on) for a in result.actions if a.dataset == "billing"] == [
        ("anonymized", 2, "2026-04-21"), ("kept", 4, "2027-04-01")]
    assert [(a.action, a.rows) for a in result.actions if a.dataset == "analytics"] == [("deleted", 2), ("kept", 4)]
    # Unpaid consumer claims, and no invoice at all: one year after the end of March 2026.
    _run(lake, policy, "2027-03-31")
    assert _numbers_left(lake) == {UNPAID, BUSINESS, DISPUTED, NO_INVOICE}
    result = _run(lake, policy, "2027-04-01")
    assert _numbers_left(lake) == {BUSINESS, DISPUTED}
    held = [a for a in result.actions if a.action == "held"]
    assert {(a.dataset, a.rows, a.hold_ids) for a in held} == {("billing", 1, hold.hold_id),
                                                                 ("analytics", 1, hold.hold_id)}
    # Releasing the hold: the disputed call is due at the next sweep.
    holds.release(lake, hold.hold_id, released_by="billing-ops", reason="dispute settled")
    _run(lake, policy, "2027-04-02")
    assert _numbers_left(lake) == {BUSINESS}
    # The business claim runs three years.
    _run(lake, policy, "2029-03-31")
    assert _numbers_left(lake) == {BUSINESS}
    _run(lake, policy, "2029-04-01")
    assert _numbers_left(lake) == set() and _analytics_rows(lake) == 0
    assert not list(lake.zone("billing").iterdir())          # emptied partitions are removed


def test_golden_invoices_and_roaming(golden_lake, policy):
    lake = golden_lake
    _run(lake, policy, "2027-02-28")
    assert (lake.zone("roaming") / "month=2026-08").exists() and not (lake.zone("roaming") / "month=2024-02").exists()
    assert (lake.zone("roaming") / "status" / "as_of=2026-08").exists()
    _run(lake, policy, "2027-03-01")
    assert not (lake.zone("roaming") / "month=2026-08").exists()
    assert not (lake.zone("roaming") / "status").exists()          # emptied folders go too
    # The 2025 invoice (paid in January 2026) is kept ten years after the end of 2025.
    _run(lake, policy, "2035-12-31")
    assert (lake.zone("invoices") / "invoice_year=2025").exists()
    result = _run(lake, policy, "2036-01-01")
    assert not (lake.zone("invoices") / "invoice_year=2025").exists()
    assert (lake.zone("invoices") / "invoice_year=2026").exists()
    assert [(a.partition, a.action, a.rows, a.due_on) for a in result.actions if a.dataset == "invoices"] == [
        ("invoice_year=2025", "deleted", 1, "2036-01-01"), ("invoice_year=2026", "kept", 5, "2037-01-01")]


def test_dry_run_writes_nothing(golden_lake, policy):
    lake = golden_lake
    before = {p: p.read_bytes() for p in lake.root.rglob("*.parquet")}
    result = _run(lake, policy, "2030-01-01", dry_run=True)
    assert result.rows("anonymized") == 7 and result.rows("deleted") > 0
    assert {p: p.read_bytes() for p in lake.root.rglob("*.parquet")} == before
    assert not (lake.zone("audit") / "retention").exists() and not lake.audit_db.exists()


def test_rerun_changes_nothing_and_records_once(golden_lake, policy):
    lake = golden_lake
    first = _run(lake, policy, "2027-04-01")
    state = {p: p.read_bytes() for p in lake.root.rglob("*.parquet") if "audit" not in p.parts}
    second = _run(lake, policy, "2027-04-01")
    assert {p: p.read_bytes() for p in lake.root.rglob("*.parquet") if "audit" not in p.parts} == state
    assert first.actions == second.actions and first.proofs == second.proofs
    con = duckdb.connect(str(lake.audit_db), read_only=True)
    assert con.execute("SELECT count(*) FROM audit_log WHERE action = 'retention_sweep'").fetchone()[0] == 1
    assert con.execute("SELECT sum(rows) FROM retention_actions WHERE action = 'anonymized'").fetchone()[0] == \
        first.rows("anonymized")
    con.close()


def test_killed_sweep_is_finished_by_the_rerun(golden_lake, policy, tmp_path, monkeypatch):
    import shutil

    lake = golden_lake
    twin = Lake.at(tmp_path / "twin")
    shutil.copytree(lake.root, twin.root)
    clean = _run(twin, policy, "2029-04-01")
    real_commit, calls = retention.lake_mod.commit_file, []

    def dies_on_second(tmp, final):           # the process dies after the journal's intent, before the rename
        calls.append(final)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_commit(tmp, final)
    monkeypatch.setattr(retention.lake_mod, "commit_file", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        _run(lake, policy, "2029-04-01")
    monkeypatch.setattr(retention.lake_mod, "commit_file", real_commit)
    resumed = _run(lake, policy, "2029-04-01")
    files = lambda lk: sorted(str(p.relative_to(lk.root)) for p in lk.root.rglob("*.parquet")   # noqa: E731
                              if "audit" not in p.parts)
    assert files(lake) == files(twin)
    assert resumed.rows("anonymized") == clean.rows("anonymized") and resumed.rows("deleted") == clean.rows("deleted")
    assert all(p.ok for p in resumed.proofs)


def test_refuses_a_catalog_without_a_lake_data_set(golden_lake, policy):
    import dataclasses

    thin = dataclasses.replace(policy, retention=tuple(r for r in policy.retention if r.category != "invoice"))
    before = {p: p.read_bytes() for p in golden_lake.root.rglob("*.parquet")}
    with pytest.raises(RetentionError, match="invoices"):
        _run(golden_lake, thin, "2040-01-01")
    assert {p: p.read_bytes() for p in golden_lake.root.rglob("*.parquet")} == before


def test_removed_identifiers_are_gone_from_the_bytes(golden_lake, policy):
    lake = golden_lake
    result = _run(lake, policy, "2027-04-01")      # rewrites the March file: UNPAID and NO_INVOICE go
    rewritten = [p for p in result.proofs if p.outcome == "rewritten"]
    assert rewritten and all(p.ok for p in result.proofs) and all(p.identifiers_checked > 0 for p in rewritten)
    for path in lake.zone("billing").rglob("*.parquet"):
        data = path.read_bytes()
        assert UNPAID.encode() not in data and NO_INVOICE.encode() not in data
        values = duckdb.execute("SELECT list(origin_number) FROM read_parquet(?)", [str(path)]).fetchone()[0]
        assert UNPAID not in values and BUSINESS in values
    con = duckdb.connect(str(lake.audit_db), read_only=True)
    assert con.execute("SELECT bool_and(ok), sum(identifiers_found) FROM retention_proofs").fetchone() == (True, 0)
    logged = con.execute("SELECT details FROM audit_log WHERE action = 'retention_sweep'").fetchone()[0]
    con.close()
    assert json.loads(logged)["rows"]["anonymized"] > 0
    assert UNPAID not in logged and "+386" not in logged      # counts, never values


def test_hold_refuses_numbers_in_the_reason_and_stores_no_number(lake, policy):
    with pytest.raises(holds.HoldError, match="digits"):
        holds.place(lake, policy, KEYRING, reason=f"customer {UNPAID}", placed_by="x", subscriber=UNPAID)
    with pytest.raises(holds.HoldError, match="scope"):
        holds.place(lake, policy, KEYRING, reason="nothing", placed_by="x")
    h = holds.place(lake, policy, KEYRING, reason="court order 12/2026", placed_by="legal", account="ACC-7",
                    date_from=date(2026, 1, 1), date_to=date(2026, 6, 30))
    assert [x.hold_id for x in holds.list_holds(lake, active_only=True)] == [h.hold_id]
    assert b"ACC-7" not in lake.audit_db.read_bytes()
    holds.release(lake, h.hold_id, released_by="legal", reason="order lifted")
    assert holds.list_holds(lake, active_only=True) == []
    with pytest.raises(holds.HoldError, match="already released"):
        holds.release(lake, h.hold_id, released_by="legal", reason="again")


def test_hold_by_token_takes_the_token_as_analytics_shows_it(golden_lake, policy):
    lake = golden_lake
    files = [str(p) for p in lake.zone("analytics").rglob("*.parquet")]
    shown, key_id = duckdb.execute("SELECT lower(hex(origin_number)), hmac_key_id FROM read_parquet(?) LIMIT 1",
                                   [files]).fetchone()
    with pytest.raises(holds.HoldError, match="32 hex digits"):      # the full 64-digit digest is not a token
        holds.place(lake, policy, KEYRING, reason="case 7", placed_by="x", subscriber_token=shown * 2, key_id=key_id)
    h = holds.place(lake, policy, KEYRING, reason="case 7", placed_by="x", subscriber_token=shown.upper(),
                    key_id=key_id)
    assert h.subject_tokens == {key_id: shown}


def test_account_hold_keeps_the_accounts_subscribers(golden_lake, policy):
    lake = golden_lake
    holds.place(lake, policy, KEYRING, reason="litigation L-9", placed_by="legal", account="ACC-2",
                dataset="billing")
    _run(lake, policy, "2027-04-01")
    assert UNPAID in _numbers_left(lake)           # ACC-2's subscriber: held in billing ...
    files = [str(p) for p in lake.zone("analytics").rglob("*.parquet")]
    # ... not in analytics, where only the business claim (3 years) is left
    assert duckdb.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0] == 1


def test_the_proof_finds_an_identifier_left_behind(lake, tmp_path):
    # The proof is not a formality: a file still holding a removed number fails it.
    part = lake.zone("billing") / "event_date=2026-03-14" / "part-cccccccccccccccc.parquet"
    part.parent.mkdir(parents=True)
    duckdb.execute(f"COPY (SELECT 'r1' AS record_id, '{UNPAID}' AS origin_number) TO '{part}' (FORMAT parquet)")
    evidence = tmp_path / "evidence.parquet"
    duckdb.execute(f"COPY (SELECT unnest(['{UNPAID}', 'r9']) AS ident) TO '{evidence}' (FORMAT parquet)")
    done = {"file": str(part.relative_to(lake.root)), "evidence": str(evidence), "dataset": "billing",
            "partition": part.parent.name, "rows_removed": 1}
    proof = retention._prove(duckdb.connect(), lake, done)
    assert (proof.identifiers_checked, proof.ok) == (2, False) and proof.identifiers_found >= 1
    part.unlink()
    duckdb.execute(f"COPY (SELECT 'r1' AS record_id, '{BUSINESS}' AS origin_number) TO '{part}' (FORMAT parquet)")
    assert retention._prove(duckdb.connect(), lake, done).ok
