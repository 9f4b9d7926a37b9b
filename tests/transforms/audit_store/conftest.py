"""Shared pieces of the audit-store tests: an open store, a chained log, typed rows."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone

import pytest

from transforms import audit_store
from transforms.audit_store import LogEvent, append_log
from transforms.audit_store.tables import SourceFile
from transforms.audit_store.views import define_views
from transforms.lake import Lake

AT = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)
NIGHT = date(2026, 11, 22)
# The store's tables, written out by hand (docs/audit_schema.md).
TABLE_NAMES = {"runs", "source_files", "field_findings", "validation_results", "rejection_reasons", "audit_log",
               "pseudonymization_log", "analytics_findings", "aggregate_releases", "aggregate_waiting", "legal_holds",
               "retention_actions", "retention_proofs", "roaming_runs", "zone_permissions", "marketing_profiles",
               "subject_requests"}


def events(n: int, prefix: str = "e") -> list[LogEvent]:
    return [LogEvent(f"{prefix}{i}", "pipeline", "file_loaded", f"billing_{i}.csv", {"rows_read": i * 10})
            for i in range(1, n + 1)]


def log_rows(con) -> list[tuple]:
    return con.execute("SELECT seq, event_key, prev_hash, hash, details FROM audit_log ORDER BY seq").fetchall()


def rows(con, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def source_file(**overrides) -> SourceFile:
    """A loaded file's row: 10 read = 7 loaded + 3 rejected."""
    row = SourceFile(run_id="r1", night=NIGHT, file_name="billing.csv", sha256="a" * 64, bytes=100, lines=11,
                     profile="canonical_csv", status="loaded", reason=None, rows_read=10, rows_loaded=7,
                     rows_rejected=3, billing_partitions=1, processed_at=AT)
    return dataclasses.replace(row, **overrides)


@pytest.fixture()
def con(lake):
    """The lake's audit store, open for writing (no lock: one process here)."""
    c = audit_store.connect(lake)
    yield c
    c.close()


@pytest.fixture()
def chained(con):
    """A log of five entries, all written at AT."""
    assert append_log(con, events(5), at=AT) == 5
    return con


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory, policy):
    """One store, its views defined for the real policy, for tests that only read it (none may write)."""
    lake = Lake.at(tmp_path_factory.mktemp("store") / "lake")
    lake.ensure()
    c = audit_store.connect(lake)
    define_views(c, lake, policy)
    yield c
    c.close()
