"""The tamper-evident audit log: each entry's hash covers its content and the previous entry's hash.

Editing, deleting or reordering any entry breaks every later link; `verify_chain` recomputes them all.
Appends are idempotent: an event whose key is already in the log is skipped (docs/design.md §6).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb

from transforms.audit_store.anchors import AnchorCheck, check_anchors
from transforms.audit_store.store import insert, now_utc, reading
from transforms.audit_store.tables import AuditLogEntry
from transforms.audit_store.views import define_views
from transforms.lake import Lake
from transforms.lake.records import to_plain
from transforms.policy import Policy

GENESIS = "0" * 64


@dataclass(frozen=True)
class LogEvent:
    """One audit-log entry before it is chained."""

    event_key: str
    actor: str
    action: str
    target: str
    details: dict


def outcome_event(key: str, actor: str, action: str, target: str, details: dict) -> LogEvent:
    """An entry stating an outcome that a later attempt under the same `key` may change: a run cleared and re-run
    in the Airflow UI keeps its run id, and its files or its close may end otherwise the second time. The key
    ends with a digest of the action and details, so the same outcome is logged once (a re-run that changes
    nothing adds nothing) and a different one is appended after the first: the log keeps both, the later last."""
    said = json.dumps([action, to_plain(details)], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return LogEvent(f"{key}:{hashlib.sha256(said.encode()).hexdigest()[:16]}", actor, action, target, details)


@dataclass(frozen=True)
class ChainCheck:
    """Outcome of recomputing the audit-log hash chain."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""


def _event_hash(prev_hash: str, seq: int, at: str, e: LogEvent) -> str:
    body = json.dumps(
        {"seq": seq, "at": at, "actor": e.actor, "action": e.action, "target": e.target,
         "details": e.details, "event_key": e.event_key},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


def append_log(con: duckdb.DuckDBPyConnection, events: Iterable[LogEvent], at: datetime | None = None) -> int:
    """Chain `events` onto the log; an event whose key is already there is skipped."""
    # Hash what verify_chain will read back: the time in UTC, the details as stored JSON.
    at = (at or now_utc()).astimezone(timezone.utc)
    at_text = at.isoformat()
    added = 0
    for e in events:
        if con.execute("SELECT 1 FROM audit_log WHERE event_key = ?", [e.event_key]).fetchone():
            continue
        # The last entry by max(seq): DuckDB 2.0's ORDER BY … LIMIT 1 can return an earlier row once rows were
        # deleted (a removed tail), and the next entry would take a seq already in the log.
        last = con.execute("SELECT seq, hash FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)").fetchone()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        details = json.loads(json.dumps(to_plain(e.details), sort_keys=True))
        e = LogEvent(e.event_key, e.actor, e.action, e.target, details)
        insert(con, [AuditLogEntry(
            seq=seq, event_key=e.event_key, logged_at=at, actor=e.actor, action=e.action, target=e.target,
            details=json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            prev_hash=prev, hash=_event_hash(prev, seq, at_text, e))])
        added += 1
    return added


@contextmanager
def logged_change(con: duckdb.DuckDBPyConnection, lake: Lake, policy: Policy, event: LogEvent,
                  at: datetime) -> Iterator[None]:
    """The body's change of the store and its audit-log entry, committed together with the views redefined: a
    change never stands in the store without its entry, nor an entry without its change (a hold placed or
    released, a subject's request recorded or extended)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        append_log(con, [event], at)
        define_views(con, lake, policy)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def verify_chain(con: duckdb.DuckDBPyConnection) -> ChainCheck:
    """Recompute every link of the audit log from the first entry."""
    prev, expected_seq, n = GENESIS, 1, 0
    rows = con.execute(
        "SELECT seq, event_key, logged_at, actor, action, target, details, prev_hash, hash FROM audit_log ORDER BY seq"
    ).fetchall()
    for seq, key, at, actor, action, target, details, prev_hash, stored in rows:
        n += 1
        if seq != expected_seq:
            return ChainCheck(False, n, seq, f"sequence gap: expected {expected_seq}")
        if prev_hash != prev:
            return ChainCheck(False, n, seq, "previous-hash link does not match the entry before it")
        at_text = at.astimezone(timezone.utc).isoformat()
        event = LogEvent(key, actor, action, target, json.loads(details))
        if _event_hash(prev, seq, at_text, event) != stored:
            return ChainCheck(False, n, seq, "entry content does not match its hash")
        prev, expected_seq = stored, seq + 1
    return ChainCheck(True, n)


@dataclass(frozen=True)
class StoreCheck:
    """A lake's audit log: its chain recomputed, and held to every anchor (`anchors.check_anchors`)."""

    chain: ChainCheck
    anchors: AnchorCheck

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.anchors.ok

    def problems(self) -> list[str]:
        """What failed, a line each: entry seqs and anchor file names, never a hash or a value."""
        broken = [] if self.chain.ok else [f"audit log chain BROKEN at seq {self.chain.first_bad_seq}:"
                                           f" {self.chain.problem}"]
        return broken + list(self.anchors.problems)


def verify_store(lake: Lake) -> StoreCheck:
    """Recompute the chain of a lake's audit store, read from a copy (`store.reading`), and hold it to every
    anchor: a log whose tail was deleted still chains, but no longer holds the entry an anchor names
    (docs/design.md §6)."""
    with reading(lake) as con:
        return StoreCheck(verify_chain(con), check_anchors(con, lake))
