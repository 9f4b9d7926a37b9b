"""Hand-made billing partitions for the roaming tests, and the golden subscribers written from the rule.

The rule (Impl. Reg. (EU) 2016/2286 Art. 4, policy §3.2 ¶4): over a window of four months, a subscriber
is flagged when days roaming in the EU/EEA outweigh domestic days AND roaming consumption outweighs
domestic consumption; equal is not "outweighs"; less than a full window of history is never flagged.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from transforms.lake import Lake
from transforms.privacy.keys import demo_keyring
from transforms.privacy.tokens import token
from transforms.roaming.months import build_months

HOME, AT, DE, IT, CH, UNKNOWN = "29340", "23201", "26201", "22201", "22801", "99901"
MB = 1_000_000
WINDOW = ["2026-03", "2026-04", "2026-05", "2026-06"]

# Subscribers: IMSI and number (raw values that must never reach the roaming zone).
COMMUTER = ("293401000000001", "+38640100001")
LONG_STAY = ("293401000000002", "+38640100002")
NEWCOMER = ("293401000000003", "+38640100003")
TIE_PRESENCE = ("293401000000004", "+38640100004")
TIE_CONSUMPTION = ("293401000000005", "+38640100005")
GOLDEN = [COMMUTER, LONG_STAY, NEWCOMER, TIE_PRESENCE, TIE_CONSUMPTION]


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


@pytest.fixture(scope="session")
def golden_built(tmp_path_factory, policy):
    """The golden billing rows and their months, built once (tests get a copy: `golden`)."""
    root = tmp_path_factory.mktemp("golden")
    lake = Lake.at(root / "lake")
    lake.ensure()
    write_billing(lake, golden_rows())
    return lake, build_months(lake, policy, demo_keyring(), WINDOW, root / "work")


@pytest.fixture()
def golden(lake, golden_built):
    """A lake of its own holding the golden billing partitions and their four roaming months."""
    source, built = golden_built
    shutil.copytree(source.root, lake.root, dirs_exist_ok=True)
    return lake, built


def tok(sub) -> bytes:
    return bytes.fromhex(token(demo_keyring().current, "imsi", sub[0]))


def _rows_by_token(path: Path, where: str = "", params: list | None = None) -> dict[bytes, dict]:
    con = duckdb.connect()
    try:
        cur = con.execute(f"SELECT * FROM read_parquet('{path}', hive_partitioning = false) {where}", params or [])
        cols = [d[0] for d in cur.description]
        return {r[cols.index("subscriber_token")]: dict(zip(cols, r)) for r in cur.fetchall()}
    finally:
        con.close()


def month_row(lake, month: str, sub) -> dict:
    """The month file's row of `sub` ({} when it has none)."""
    path = lake.zone("roaming") / f"month={month}" / "part.parquet"
    return _rows_by_token(path, "WHERE subscriber_token = ?", [tok(sub)]).get(tok(sub), {})


def states(lake, result) -> dict[bytes, dict]:
    """The status file a window assessment wrote (`result.path`, relative to the lake): {token: row}."""
    assert result.path is not None
    return _rows_by_token(lake.root / result.path)
