"""Shared fixtures for the per-step unit tests: the real policy, a fresh lake, tiny tables."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from transforms.lake import Lake
from transforms.policy import Policy, load_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    """The real policy file (policy/a1_slovenia.yaml)."""
    return load_policy()


@pytest.fixture(scope="session")
def formats(policy):
    """The built-in source formats (formats/*.yaml)."""
    from transforms.formats import load_formats

    return load_formats(policy)


@pytest.fixture()
def lake(tmp_path) -> Lake:
    lk = Lake.at(tmp_path / "lake")
    lk.ensure()
    return lk


@pytest.fixture()
def work_dir(tmp_path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def write_parquet(path: Path, select_sql: str, params: dict | None = None) -> Path:
    """Materialize `select_sql` (DuckDB) as a Parquet file at `path`."""
    con = duckdb.connect()
    try:
        con.execute(f"COPY ({select_sql}) TO '{path}' (FORMAT parquet)", params or {})
    finally:
        con.close()
    return path


def read_parquet(path: str | Path, sql: str = "SELECT * FROM t", hive: bool = False) -> list[tuple]:
    """Rows of `sql` over the Parquet file(s) at `path`, exposed as table `t`."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}', hive_partitioning = {str(hive).lower()})")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def parquet_columns(path: str | Path) -> list[str]:
    con = duckdb.connect()
    try:
        return [d[0] for d in con.execute(
            f"SELECT * FROM read_parquet('{path}', hive_partitioning = false) LIMIT 0").description]
    finally:
        con.close()


@pytest.fixture(scope="session")
def pq_write():
    return write_parquet


@pytest.fixture(scope="session")
def pq_read():
    return read_parquet


@pytest.fixture(scope="session")
def pq_columns():
    return parquet_columns
