"""transforms/generalize.py: analytics rows hold coarser values, by the policy's treatment per column."""

from __future__ import annotations

from datetime import datetime

import duckdb

from transforms.generalize import generalize_file, treatments

# Three billed rows (hand-made): a cell with its location area, a cell known only to the lookup,
# and a cell known to neither. IMEI 35467811 4323376 → TAC 35467811 (first 8 digits).
BILLING = """
    SELECT * FROM (VALUES
      ('r1', 'sha', DATE '2026-11-22', '+38640111222', TIMESTAMP '2026-11-22 10:42:13', '354678114323376',
       '36D8C0B', '1A9D', '386', 60::BIGINT),
      ('r2', 'sha', DATE '2026-11-22', '+38640111222', TIMESTAMP '2026-11-22 23:59:59', '35467811432337',
       'C0FFEE1', NULL, '49', 5::BIGINT),
      ('r3', 'sha', DATE '2026-11-22', '+38641000000', TIMESTAMP '2026-11-22 00:00:00', 'not-an-imei',
       'DEAD001', NULL, '386', 0::BIGINT)
    ) t(record_id, source_file_sha256, event_date, origin_number, start_time, imei, cell_id, location_area,
        called_country_code, duration_s)
"""


def _billing(tmp_path, policy):
    """Billing rows with every canonical column (the ones not above are NULL), laid out by event date."""
    cols = [c for c in policy.allowed_columns]
    given = {"origin_number", "start_time", "imei", "cell_id", "location_area", "called_country_code",
             "duration_s"}
    select = ", ".join(c if c in given else f"NULL AS {c}" for c in cols)
    out = tmp_path / "billing"
    duckdb.execute(f"COPY (SELECT record_id, source_file_sha256, event_date, {select} FROM ({BILLING}))"
                   f" TO '{out}' (FORMAT parquet, PARTITION_BY (event_date))")
    return f"{out}/*/*.parquet"


def test_every_column_has_a_treatment_with_its_clause(policy):
    by_column = {t.column: t for t in treatments(policy)}
    assert set(by_column) == set(policy.allowed_columns)
    assert (by_column["origin_number"].action, by_column["origin_number"].output_column) == \
        ("pseudonymized", "origin_number")
    assert (by_column["start_time"].action, by_column["start_time"].output_column) == ("generalized", "event_hour")
    assert (by_column["imei"].output_column, by_column["cell_id"].output_column) == ("imei_tac", "area")
    assert (by_column["called_country_code"].action) == "kept"
    assert all(t.clause.startswith(policy.analytics_clause) and "§3.2" in t.clause for t in by_column.values())


def test_generalized_rows(tmp_path, policy):
    cells = tmp_path / "cells.csv"
    cells.write_text("cell_id,region\nC0FFEE1,Osrednjeslovenska\n")
    result = generalize_file(_billing(tmp_path, policy), policy, tmp_path / "work", cell_regions=str(cells))
    assert (result.rows, result.area_from_location_area, result.area_from_lookup, result.area_unknown) == (3, 1, 1, 1)
    con = duckdb.connect()
    rows = con.execute("SELECT event_hour, imei_tac, area, called_country_code, duration_s"
                       " FROM read_parquet(?) ORDER BY duration_s DESC", [result.output_path]).fetchall()
    columns = [d[0] for d in con.execute("SELECT * FROM read_parquet(?) LIMIT 0", [result.output_path]).description]
    con.close()
    assert rows == [
        (datetime(2026, 11, 22, 10), "35467811", "1A9D", "386", 60),
        (datetime(2026, 11, 22, 23), "35467811", "Osrednjeslovenska", "49", 5),
        (datetime(2026, 11, 22, 0), None, "unknown", "386", 0),   # not an IMEI: no TAC invented
    ]
    # The fine values are gone: no cell, no full IMEI, no exact time, no link to the billing row.
    assert not {"cell_id", "imei", "start_time", "record_id"} & set(columns)
