"""Parquet snapshots of the audit store, for tools that do not speak DuckDB (docs/audit_schema.md).

Every table and every view but the token-holding ones goes to
`audit/parquet/<name>/run_date=YYYY-MM-DD/part.parquet`, a full snapshot as of that day's last export.
"""

from __future__ import annotations

import os
from datetime import date

import duckdb

from transforms.audit_store.store import now_utc
from transforms.audit_store.tables import TABLES
from transforms.audit_store.views import NOT_EXPORTED_VIEWS, VIEW_NAMES, define_views
from transforms.lake import Lake
from transforms.lake.commit import commit_file
from transforms.lake.permissions import make_dirs
from transforms.policy import Policy

EXPORTED = (*TABLES, *(v for v in VIEW_NAMES if v not in NOT_EXPORTED_VIEWS))


def export_parquet(con: duckdb.DuckDBPyConnection, lake: Lake, policy: Policy, *,
                   run_date: date | None = None) -> list[str]:
    """Snapshot every exported table and view; a second export the same day replaces that day's file.

    run_date is the UTC date of the export. Files of the old flat layout (`<name>.parquet`) are removed.
    """
    run_date = run_date or now_utc().date()
    out_dir = lake.zone("audit") / "parquet"
    make_dirs(out_dir)
    define_views(con, lake, policy)
    written = []
    for name in EXPORTED:
        folder = out_dir / name / f"run_date={run_date.isoformat()}"
        make_dirs(folder)
        final, tmp = folder / "part.parquet", folder / f".part.parquet.tmp-{os.getpid()}"
        # Names come from the project's own definitions, never from input.
        con.execute(f"COPY (SELECT * FROM {name}) TO $dst (FORMAT parquet)", {"dst": str(tmp)})
        commit_file(tmp, final)   # commit point for this name and day
        (out_dir / f"{name}.parquet").unlink(missing_ok=True)
        written.append(str(final.relative_to(lake.root)))
    return written


def schema_listing(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """{table or view: [(column, DuckDB type)]} for every table and every compliance view.

    docs/audit_schema.md lists the same; a test compares the two so the document cannot drift.
    """
    listing = {}
    for name in (*TABLES, *VIEW_NAMES):
        rows = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?"
                           " ORDER BY ordinal_position", [name]).fetchall()
        listing[name] = [(c, t) for c, t in rows]
    return listing
