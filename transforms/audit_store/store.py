"""Opening `LAKE/audit/audit.duckdb`, the single-writer lock, and inserting typed rows by column name.

DuckDB takes one writing process at a time. The steps that run per file (possibly in parallel Airflow
tasks) never open the store: they leave fragments, and one closing step merges them (docs/design.md §6).
Everything that writes (the nightly close, the retention sweep, holds, failure callbacks) takes
`writing(lake)`: the second writer waits for the lock instead of failing on DuckDB's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone

import duckdb

from transforms.audit_store.anchors import anchor_head
from transforms.audit_store.tables import ADDED_COLUMNS, SCHEMA, column_names, column_type, table_of
from transforms.lake import Lake
from transforms.lake.commit import exclusive
from transforms.lake.permissions import settle_path


def _add_column(row_type: type, name: str) -> str:
    # Table and column names come from the row dataclasses, never from input.
    return f"ALTER TABLE {table_of(row_type).name} ADD COLUMN IF NOT EXISTS {name} {column_type(row_type, name)[0]}"


# Changes to tables of stores written by an earlier version: each is idempotent.
_MIGRATIONS = (
    # A window with no subscriber writes no status file, so its roaming_runs row has no path.
    "ALTER TABLE roaming_runs ALTER COLUMN path DROP NOT NULL",
    *(_add_column(row_type, name) for row_type, names in ADDED_COLUMNS for name in names),
)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def connect(lake: Lake, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open audit.duckdb (creating the schema when writable)."""
    path = lake.audit_db
    if read_only:
        if not path.exists():
            raise FileNotFoundError(f"no audit store at {path}; run `cdr-audit run` first")
        con = duckdb.connect(str(path), read_only=True)
        # Readers see what writers see: times in UTC, `current_date` the UTC day (the views use it).
        con.execute("SET TimeZone = 'UTC'")
        return con
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(SCHEMA)
    for statement in _MIGRATIONS:
        con.execute(statement)
    return con


@contextmanager
def reading(lake: Lake) -> Iterator[duckdb.DuckDBPyConnection]:
    """The audit store opened read-only; closed on exit."""
    con = connect(lake, read_only=True)
    try:
        yield con
    finally:
        con.close()


def writer_lock(lake: Lake):
    """The store's single-writer lock, held without opening the store (a second writer waits for it)."""
    return exclusive(lake.zone("audit") / ".writer.lock")


@contextmanager
def writing(lake: Lake) -> Iterator[duckdb.DuckDBPyConnection]:
    """The audit store opened for writing, under the single-writer lock; closed on exit.

    As the session ends, the log's head is anchored outside the store when it moved (`anchors.anchor_head`):
    here, so that no writer can forget it (docs/design.md §6). A transaction the session left open is rolled
    back first, as closing would, so the anchor names only what is committed.
    """
    with writer_lock(lake):
        con = connect(lake)
        try:
            # The database file has the audit zone's mode (readable by its group: docs/design.md §2), whatever
            # the umask DuckDB created it under.
            settle_path(lake.audit_db)
            yield con
        except BaseException as exc:
            try:
                _settle(con)
                anchor_head(lake, con)   # what the session committed before it failed is anchored all the same
            except Exception as anchor_exc:
                exc.add_note(f"the audit log's head was not anchored: {type(anchor_exc).__name__}")
            raise
        else:
            _settle(con)
            anchor_head(lake, con)
        finally:
            con.close()


def _settle(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back a transaction left open (closing would); nothing when none is."""
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass   # no transaction open: everything the session wrote is committed


def insert(con: duckdb.DuckDBPyConnection, rows: Sequence) -> int:
    """Insert rows of one table (instances of its row dataclass) by column name; returns how many."""
    if not rows:
        return 0
    row_type = type(rows[0])
    if any(type(r) is not row_type for r in rows):
        raise TypeError("insert() takes rows of one table at a time")
    names = column_names(row_type)
    # Table and column names come from the row dataclasses, never from input.
    con.executemany(f"INSERT INTO {table_of(row_type).name} ({', '.join(names)})"
                    f" VALUES ({', '.join('?' * len(names))})", [[getattr(r, n) for n in names] for r in rows])
    return len(rows)


def select(con: duckdb.DuckDBPyConnection, row_type: type, where: str = "", params: Sequence = ()) -> list:
    """Rows of a table read back as its row dataclass, by column name. `where` is the caller's constant
    clause (e.g. "WHERE hold_id = ? ORDER BY …"), values bound through `params`."""
    names = column_names(row_type)
    cursor = con.execute(f"SELECT {', '.join(names)} FROM {table_of(row_type).name} {where}", list(params))
    return [row_type(**dict(zip(names, r))) for r in cursor.fetchall()]
