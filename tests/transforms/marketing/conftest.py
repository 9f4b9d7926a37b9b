"""Shared by the marketing tests: billing rows and consent register rows written by hand, in the zones' layouts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from transforms.consents.register import PARTITION, REGISTER_COLUMNS, ZONE
from transforms.lake import Lake
from transforms.privacy.keys import demo_keyring

PROFILING = "marketing_profiling"
KEYRING = demo_keyring()


def call(origin: str, destination: str, at: str, *, service: str = "call", direction: str = "outgoing",
         seconds: int = 60, volume: int | None = None, area: str | None = "LA01") -> dict:
    """One billing row: the served subscriber is the origin of an outgoing event, the destination of an
    incoming one; `at` is 'YYYY-MM-DD HH:MM' (UTC)."""
    return {"origin_number": origin, "destination_number": destination, "direction": direction,
            "service_type": service, "start_time": at, "duration_s": seconds if service == "call" else None,
            "data_volume_bytes": volume, "location_area": area, "cell_id": "C0FFEE1" if area else None}


def write_billing(lake: Lake, policy, rows: list[dict], name: str = "part-aaaaaaaaaaaaaaaa.parquet") -> list[Path]:
    """Billing rows typed like the zone (every policy column, lineage), one part file per event date."""
    paths = []
    for day in sorted({r["start_time"][:10] for r in rows}):
        day_rows = [r for r in rows if r["start_time"][:10] == day]
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE TABLE src (i BIGINT, " + ", ".join(f"{f.column} VARCHAR" for f in policy.fields) + ")")
        for i, r in enumerate(day_rows):
            con.execute(f"INSERT INTO src VALUES (?, {', '.join('?' for _ in policy.fields)})",
                        [i, *[None if r.get(f.column) is None else str(r[f.column]) for f in policy.fields]])
        cols = ", ".join(f"CAST({f.column} AS {f.type}) AS {f.column}" for f in policy.fields)
        path = lake.zone("billing") / f"event_date={day}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"""COPY (SELECT md5('{name}:' || i) AS record_id, repeat('a', 64) AS source_file_sha256,
                                     i AS source_row, 'test' AS run_id, {cols} FROM src) TO '{path}' (FORMAT parquet)""")
        con.close()
        paths.append(path)
    return paths


def land_consents(lake: Lake, name: str, rows: list[tuple]) -> None:
    """One consent extract's rows in the register's layout: (subscriber, status, recorded_at[, purpose])."""
    table = pa.table({
        "record_id": [f"{name}-{i}" for i in range(len(rows))],
        "subscriber_number": [r[0] for r in rows],
        "purpose": [r[3] if len(r) > 3 else PROFILING for r in rows],
        "status": [r[1] for r in rows], "recorded_at": pa.array([r[2] for r in rows], pa.timestamp("us")),
        "channel": ["self_care_app"] * len(rows), "source_file_sha256": [name * 8] * len(rows),
        "source_row": list(range(2, len(rows) + 2)), "as_of": [date(2026, 11, 20)] * len(rows),
        "run_id": ["r"] * len(rows),
    })
    assert tuple(table.column_names) == REGISTER_COLUMNS
    for month in {r[2].strftime("%Y-%m") for r in rows}:
        part = lake.zone(ZONE) / f"{PARTITION}={month}"
        part.mkdir(parents=True, exist_ok=True)
        keep = [i for i, r in enumerate(rows) if r[2].strftime("%Y-%m") == month]
        pq.write_table(table.take(keep), part / f"part-{name}.parquet")


def profiles(lake: Lake, day: str) -> list[dict]:
    """The day's profile rows, as dicts."""
    path = lake.zone("marketing") / f"event_date={day}" / "part.parquet"
    if not path.exists():
        return []
    return pq.read_table(path).to_pylist()




@pytest.fixture()
def keyring():
    return KEYRING
