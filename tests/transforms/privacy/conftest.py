"""Shared by the privacy tests: test keys, tokens worked out by hand, and hand-made analytics rows.

Expected tokens are computed here with Python's hmac from the rule
HMAC-SHA-256-128(secret, "<kind>:<E.164 or trimmed value>"), never copied from the code's output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import random
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from transforms.privacy.aggregates import AggregateResult, aggregate_day
from transforms.privacy.keys import HmacKey, KeyRing

SECRET_A = bytes(range(32, 64))            # 32 bytes
SECRET_B = hashlib.sha256(b"test key b").digest() + b"\x01" * 8   # 40 bytes
KEY_A = HmacKey("k2026-01", SECRET_A)
KEY_B = HmacKey("k2026-07", SECRET_B)
RING_A = KeyRing(KEY_A)
ROTATED = KeyRing(KEY_B, (KEY_A,))        # after the rotation: B makes tokens, A is kept for lookups


def by_hand(secret: bytes, message: str) -> str:
    """HMAC-SHA-256-128 by hand: the leftmost 16 bytes of the digest (RFC 2104 §5), as hex."""
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()[:32]


def stored(secret: bytes, message: str) -> bytes:
    """The token as the zones hold it: the digest's leftmost 16 bytes."""
    return bytes.fromhex(by_hand(secret, message))


def rows_as_dicts(cur: duckdb.DuckDBPyConnection) -> list[dict]:
    """The rows of an executed query as {column: value}."""
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


# --- analytics rows for the aggregate and suppression tests ------------------------------------------

DAY = "2026-11-22"
AGG_COLUMNS = ("origin_number", "event_hour", "service_type", "area", "service_area", "called_country_code",
               "duration_s", "data_volume_bytes", "charged_amount", "event_date", "direction", "origin_network",
               "termination_network")


def sub_token(n: int | str) -> str:
    """A subscriber token standing in for the analytics zone's (distinct per subscriber)."""
    return hashlib.sha256(f"subscriber-{n}".encode()).hexdigest()


def row(sub, *, day=DAY, hour=0, service="call", area="LA1", service_area="home", cc="386",
        duration=60, volume=0, amount="0.1000", direction="outgoing", network="29340", other_network=None):
    """One analytics row of subscriber `sub` (a tuple in AGG_COLUMNS order); `network` is the served
    subscriber's (origin network of an outgoing row, termination network of an incoming one)."""
    served_is_called = direction in ("incoming", "forwarded")
    origin, termination = (other_network, network) if served_is_called else (network, other_network)
    return (sub_token(sub), f"{day} {hour:02d}:00:00", service, area, service_area, cc, duration, volume,
            Decimal(amount), day, direction, origin, termination)


def write_rows(path: Path, rows: list[tuple], *, second_key: tuple = ()) -> Path:
    """Analytics rows as Parquet; with `second_key` (subscribers), an hmac_key_id column: 'k2' for their
    tokens, 'k1' for the others (tokens made before and after a key rotation)."""
    con = duckdb.connect()
    try:
        con.execute("""CREATE TABLE t (origin_number VARCHAR, event_hour TIMESTAMP, service_type VARCHAR,
                       area VARCHAR, service_area VARCHAR, called_country_code VARCHAR, duration_s BIGINT,
                       data_volume_bytes BIGINT, charged_amount DECIMAL(18,4), event_date DATE, direction VARCHAR,
                       origin_network VARCHAR, termination_network VARCHAR)""")
        columns = list(zip(*rows)) or [[] for _ in AGG_COLUMNS]
        con.execute("INSERT INTO t SELECT " + ", ".join(f"unnest(${c})" for c in AGG_COLUMNS),
                    {c: [str(v) if isinstance(v, Decimal) else v for v in col]
                     for c, col in zip(AGG_COLUMNS, columns)})
        key_id = ", CASE WHEN list_contains($k2, origin_number) THEN 'k2' ELSE 'k1' END AS hmac_key_id"
        con.execute(f"COPY (SELECT *{key_id if second_key else ''} FROM t) TO '{path}' (FORMAT parquet)",
                    {"k2": [sub_token(p) for p in second_key]} if second_key else {})
    finally:
        con.close()
    return path


