"""Opening `LAKE/audit/audit.duckdb`: one writer at a time, readers on a private copy; inserting typed rows by
column name.

DuckDB takes one writing process at a time. The steps that run per file (possibly in parallel Airflow
tasks) never open the store: they leave fragments, and one closing step merges them (docs/design.md §6).
Everything that writes (the nightly close, the retention sweep, holds, failure callbacks) takes
`writing(lake)`: the second writer waits for the lock instead of failing on DuckDB's. The lock is a flock
(writers of one host) and the writer lease in the lake (writers of every host sharing it: `writer_lease`).

Readers never open the live file: DuckDB's own lock would keep the writer out for as long as a reader
looks. `reading(lake)` copies the store under a shared hold of the writer's lock (a writer of this host
waits only for the copy), keeps the copy only if no writer of any host held the writer lease meanwhile (its
generation says), and opens the copy read-only, reaching no file but the roaming zone's window files; `snapshot`
writes such a copy for compliance to open in their own DuckDB (docs/design.md §6).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from transforms.audit_store.anchors import anchor_head, anchor_names, forget_copy, remember_copy
from transforms.audit_store.writer_lease import (WriterLease, current_lease, dead_here, generation, held_lease,
                                                 refuse_if_forbidden)
from transforms.audit_store.tables import ADDED_COLUMNS, SCHEMA, column_names, column_type, table_of
from transforms.lake import Lake
from transforms.lake.commit import LockWaitExpired, exclusive, shared
from transforms.lake.connection import DUCKDB_MEMORY, DUCKDB_THREADS, wal_path
from transforms.lake.patience import Patience
from transforms.lake.permissions import settle_path
from transforms.roaming.schema import STATUS_DIR

WAIT_ENV = "CDR_AUDIT_STORE_WAIT_S"
DEFAULT_WAIT_S = 300.0
WRITER_LOCK = ".writer.lock"
# DuckDB's refusal when another process holds the file: it names that process's program and pid.
_HELD_BY = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class StoreError(RuntimeError):
    """The audit store could not be opened as asked; the message names paths, pids and seconds, never data."""


class StoreBusy(StoreError):
    """The audit store stayed held by another process for longer than the wait (`CDR_AUDIT_STORE_WAIT_S`)."""


def store_wait_s(environ: Mapping[str, str] | None = None) -> float:
    """How long a writer waits for an outside reader of the live file, and a reader for a writer: seconds."""
    text = ((os.environ if environ is None else environ).get(WAIT_ENV) or "").strip()
    if not text:
        return DEFAULT_WAIT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds < 0:
        raise StoreError(f"{WAIT_ENV} must be a number of seconds, 0 or more")
    return seconds


def _say(message: str) -> None:
    print(f"cdr-audit: {message}", file=sys.stderr, flush=True)


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


def connect(lake: Lake, read_only: bool = False, *, wait_s: float | None = None,
            say: Callable[[str], None] | None = _say) -> duckdb.DuckDBPyConnection:
    """Open audit.duckdb for writing, creating the schema (the caller holds `writer_lock`; `writing` does both).

    When another process holds the file open (someone's `duckdb -readonly` shell on the live store), DuckDB
    refuses its lock: the open is retried for up to `wait_s` seconds (default `CDR_AUDIT_STORE_WAIT_S`,
    300 s), said once on stderr after the first second, then StoreBusy names that process.

    `read_only=True` opens the live file read-only and holds DuckDB's lock while open, keeping every writer
    out: for tests and tools only; the commands read through `reading`.
    """
    path = lake.audit_db
    if not read_only:
        refuse_if_forbidden(lake)
    if read_only:
        if not path.exists():
            raise FileNotFoundError(f"no audit store at {path}; run `cdr-audit run` first")
        con = duckdb.connect(str(path), read_only=True)
        # Readers see what writers see: times in UTC, `current_date` the UTC day (the views use it).
        con.execute("SET TimeZone = 'UTC'")
        return con
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _open_for_writing(path, store_wait_s() if wait_s is None else wait_s, say)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(SCHEMA)
    for statement in _MIGRATIONS:
        con.execute(statement)
    return con


def _open_for_writing(path: Path, wait_s: float, say: Callable[[str], None] | None) -> duckdb.DuckDBPyConnection:
    patience = Patience(wait_s, poll_s=0.25)
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            held = _HELD_BY.search(str(exc))
            if held is None:
                raise
            holder = f"pid {held['pid']}, {Path(held['program']).name}"
            if patience.over():
                raise StoreBusy(
                    f"the audit store {path} is held open by another process ({holder}) and stayed so for"
                    f" {wait_s:g} s ({WAIT_ENV}); it was not written. Close that session: readers open a copy"
                    " (`cdr-audit snapshot --lake LAKE --out FILE`), never the live file") from None
            patience.pause(say and (lambda: say(
                f"the audit store {path} is held open by another process ({holder}); waiting up to"
                f" {wait_s:g} s ({WAIT_ENV}) for it to close")))


@dataclass(frozen=True)
class Copied:
    """What `copy_store` copied, and for how long it held the writer out."""

    anchors: tuple[str, ...]    # the anchor files there were, listed under the same lock
    bytes: int                  # audit.duckdb and a WAL a killed writer left
    seconds: float              # time inside the shared lock: the longest a writer waited for this copy


def copy_store(lake: Lake, dest: Path, *, wait_s: float | None = None,
               say: Callable[[str], None] | None = _say) -> Copied:
    """Copy audit.duckdb (with the WAL a killed writer may have left, as `dest`.wal) to `dest`, consistent
    with no writer inside, on this host or another (docs/design.md §6):

    * a writer of this host is kept out by a shared hold of the writer's flock: a writer that comes waits
      only for the copy;
    * a writer of another host sees no flock. The copy is kept only if no live writer lease was held when it
      began nor when it ended, and the writers' generation did not move meanwhile (a session publishes its
      own before it opens the store): else it is discarded and taken again, seqlock style.

    A reader waits for a writer's session up to `wait_s` seconds (default `CDR_AUDIT_STORE_WAIT_S`), said once
    on stderr after the first second, then StoreBusy naming the writer's host and pid. The lock file is opened
    read-only and nothing is written into the lake: a reader may only read the audit zone.
    """
    wait_s = store_wait_s() if wait_s is None else wait_s
    if lake.audit_db in _writing_here():
        raise StoreError("this thread holds the audit store for writing: read through the writer's connection")
    patience = Patience(wait_s, poll_s=0.05)
    while True:
        before = _writers_now(lake)
        if before.holder is None:
            copied = _copy_beside_writers_here(lake, dest, patience.left())
            after = _writers_now(lake)
            if copied is not None and after == before:
                return copied
            holder = after.holder       # a writer came while we copied: the copy may be torn, take it again
        else:
            holder = before.holder
        who = "" if holder is None else f" by {holder.words()}"
        if patience.over():
            raise StoreBusy(f"the audit store {lake.audit_db} was being written for longer than {wait_s:g} s"
                            f" ({WAIT_ENV}){who}; nothing was read, try again once the writer is done") from None
        patience.pause(say and (lambda: say(
            f"the audit store {lake.audit_db} is being written{who} (a night's plan or close, a retention"
            f" sweep, a hold); waiting up to {wait_s:g} s ({WAIT_ENV})")))


@dataclass(frozen=True)
class _Writers:
    """What a reader can see of the writers from any host: the live writer lease, and the last generation."""

    holder: WriterLease | None  # a live holder (a dead one of this host writes nothing: it counts as none)
    lease_token: str            # the lease file's token, dead or alive ('' when none)
    generation: str


def _writers_now(lake: Lake) -> _Writers:
    lease = current_lease(lake)
    live = lease if lease is not None and dead_here(lease) is None else None
    return _Writers(holder=live, lease_token="" if lease is None else lease.token, generation=generation(lake))


def _copy_beside_writers_here(lake: Lake, dest: Path, wait_s: float) -> Copied | None:
    """Copy under a shared hold of this host's writer flock (waiting up to `wait_s` for a writer of this
    host); None when the wait ran out."""
    lock = lake.zone("audit") / WRITER_LOCK
    if not lock.exists():
        copied = _copy_files(lake, dest)
        if not lock.exists():   # a writer creates the lock file before it opens the store: none came meanwhile
            return copied
    try:
        with shared(lock, wait_s):
            return _copy_files(lake, dest)
    except LockWaitExpired:
        return None


def _copy_files(lake: Lake, dest: Path) -> Copied:
    start = time.monotonic()
    src, wal, dest_wal = lake.audit_db, wal_path(lake.audit_db), wal_path(dest)
    shutil.copyfile(src, dest)
    size = dest.stat().st_size
    if wal.exists():    # a writer killed mid-session: its committed work is still in the WAL
        shutil.copyfile(wal, dest_wal)
        size += dest_wal.stat().st_size
    else:
        dest_wal.unlink(missing_ok=True)
    names = anchor_names(lake)
    return Copied(anchors=names, bytes=size, seconds=time.monotonic() - start)


@contextmanager
def reading(lake: Lake, *, wait_s: float | None = None,
            say: Callable[[str], None] | None = _say) -> Iterator[duckdb.DuckDBPyConnection]:
    """The audit store as of now, for reading: a private copy (`copy_store`, in a temporary folder only this
    user can enter, removed on exit) opened read-only. The live file is never opened, so a reader, however
    long it looks, keeps no writer out. Checks of the anchors on this connection hold the copy to the anchors
    listed with it.

    The connection refuses every change (DuckDB's read-only mode) and reaches no file but the roaming zone's
    window files, which `roaming_status` reads: no ATTACH of the live store, no COPY out, its settings
    locked.
    """
    path = lake.audit_db
    if not path.exists():
        raise FileNotFoundError(f"no audit store at {path}; run `cdr-audit run` first")
    folder = Path(tempfile.mkdtemp(prefix="cdr-audit-read-"))   # mode 0700
    try:
        copy = folder / path.name
        copied = copy_store(lake, copy, wait_s=wait_s, say=say)
        con = _open_copy(copy, lake)
        remember_copy(con, copied.anchors)
        try:
            yield con
        finally:
            forget_copy(con)
            con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _open_copy(copy: Path, lake: Lake) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(copy), read_only=True,
                         config={"threads": DUCKDB_THREADS, "memory_limit": DUCKDB_MEMORY})
    try:
        # Readers see what writers see: times in UTC, `current_date` the UTC day (the views use it).
        con.execute("SET TimeZone = 'UTC'")
        # A read-only connection may still ATTACH another file read-write: this one reaches no file but the
        # roaming zone's window files (the view `roaming_status`), and its settings cannot be changed back.
        con.execute("SET allowed_directories = $dirs", {"dirs": [str(lake.zone("roaming") / STATUS_DIR) + os.sep]})
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


@dataclass(frozen=True)
class Snapshot:
    """What `snapshot` wrote."""

    path: Path
    bytes: int
    seconds: float          # how long the writer was kept out (the copy)
    entries: int            # audit-log entries in the copy
    head_seq: int | None


def snapshot(lake: Lake, out: Path, *, wait_s: float | None = None,
             say: Callable[[str], None] | None = _say) -> Snapshot:
    """Write a copy of the audit store to `out` (outside the lake), for compliance to open in their own DuckDB
    instead of the live file. A WAL a killed writer left is folded into the copy, so `out` is one file."""
    out = Path(out).resolve()
    if out.is_relative_to(lake.root):
        raise StoreError(f"write the snapshot outside the lake ({lake.root}): it is a private copy")
    if not lake.audit_db.exists():
        raise FileNotFoundError(f"no audit store at {lake.audit_db}; run `cdr-audit run` first")
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))   # beside `out`: one rename
    try:
        copy = folder / out.name
        copied = copy_store(lake, copy, wait_s=wait_s, say=say)
        if wal_path(copy).exists():
            duckdb.connect(str(copy)).close()   # the private copy checkpoints the WAL into its file
        con = duckdb.connect(str(copy), read_only=True)
        try:
            entries, head = con.execute("SELECT count(*), max(seq) FROM audit_log").fetchone()
        finally:
            con.close()
        os.replace(copy, out)   # commit point: the snapshot appears whole
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Snapshot(path=out, bytes=out.stat().st_size, seconds=copied.seconds, entries=entries, head_seq=head)


_here = threading.local()


def _writing_here() -> set[Path]:
    """The stores this thread holds the writer's lock of (a reader here would wait for itself)."""
    if not hasattr(_here, "stores"):
        _here.stores = set()
    return _here.stores


@contextmanager
def writer_lock(lake: Lake, *, wait_s: float | None = None,
                say: Callable[[str], None] | None = _say) -> Iterator[None]:
    """The store's single writer, held without opening the store: this host's flock (a second writer here
    waits for it, and so does a reader's copy), then the writer lease, which holds across hosts where a flock
    does not (`writer_lease`; another host's writer waits up to `wait_s`, default `CDR_AUDIT_STORE_WAIT_S`,
    then StoreBusy). Refused at once (WriterRefused) inside `no_writing`: the per-file step never writes."""
    refuse_if_forbidden(lake)
    wait_s = store_wait_s() if wait_s is None else wait_s
    with exclusive(lake.zone("audit") / WRITER_LOCK), held_lease(lake, wait_s, say, StoreBusy):
        held = _writing_here()
        held.add(lake.audit_db)
        try:
            yield
        finally:
            held.discard(lake.audit_db)


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
