"""transforms/privacy/generalize.py: analytics rows hold coarser values, by the policy's treatment per column."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import duckdb
import pytest

from transforms.privacy.generalize import UNKNOWN_AREA, define_generalized, treatments

# Three billed rows (hand-made): a cell with its location area, and two cells without one (the area is
# the record's location area, else 'unknown'; a cell is never looked up). IMEI 35467811 4323376 → TAC
# 35467811 (first 8 digits).
BILLING = """
    SELECT * FROM (VALUES
      ('r1', 'sha', DATE '2026-11-22', '+38640111222', TIMESTAMP '2026-11-22 10:42:13', '354678114323376',
       '36D8C0B', '1A9D', '386', 60::BIGINT),
      ('r2', 'sha', DATE '2026-11-22', '+38640111222', TIMESTAMP '2026-11-22 23:59:59', '35467811432337',
       'C0FFEE1', NULL, '49', 5::BIGINT),
      ('r3', 'sha', DATE '2026-11-23', '+38641000000', TIMESTAMP '2026-11-23 00:00:00', 'not-an-imei',
       'DEAD001', NULL, '386', 0::BIGINT)
    ) t(record_id, source_file_sha256, event_date, origin_number, start_time, imei, cell_id, location_area,
        called_country_code, duration_s)
"""


@pytest.fixture()
def billing_files(tmp_path, policy) -> list[str]:
    """Billing rows with every canonical column (the ones not above are NULL), laid out by event date."""
    given = {"origin_number", "start_time", "imei", "cell_id", "location_area", "called_country_code",
             "duration_s"}
    select = ", ".join(c if c in given else f"NULL AS {c}" for c in policy.allowed_columns)
    out = tmp_path / "billing"
    duckdb.execute(f"COPY (SELECT record_id, source_file_sha256, event_date, {select} FROM ({BILLING}))"
                   f" TO '{out}' (FORMAT parquet, PARTITION_BY (event_date))")
    return sorted(str(p) for p in out.glob("*/*.parquet"))


def test_every_column_has_a_treatment_with_its_clause(policy):
    by_column = {t.column: t for t in treatments(policy)}
    assert set(by_column) == set(policy.allowed_columns)
    assert (by_column["origin_number"].action, by_column["origin_number"].output_column) == \
        ("pseudonymized", "origin_number")
    assert (by_column["start_time"].action, by_column["start_time"].output_column) == ("generalized", "event_hour")
    assert (by_column["imei"].output_column, by_column["cell_id"].output_column) == ("imei_tac", "area")
    assert (by_column["called_country_code"].action) == "kept"
    assert (by_column["location_area"].action, by_column["location_area"].output_column) == ("dropped", None)
    assert all(t.clause.startswith(policy.analytics_clause) and "§3.2" in t.clause for t in by_column.values())


def test_generalized_rows(billing_files, policy):
    con = duckdb.connect()
    try:
        define_generalized(con, billing_files, policy)
        rows = con.execute("SELECT event_date, event_hour, imei_tac, area, called_country_code, duration_s"
                           " FROM generalized ORDER BY duration_s DESC").fetchall()
        columns = [d[0] for d in con.execute("SELECT * FROM generalized LIMIT 0").description]
        billed = con.execute("SELECT count(*), count(cell_id) FROM generalized_billing").fetchone()
        everything = " ".join(map(str, con.execute("SELECT * FROM generalized").fetchall()))
    finally:
        con.close()
    assert rows == [
        (datetime(2026, 11, 22).date(), datetime(2026, 11, 22, 10), "35467811", "1A9D", "386", 60),
        (datetime(2026, 11, 22).date(), datetime(2026, 11, 22, 23), "35467811", UNKNOWN_AREA, "49", 5),
        (datetime(2026, 11, 23).date(), datetime(2026, 11, 23, 0), None, "unknown", "386", 0),  # no TAC invented
    ]
    assert billed == (3, 3)                    # `<view>_billing`: the billing rows as read
    # The fine values are gone: no cell, no full IMEI, no exact time, no link to the billing row.
    assert not {"cell_id", "imei", "start_time", "record_id", "location_area"} & set(columns)
    assert {"event_date", "source_file_sha256", "origin_number"} <= set(columns)
    for fine in ("36D8C0B", "C0FFEE1", "DEAD001", "354678114323376", "10:42:13", "r1"):
        assert fine not in everything


def test_view_name_and_one_day_of_files(billing_files, policy):
    # The analytics step makes one view per day from that day's files only.
    con = duckdb.connect()
    try:
        define_generalized(con, [f for f in billing_files if "2026-11-23" in f], policy, view="day_0")
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        rows = con.execute("SELECT CAST(event_date AS VARCHAR), area FROM day_0").fetchall()
    finally:
        con.close()
    assert views == {"day_0", "day_0_billing"}
    assert rows == [("2026-11-23", "unknown")]


def test_treatments_follow_the_policy_not_column_names(billing_files, policy):
    # No branch names a column: a column the policy drops is gone, one it truncates to the hour is cut.
    fields = tuple(dataclasses.replace(f, analytics="drop") if f.column == "called_country_code" else f
                   for f in policy.fields)
    changed = dataclasses.replace(policy, fields=fields)
    assert {t.column: t.action for t in treatments(changed)}["called_country_code"] == "dropped"
    con = duckdb.connect()
    try:
        define_generalized(con, billing_files, changed)
        columns = [d[0] for d in con.execute("SELECT * FROM generalized LIMIT 0").description]
    finally:
        con.close()
    assert "called_country_code" not in columns and "duration_s" in columns