def read_output(out: Path, release: int | None = None) -> dict:
    """{date: {release table: [dict]}} from the written files (`other` rows included, marked): the tables
    straight in `event_date=D/` (what `aggregate_day` writes), or those of `release=N/` (the aggregates zone)."""
    found = {}
    for part in sorted(out.glob("event_date=*")):
        folder = part if release is None else part / f"release={release}"
        if folder.is_dir():
            found[part.name.split("=", 1)[1]] = read_tables(folder)
    return found


def read_tables(folder: Path) -> dict:
    """{release table: [dict]} of one folder's `<table>.parquet` files."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        return {f.stem: rows_as_dicts(con.execute("SELECT * FROM read_parquet($f)", {"f": str(f)}))
                for f in sorted(folder.glob("*.parquet"))}
    finally:
        con.close()


def cells_of(out: dict, day: str, table: str, *, other: bool = False) -> list[dict]:
    """The released rows of one table and date: its cells, or (`other`) its `other` rows."""
    return [r for r in out.get(day, {}).get(table, []) if r["other"] == other]


def run_aggregates(tmp_path: Path, rows: list[tuple], policy) -> tuple[AggregateResult, dict]:
    """aggregate_day over `rows`; its result and what it wrote."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = write_rows(tmp_path / "analytics.parquet", rows)
    result = aggregate_day(str(src), policy, tmp_path / "work", tmp_path / "out")
    return result, read_output(tmp_path / "out")


def generated_rows(seed: int, n: int = 2500, people: int = 90, days: tuple[str, ...] = (DAY, "2026-11-23"),
                   hours: int = 6, areas: tuple = ("LA1", "LA2", "LA3", None)) -> list[tuple]:
    """Skewed random analytics rows: many small cells, some large; a tenth roaming in the EU or beyond."""
    rnd = random.Random(seed)
    rows = []
    for _ in range(n):
        sub = int(rnd.paretovariate(1.2)) % people
        service = rnd.choices(["call", "sms", "mms", "data", "purchase"], [40, 30, 3, 25, 2])[0]
        roaming = rnd.random() < 0.1
        rows.append(row(sub, day=rnd.choice(days), hour=rnd.randrange(hours), service=service,
                        area=rnd.choice(areas), service_area="roaming" if roaming else "home",
                        cc=rnd.choice(["386", "386", "43", "1"]) if service in ("call", "sms", "mms") else None,
                        duration=rnd.randrange(600), volume=rnd.randrange(10**6),
                        amount=f"{rnd.randrange(10**5) / 10**4:.4f}",
                        direction=rnd.choice(["outgoing", "incoming"]) if service != "data" else "outgoing",
                        network=rnd.choice(["23201", "31026", "99999"]) if roaming else "29340"))
    return rows


@pytest.fixture()
def policy_k3(policy):
    return dataclasses.replace(policy, k_anonymity=3)


# --- billing partitions for the analytics and lookup tests -------------------------------------------

def write_billing(lake, policy, day: str, rows: list[dict], source_sha256: str) -> str:
    """`billing/event_date=<day>/part-<sha>.parquet`: `rows` ({column: value}) with every canonical column
    typed as the policy says (NULL where a row gives none) and the lineage columns; returns the path."""
    path = lake.zone("billing") / f"event_date={day}" / f"part-{source_sha256[:16]}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE b (record_id VARCHAR, source_file_sha256 VARCHAR, source_row BIGINT, run_id VARCHAR, "
                    + ", ".join(f"{f.column} {f.type}" for f in policy.fields) + ")")
        for n, r in enumerate(rows, start=1):
            cols = ["record_id", "source_file_sha256", "source_row", "run_id", *r]
            con.execute(f"INSERT INTO b ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                        [f"{source_sha256[:8]}:{n}", source_sha256, n, "run-test", *r.values()])
        con.execute("COPY b TO $p (FORMAT parquet)", {"p": str(path)})
    finally:
        con.close()
    return str(path)
