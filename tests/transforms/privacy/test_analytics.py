"""transforms/privacy/analytics.py: a file's billing rows, generalized and pseudonymized, into the analytics zone.

Expected tokens are worked out by hand (conftest `stored`) from the rule; expected generalized values
from the policy's treatments (hour, TAC, location area else 'unknown', drops).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.leakscan import scan
from tests.transforms.privacy.conftest import RING_A, ROTATED, SECRET_A, SECRET_B, stored, write_billing
from transforms.privacy.analytics import build_analytics
from transforms.privacy.generalize import treatments
from transforms.privacy.tokens import KEY_ID_COLUMN

SHA = "ab" * 32
NUMBER, OTHER = "+38640123456", "+38651987654"
IMSI = "293401234567890"
ROWS = {
    "2026-11-22": [
        {"origin_number": "040123456", "destination_number": "+4915012345678", "direction": "outgoing",
         "service_type": "call", "start_time": "2026-11-22 10:42:13", "duration_s": 60, "imsi": IMSI,
         "imei": "354678114323376", "cell_id": "36D8C0B", "location_area": "1A9D", "called_country_code": "49",
         "charged_amount": Decimal("0.1234")},
        {"origin_number": "+386 51 987 654", "destination_number": "100", "redirection_number": "040123456",
         "direction": "forwarded", "service_type": "call", "start_time": "2026-11-22 23:59:59", "duration_s": 5,
         "cell_id": "C0FFEE1"},
    ],
    "2026-11-23": [
        {"origin_number": "0038640123456", "direction": "outgoing", "service_type": "data",
         "start_time": "2026-11-23 00:00:00", "data_volume_bytes": 1000, "imsi": IMSI, "imei": "not-an-imei"},
    ],
}


@pytest.fixture()
def billing(lake, policy) -> list[str]:
    return [write_billing(lake, policy, day, rows, SHA) for day, rows in ROWS.items()]


def analytics_rows(lake, pq_read) -> list[dict]:
    """Every analytics row as {column: value} (event_date from the folder), in event time order."""
    cols = [r[0] for r in pq_read(f"{lake.zone('analytics')}/*/*.parquet", "SELECT column_name FROM (DESCRIBE t)",
                                  hive=True)]
    return [dict(zip(cols, r)) for r in pq_read(f"{lake.zone('analytics')}/*/*.parquet",
                                                "SELECT * FROM t ORDER BY event_hour", hive=True)]


def test_build_analytics(billing, lake, policy, work_dir, pq_read):
    result = build_analytics(billing, lake, policy, RING_A, work_dir, source_sha256=SHA)
    assert result.rows == 3 and result.key_id == "k2026-01"
    assert result.zone.rows_by_partition == {"2026-11-22": 2, "2026-11-23": 1}
    assert result.zone.files == (f"analytics/event_date=2026-11-22/part-{SHA[:16]}.parquet",
                                 f"analytics/event_date=2026-11-23/part-{SHA[:16]}.parquet")
    # distinct identifiers per column, after E.164: 040123456 and 0038640123456 are one number
    assert result.tokenized == {"origin_number": 2, "destination_number": 2, "redirection_number": 1, "imsi": 1}
    assert result.treatments == treatments(policy)

    rows = analytics_rows(lake, pq_read)
    num, imsi = stored(SECRET_A, f"msisdn:{NUMBER}"), stored(SECRET_A, f"imsi:{IMSI}")
    assert [(r["event_date"], r["event_hour"], r["origin_number"], r["destination_number"],
             r["redirection_number"], r["imsi"]) for r in rows] == [
        (date(2026, 11, 22), datetime(2026, 11, 22, 10), num, stored(SECRET_A, "msisdn:+4915012345678"), None, imsi),
        (date(2026, 11, 22), datetime(2026, 11, 22, 23), stored(SECRET_A, f"msisdn:{OTHER}"),
         stored(SECRET_A, "msisdn:100"), num, None),
        (date(2026, 11, 23), datetime(2026, 11, 23, 0), num, None, None, imsi),
    ]
    assert [(r["imei_tac"], r["area"], r["called_country_code"], r["charged_amount"]) for r in rows] == [
        ("35467811", "1A9D", "49", Decimal("0.1234")), (None, "unknown", None, None), (None, "unknown", None, None)]
    assert {r[KEY_ID_COLUMN] for r in rows} == {"k2026-01"} and {r["source_file_sha256"] for r in rows} == {SHA}


def test_analytics_files_hold_the_treated_columns_only(billing, lake, policy, work_dir, pq_columns):
    result = build_analytics(billing, lake, policy, RING_A, work_dir, source_sha256=SHA)
    expected = ["source_file_sha256", *(t.output_column for t in treatments(policy) if t.output_column),
                KEY_ID_COLUMN]
    for f in result.zone.files:
        assert pq_columns(lake.root / f) == expected          # the date is the folder's
    # No link back to a billing row, no fine value (cell, IMEI, exact time, location area column).
    assert not {"record_id", "source_row", "run_id", "cell_id", "imei", "start_time", "location_area"} & set(expected)


def test_no_raw_identifier_and_no_staging_left(billing, lake, policy, work_dir):
    build_analytics(billing, lake, policy, RING_A, work_dir, source_sha256=SHA)
    raw = [IMSI, NUMBER, NUMBER.lstrip("+"), "040123456", OTHER, OTHER.lstrip("+"), "51987654", "4915012345678",
           "354678114323376", "36D8C0B", "C0FFEE1"]
    assert scan([lake.zone("analytics")], raw) == {}
    assert not (work_dir / "analytics_out").exists() and not any((work_dir / "tmp").rglob("*"))
    assert not list(work_dir.glob("analytics.duckdb*"))       # the work database holds raw spellings: gone
    assert all(not p.name.startswith(".") for p in lake.zone("analytics").rglob("*"))


def test_rerun_replaces_the_files_own_parts_and_a_rotation_changes_the_key(billing, lake, policy, work_dir, pq_read):
    build_analytics(billing, lake, policy, RING_A, work_dir, source_sha256=SHA)
    again = build_analytics(billing, lake, policy, ROTATED, work_dir, source_sha256=SHA)
    assert again.key_id == "k2026-07"
    rows = analytics_rows(lake, pq_read)
    assert len(rows) == 3                                     # the same part files, not a second copy
    assert {r[KEY_ID_COLUMN] for r in rows} == {"k2026-07"}
    assert rows[0]["origin_number"] == stored(SECRET_B, f"msisdn:{NUMBER}")


def test_a_day_in_pieces_gives_what_one_piece_gives(lake, policy, tmp_path, pq_read, monkeypatch):
    # 23 rows on one day: subscribers seen in several pieces, in several spellings, one of them forwarded to.
    # Cut into pieces of 4 rows, each with its own token lookup, the day must come out as one lookup makes it:
    # the same rows and tokens, the same distinct count per column (not one per piece), the same indexes.
    from transforms.lake import Lake
    from transforms.lake.partitions import index_path
    from transforms.privacy import analytics

    spell = ["040123456", "+38640123456", "0038640123456", "+386 51 987 654", "051987654", "+4915012345678"]
    day = [{"origin_number": spell[n % 6], "destination_number": spell[(n * 5 + 1) % 6], "direction": "outgoing",
            "service_type": "call", "start_time": f"2026-11-22 {n % 24:02d}:00:00", "duration_s": n,
            "redirection_number": spell[n % 3] if n % 4 == 0 else None, "imsi": f"29340123456789{n % 3}"}
           for n in range(23)]
    made = {}
    for name, piece_rows in (("whole", 1000), ("pieces", 4)):
        monkeypatch.setattr(analytics, "ROWS_PER_PIECE", piece_rows)
        where = Lake.at(tmp_path / name)
        billing = [write_billing(where, policy, "2026-11-22", day, SHA), *(
            write_billing(where, policy, d, rows, SHA) for d, rows in ROWS.items() if d != "2026-11-22")]
        result = analytics.build_analytics(billing, where, policy, RING_A, tmp_path / f"work-{name}",
                                           source_sha256=SHA)
        indexes = sorted(index_path(where.root / f) for f in result.zone.files) + [index_path(Path(p)) for p in billing]
        made[name] = (result.rows, result.tokenized, sorted(map(str, analytics_rows(where, pq_read))),
                      [pq_read(str(i), "SELECT * FROM t ORDER BY ALL") for i in indexes])
    assert made["pieces"] == made["whole"]
    rows, tokenized, _, indexes = made["whole"]
    assert rows == 24 and tokenized == {"origin_number": 3, "destination_number": 3, "redirection_number": 1,
                                        "imsi": 3}
    assert all(indexes)
