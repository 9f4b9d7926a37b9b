"""Shared by the retention tests: a hand-made lake whose due dates are worked out from the law."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from transforms.lake import Lake
from transforms.privacy.analytics import build_analytics
from transforms.privacy.keys import demo_keyring
from transforms.retention.sweep import sweep

KEYRING = demo_keyring()

PAID = "+38640111111"        # March 2026 invoice paid on 20 April 2026
UNPAID = "+38640222222"      # March 2026 invoice open
BUSINESS = "+38640333333"    # March 2026 invoice open, business claim
DISPUTED = "+38640444444"    # March 2026 invoice disputed, under a legal hold
NO_INVOICE = "+38640555555"  # no invoice in any payments extract
LEAP = "+38640666666"        # a call on 29 February 2024, never paid


def billing_part(lake: Lake, policy, day: str, rows: list[tuple], name: str = "part-aaaaaaaaaaaaaaaa.parquet") -> Path:
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


def invoice_part(lake: Lake, year: int, rows: list[tuple]) -> Path:
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


def roaming_part(lake: Lake, month: str, subscribers: int = 3, folder: str = "month={m}") -> Path:
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
    billing_part(lake, policy, "2026-03-14", march + [("+38651000000", "incoming", PAID)])  # PAID is served here too
    billing_part(lake, policy, "2024-02-29", [(LEAP, "outgoing", "+38651000000")])
    files = [str(p) for p in lake.zone("billing").rglob("*.parquet")]
    build_analytics(files, lake, policy, KEYRING, tmp_path / "analytics-work", source_sha256="a" * 64)
    invoice_part(lake, 2026, [
        ("INV-1", "ACC-1", PAID, "2026-03", "open", None, "consumer_services", "2026-04-05"),
        ("INV-1", "ACC-1", PAID, "2026-03", "paid", "2026-04-20", "consumer_services", "2026-04-21"),  # latest wins
        ("INV-2", "ACC-2", UNPAID, "2026-03", "open", None, "consumer_services", "2026-04-21"),
        ("INV-3", "ACC-3", BUSINESS, "2026-03", "open", None, "business_services", "2026-04-21"),
        ("INV-4", "ACC-4", DISPUTED, "2026-03", "disputed", None, "consumer_services", "2026-04-21"),
    ])
    invoice_part(lake, 2025, [("INV-0", "ACC-1", PAID, "2025-12", "paid", "2026-01-10", "consumer_services", "2026-01-10")])
    roaming_part(lake, "2026-08")
    roaming_part(lake, "2026-08", folder="status/as_of={m}")    # the window assessed with August last
    roaming_part(lake, "2024-02")
    return lake


def numbers_left(lake: Lake) -> set[str]:
    files = [str(p) for p in lake.zone("billing").rglob("*.parquet")]
    if not files:
        return set()
    rows = duckdb.execute("SELECT DISTINCT origin_number FROM read_parquet(?, union_by_name = true)"
                          " WHERE direction = 'outgoing'", [files]).fetchall()
    return {r[0] for r in rows}


def analytics_rows(lake: Lake) -> int:
    files = [str(p) for p in lake.zone("analytics").rglob("*.parquet")]
    return duckdb.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0] if files else 0


def run_sweep(lake, policy, day: str, **kw):
    return sweep(lake, policy, KEYRING, date.fromisoformat(day), **kw)
