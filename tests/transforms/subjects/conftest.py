"""A tiny lake with one subject and the people they called, written row by row, so what a search must find
follows from the rows put in here (never from the code's output).

The subject S (number, IMSI, IMEI) and another subscriber O:

billing, 2026-06-30 (analytics made with key A, now retired):
  1  S calls O                       outgoing   S served
  2  C1 calls S                      outgoing   S other party (C1's record)
  3  S's leg of O's call             incoming   S served (O's number is S's own traffic data)
  4  C2's leg of S's call            incoming   S other party (C2's record)
  5  C3 calls X, forwarded to S      outgoing   S other party (redirection, C3's record)
  6  O calls X                       outgoing   nothing of S
billing, 2026-07-02 (analytics made with key B, current):
  7  S's data session (national spelling of S)        S served
  8  X calls O                                        nothing of S
invoices: two invoices of S (one listed by two extracts), one of O; quarantine: one CDR of S (negative
duration), one of C1 calling S (its duration failed), one payments row of S with a bad date; roaming: a month
and a window status of S under key A, a month of O.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.transforms.privacy.conftest import KEY_A, RING_A, ROTATED, SECRET_A, stored, write_billing
from transforms.privacy.analytics import build_analytics
from transforms.privacy.subject_index import index_committed
from transforms.roaming.schema import MONTH_COLUMNS, STATUS_COLUMNS
from transforms.steps.payments import load_payments

S_NUMBER, S_NATIONAL, S_IMSI, S_IMEI = "+38640123456", "040123456", "293401234567890", "356938035643809"
O_NUMBER, O_IMSI, O_IMEI, O_CELL = "+38651987654", "293409876543210", "490154203237518", "CELLAB12"
X_NUMBER = "+4915112345678"
# The callers: people whose records S is only the other party of. None of their identifiers may reach S.
CALLERS = {name: (number, imsi, imei, cell) for name, number, imsi, imei, cell in (
    ("C1", "+38631555111", "293405550000111", "353918057774561", "CELLC1X1"),
    ("C2", "+38641555222", "293405550000222", "354398069925673", "CELLC2X2"),
    ("C3", "+38651555333", "293405550000333", "358240051111110", "CELLC3X3"))}
S_DAY1, S_DAY2 = "2026-06-30", "2026-07-02"


def cdr(origin, destination, direction, *, imsi, imei=None, cell=None, redirection=None, service="voice",
        start="2026-06-30 10:00:00", duration=60, charged="0.5000") -> dict:
    return {"origin_number": origin, "destination_number": destination, "redirection_number": redirection,
            "direction": direction, "start_time": start, "duration_s": duration, "service_type": service,
            "imsi": imsi, "imei": imei, "cell_id": cell, "location_area": "LA7" if cell else None,
            "charged_amount": charged, "tariff_code": "T1"}


DAY1_ROWS = [
    cdr(S_NATIONAL, O_NUMBER, "outgoing", imsi=S_IMSI, imei=S_IMEI, cell="CELLS001", start="2026-06-30 10:00:00"),
    cdr(CALLERS["C1"][0], S_NUMBER, "outgoing", imsi=CALLERS["C1"][1], imei=CALLERS["C1"][2], cell=CALLERS["C1"][3],
        start="2026-06-30 11:00:00", duration=61, charged="0.7100"),
    cdr(O_NUMBER, S_NUMBER, "incoming", imsi=S_IMSI, imei=S_IMEI, cell="CELLS001", start="2026-06-30 11:30:00",
        duration=91),
    cdr(S_NUMBER, CALLERS["C2"][0], "incoming", imsi=CALLERS["C2"][1], imei=CALLERS["C2"][2], cell=CALLERS["C2"][3],
        start="2026-06-30 12:00:00", duration=62, charged="0.7200"),
    cdr(CALLERS["C3"][0], X_NUMBER, "outgoing", imsi=CALLERS["C3"][1], imei=CALLERS["C3"][2], cell=CALLERS["C3"][3],
        redirection=S_NUMBER, start="2026-06-30 13:00:00", duration=63, charged="0.7300"),
    cdr(O_NUMBER, X_NUMBER, "outgoing", imsi=O_IMSI, imei=O_IMEI, cell=O_CELL, start="2026-06-30 14:00:00"),
]
DAY2_ROWS = [
    cdr(S_NATIONAL, None, "outgoing", imsi=S_IMSI, imei=S_IMEI, service="data", start="2026-07-02 08:00:00",
        duration=300),
    cdr(X_NUMBER, O_NUMBER, "incoming", imsi=O_IMSI, imei=O_IMEI, cell=O_CELL, start="2026-07-02 09:00:00"),
]
# The subject's rows, by role, named by (start time, duration): what every zone built from billing must find.
SERVED = {("2026-06-30 10:00:00", 60), ("2026-06-30 11:30:00", 91), ("2026-07-02 08:00:00", 300)}
OTHER_PARTY = {("2026-06-30 11:00:00", 61), ("2026-06-30 12:00:00", 62), ("2026-06-30 13:00:00", 63)}

PAYMENTS_HEADER = ("invoice_id,account_id,subscriber_number,billing_period,invoice_date,due_date,amount_due,"
                   "amount_paid,paid_date,status,claim_type")
PAYMENTS = [
    f"INV-1,ACC-1,{S_NUMBER},2026-05,2026-06-03,2026-06-18,12.20,12.20,2026-06-10,paid,consumer_services",
    f"INV-2,ACC-1,{S_NUMBER},2026-06,2026-07-03,2026-07-18,15.00,0,,open,consumer_services",
    f"INV-3,ACC-2,{O_NUMBER},2026-06,2026-07-03,2026-07-18,9.00,0,,open,consumer_services",
    f"INV-4,ACC-1,{S_NUMBER},2026-04,2026-02-30,2026-05-18,1.00,0,,open,consumer_services",   # bad invoice date
]
S_INVOICE_ROWS = 3        # INV-1 (listed by both extracts) and INV-2; INV-4 is quarantined


def _write(path: Path, columns: list[tuple[str, str]], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE TABLE t (" + ", ".join(f"{c} {t}" for c, t in columns) + ")")
        for r in rows:
            cols = list(r)
            con.execute(f"INSERT INTO t ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})", list(r.values()))
        con.execute("COPY t TO $p (FORMAT parquet)", {"p": str(path)})
    finally:
        con.close()


def write_roaming(lake) -> None:
    """A month of S and of O, and S's window status, all made with key A (roaming tokens are the IMSI's)."""
    s_token, o_token = stored(SECRET_A, f"imsi:{S_IMSI}"), stored(SECRET_A, f"imsi:{O_IMSI}")
    zone = lake.zone("roaming")
    _write(zone / "month=2026-06" / "part.parquet", list(MONTH_COLUMNS), [
        {"subscriber_token": s_token, "hmac_key_id": KEY_A.key_id, "month": "2026-06", "days_home": 20,
         "days_eu_roaming": 3},
        {"subscriber_token": o_token, "hmac_key_id": KEY_A.key_id, "month": "2026-06", "days_home": 30,
         "days_eu_roaming": 0}])
    _write(zone / "status" / "as_of=2026-06" / "part.parquet", list(STATUS_COLUMNS), [
        {"as_of_month": "2026-06", "subscriber_token": s_token, "hmac_key_id": KEY_A.key_id,
         "state": "insufficient_history"}])


def write_quarantine(lake, policy) -> None:
    """CDR rows as the quarantine step keeps them (text, failing value blanked, a reason)."""
    cols = [("night", "DATE"), ("record_id", "VARCHAR"), ("source_file_sha256", "VARCHAR"), ("source_row", "BIGINT"),
            ("run_id", "VARCHAR"), ("reason", "VARCHAR"), *((c, "VARCHAR") for c in policy.allowed_columns)]
    _write(lake.zone("quarantine") / "night=2026-07-02" / "part-cdr.parquet", cols, [
        {"night": "2026-07-02", "record_id": "q1", "source_row": 5, "reason": "duration_negative",
         "origin_number": S_NATIONAL, "destination_number": X_NUMBER, "direction": "outgoing", "imsi": S_IMSI,
         "start_time": "2026-07-01T10:00:00Z"},
        {"night": "2026-07-02", "record_id": "q2", "source_row": 6, "reason": "duration_negative",
         "origin_number": CALLERS["C1"][0], "destination_number": S_NUMBER, "direction": "outgoing",
         "imsi": CALLERS["C1"][1], "imei": CALLERS["C1"][2], "cell_id": CALLERS["C1"][3],
         "start_time": "2026-07-01T11:00:00Z"},
        {"night": "2026-07-02", "record_id": "q3", "source_row": 7, "reason": "duration_negative",
         "origin_number": O_NUMBER, "destination_number": X_NUMBER, "direction": "outgoing", "imsi": O_IMSI}])


S_QUARANTINE = {"q1": "served", "q2": "other_party"}    # and the payments row of INV-4 (served)


@pytest.fixture()
def subject_lake(lake, policy, tmp_path):
    """The lake above: billing, analytics (key A for June, B for July), invoices (indexed under B, the key current
    when they came), quarantine, roaming."""
    june = write_billing(lake, policy, S_DAY1, DAY1_ROWS, "a" * 64)
    july = write_billing(lake, policy, S_DAY2, DAY2_ROWS, "b" * 64)
    build_analytics([june], lake, policy, RING_A, tmp_path / "w1", source_sha256="a" * 64)
    build_analytics([july], lake, policy, ROTATED, tmp_path / "w2", source_sha256="b" * 64)
    for night, rows in (("2026-07-05", PAYMENTS), ("2026-07-06", PAYMENTS[:1])):
        extract = tmp_path / f"payments_{night}.csv"
        extract.write_text("\n".join([PAYMENTS_HEADER, *rows]) + "\n")
        loaded = load_payments(extract, policy, lake, tmp_path / f"wp-{night}", night=night, run_id=f"run-{night}")
        index_committed(lake, loaded.zone_files, policy, ROTATED, tmp_path / f"wp-{night}")   # as the night does
    write_quarantine(lake, policy)
    write_roaming(lake)
    return lake

