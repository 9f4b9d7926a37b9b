"""The one way the pipeline opens DuckDB: the machine's limits (2 cores, flat memory), UTC, and bound
parameters only (docs/design.md §8)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from transforms.lake.permissions import make_dirs

DUCKDB_THREADS = 2
# The ceiling of each connection's buffers; beyond it DuckDB spills to the temp folder. With 2 GB the steps
# filled it as the night grew (a night's peak RSS 1,052 MB at 10M rows, 2,102 MB at 30M); the steps of a
# 10M-row night need at most ~700 MB, so 768 MB leaves them unspilled and holds a 30M-row night near
# 1.3 GB (benchmarks/README.md, "Memory as the night grows"; docs/design.md §8).
DUCKDB_MEMORY = "768MB"


def connect(temp_dir: Path | None = None, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the project's resource limits; spills go to `temp_dir`."""
    if temp_dir is not None:
        make_dirs(temp_dir)   # before connecting: `database` may live beside it
    con = duckdb.connect(database)
    con.execute(f"SET threads = {DUCKDB_THREADS}")
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = true")
    if temp_dir is not None:
        con.execute("SET temp_directory = $d", {"d": str(temp_dir)})
    return con


def wal_path(database: Path) -> Path:
    """Where DuckDB keeps the write-ahead log of the database file `database`."""
    return database.with_name(database.name + ".wal")


def remove_database(path: Path) -> None:
    """Remove a step's work database file and the write-ahead log a killed run may have left beside it (a fresh
    file must not meet an old log)."""
    path.unlink(missing_ok=True)
    wal_path(path).unlink(missing_ok=True)


def used_params(sql: str, params: dict) -> dict:
    """The named parameters `sql` uses (DuckDB refuses unused ones): where `$name` stands as a whole name
    (`$d` is not used by `$dst`)."""
    return {k: v for k, v in params.items() if re.search(rf"\${re.escape(k)}(?!\w)", sql)}


def execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> duckdb.DuckDBPyConnection:
    """Run `sql` with the named parameters it uses."""
    return con.execute(sql, used_params(sql, params))


def sql_literal(path: str | Path) -> str:
    """A path as a SQL string literal, for views (they take no bound parameters).

    Only for the pipeline's own paths, never text from an input file; quotes are doubled all the same.
    """
    return "'" + str(path).replace("'", "''") + "'"


def pass_count(items: int, per_pass: int) -> int:
    """How many passes `items` rows (or subscribers) take at most `per_pass` at a time; at least one."""
    return max(1, -(-int(items or 0) // per_pass))


def in_pass(hashed_sql: str, b: int, passes: int) -> str:
    """SQL true for the rows of pass `b` of `passes`, split by the 64-bit hash `hashed_sql`; true alone for one pass.

    The numbers are written into the SQL, not bound: DuckDB plans a prepared statement's filter without its
    values, and bound pass filters took 1.6-3x as long (the aggregates' pairs at 30M rows: 37 against 23 s; the
    roaming day's groups: 15.7-19 against 8-11 s; the retention sweep's evidence of a 13M-row part: 112-114
    against 37 s; benchmarks/README.md, "Stop 30" and "Stop 31"). They are the step's own counters, never input
    text.
    """
    return "true" if passes == 1 else f"{hashed_sql} % {int(passes)} = {int(b)}"


def columns_of(con: duckdb.DuckDBPyConnection, parquet: str | Path) -> list[str]:
    """The column names of a Parquet file (its own columns, no hive partition columns)."""
    return [d[0] for d in con.execute("SELECT * FROM read_parquet($p, hive_partitioning = false) LIMIT 0",
                                      {"p": str(parquet)}).description]
