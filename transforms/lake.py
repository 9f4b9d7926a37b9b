"""The lake on disk: zone folders, work areas and the atomic commit of files.

Zones are folders of hive-partitioned Parquet under the lake root (DESIGN §2).
A step writes into a temporary name beside the target and renames it into
view; readers see a whole file or nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

ZONES = ("billing", "invoices", "quarantine", "analytics", "aggregates", "roaming", "audit", "reports")
DUCKDB_THREADS = 2
DUCKDB_MEMORY = "2GB"


@dataclass(frozen=True)
class Lake:
    """Paths of one lake."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> "Lake":
        return cls(Path(root).resolve())

    def zone(self, name: str) -> Path:
        assert name in ZONES, name
        return self.root / name

    @property
    def audit_db(self) -> Path:
        return self.zone("audit") / "audit.duckdb"

    def work_dir(self, run_id: str) -> Path:
        """Scratch space for one run; holds only canonical (allowed) columns."""
        return self.root / "_work" / safe_run_id(run_id)

    def fragments_dir(self, run_id: str) -> Path:
        """Per-file audit facts waiting to be merged into audit.duckdb."""
        return self.zone("audit") / "_pending" / safe_run_id(run_id)

    def ensure(self) -> None:
        for z in ZONES:
            self.zone(z).mkdir(parents=True, exist_ok=True)


def safe_run_id(run_id: str) -> str:
    """Airflow run ids contain ':' and '+'; make them a portable folder name."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_id)


def connect(temp_dir: Path | None = None, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the project's resource limits (2 cores, flat memory)."""
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)   # before connecting: `database` may live beside it
    con = duckdb.connect(database)
    con.execute(f"SET threads = {DUCKDB_THREADS}")
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = true")
    if temp_dir is not None:
        con.execute("SET temp_directory = $d", {"d": str(temp_dir)})
    return con


def execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> duckdb.DuckDBPyConnection:
    """Run `sql` with the named parameters it uses (DuckDB refuses unused ones)."""
    return con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})


def sql_literal(path: str | Path) -> str:
    """A path as a SQL string literal, for views (they take no bound parameters).

    Only for the pipeline's own paths, never text from an input file; quotes are doubled all the same.
    """
    return "'" + str(path).replace("'", "''") + "'"


def commit_file(tmp: Path, final: Path) -> None:
    """Commit point: move a fully written file into view in one rename."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks (files here reach gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
