"""transforms/lake/connection.py: the one DuckDB setup (2 cores, flat memory, UTC), bound parameters only."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from transforms.lake.connection import DUCKDB_MEMORY, DUCKDB_THREADS, columns_of, connect, execute, sql_literal


def setting(con, name: str):
    return con.execute("SELECT current_setting($n)", {"n": name}).fetchone()[0]


def test_the_machines_limits():
    # docs/design.md §8: two cores and a flat memory ceiling, whatever the host has (issue 17: 768 MB, so a
    # night's RSS stays flat as it grows).
    assert (DUCKDB_THREADS, DUCKDB_MEMORY) == (2, "768MB")
    con = connect()
    plain = duckdb.connect()
    try:
        plain.execute("SET memory_limit = '768MB'")
        assert setting(con, "threads") == 2
        assert setting(con, "memory_limit") == setting(plain, "memory_limit")
        assert setting(con, "preserve_insertion_order") is True
    finally:
        con.close()
        plain.close()


def test_times_are_utc():
    con = connect()
    try:
        assert setting(con, "TimeZone") == "UTC"
        # 00:30 in Ljubljana (+01) is 23:30 UTC the day before: the day is the UTC one.
        got = con.execute("SELECT CAST(TIMESTAMPTZ '2026-11-23 00:30:00+01' AS VARCHAR),"
                          " CAST(TIMESTAMPTZ '2026-11-23 00:30:00+01' AS DATE)").fetchone()
        assert got == ("2026-11-22 23:30:00+00", date(2026, 11, 22))
    finally:
        con.close()


def test_spills_go_to_the_temp_dir_made_before_the_database_beside_it(tmp_path):
    temp = tmp_path / "run" / "tmp"
    con = connect(temp, database=str(tmp_path / "run" / "scratch.duckdb"))   # `run/` does not exist yet
    try:
        assert temp.is_dir()
        assert setting(con, "temp_directory") == str(temp)
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    finally:
        con.close()
    assert (tmp_path / "run" / "scratch.duckdb").is_file()


def test_execute_binds_only_the_parameters_the_sql_uses():
    con = connect()
    try:
        params = {"a": 1, "b": 2, "unused": 3}
        with pytest.raises(duckdb.InvalidInputException):
            con.execute("SELECT $a + $b", params)              # DuckDB refuses the unused one ...
        assert execute(con, "SELECT $a + $b", params).fetchone() == (3,)   # ... execute leaves it out
    finally:
        con.close()


def test_a_parameter_is_used_only_where_its_whole_name_stands():
    # `$d` is not used by `$dst`, nor `$file` by `$files`.
    con = connect()
    try:
        got = execute(con, "SELECT $dst, $files", {"d": "x", "dst": "to", "file": "f", "files": ["a", "b"]})
        assert got.fetchone() == ("to", ["a", "b"])
        assert execute(con, "SELECT $d || $dst", {"d": "x", "dst": "y"}).fetchone() == ("xy",)
    finally:
        con.close()


def test_sql_literal_doubles_quotes_and_reads_back(tmp_path, pq_write):
    assert sql_literal("/lake/it's") == "'/lake/it''s'"
    assert sql_literal(tmp_path) == f"'{tmp_path}'"
    folder = tmp_path / "o'brien's lake"
    folder.mkdir()
    path = pq_write(tmp_path / "t.parquet", "SELECT 7 AS n").rename(folder / "t.parquet")
    con = connect()
    try:
        con.execute(f"CREATE VIEW v AS SELECT * FROM read_parquet({sql_literal(path)})")
        assert con.execute("SELECT n FROM v").fetchall() == [(7,)]
    finally:
        con.close()


def test_columns_of_a_parquet_file_without_hive_columns(tmp_path, pq_write):
    folder = tmp_path / "event_date=2026-11-21"
    folder.mkdir()
    path = pq_write(folder / "part.parquet", "SELECT 'r1' AS record_id, 3 AS source_row, 60 AS duration_s")
    con = connect()
    try:
        assert columns_of(con, path) == ["record_id", "source_row", "duration_s"]
        assert columns_of(con, str(path)) == ["record_id", "source_row", "duration_s"]
    finally:
        con.close()
