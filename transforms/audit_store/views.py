"""The compliance views: one question a data-protection officer asks per view, each a named `.sql` file
in `views/` (its first comment line is the view's description). Plus `roaming_status`, a view over the
roaming zone's window files, so the store itself holds no subscriber token (docs/design.md §6).

Views are (re)defined wherever the store is written; a read-only reader (the report) defines them for
its connection only (`temp=True`), so a store written by an older version still shows the current ones.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from transforms.audit_store.tables import ADDED_COLUMNS, TABLES, column_names, column_type, table_of
from transforms.lake import Lake
from transforms.lake.connection import sql_literal
from transforms.policy import Policy
from transforms.roaming.schema import STATUS_COLUMNS, STATUS_DIR

SQL_DIR = Path(__file__).resolve().parent / "views"
# Dependency order: a view is defined after the views it reads.
VIEW_NAMES = ("v_night_files", "v_missing_sources", "v_audit_chain", "v_last_run", "v_nightly_volumes",
              "v_aggregate_releases", "v_policy_violations",
              "v_analytics_columns", "v_retention_actions", "v_retention_due", "v_legal_holds_active",
              "v_roaming_states", "v_roaming_windows", "v_roaming_flagged", "v_zone_permissions",
              "v_subject_requests", "v_aggregates_waiting")
# Views whose rows hold subscriber tokens stay out of the Parquet exports: a snapshot under audit/ would
# outlive the roaming zone's retention (the sweep proves deletions there, not in audit/).
NOT_EXPORTED_VIEWS = ("v_roaming_flagged",)
_AFTER_SWEEP = "/*rows due within each horizon after the sweep*/"
_FROM_TODAY = "/*rows due within each horizon from today*/"
_DUE_SOON = "/*due soon within days*/"
_TODAY = "/*today*/"


def view_doc(name: str) -> str:
    """The view's description: the first comment line of its file."""
    first = (SQL_DIR / f"{name}.sql").read_text().splitlines()[0]
    return first.removeprefix("-- ")


def view_sql(name: str, policy: Policy) -> str:
    """The view's SELECT (constant text; the reporting horizons and the requests' due-soon days are the policy's
    integers)."""
    sql = (SQL_DIR / f"{name}.sql").read_text()
    if name == "v_retention_due":
        sql = (sql.replace(_AFTER_SWEEP, "".join(
            f"{_due_within('r.as_of', d)} AS rows_due_{d}d_after_sweep,\n       " for d in _horizons(policy)))
                  .replace(_FROM_TODAY, ",\n       ".join(
                      f"{_due_within('current_date', d)} AS rows_due_{d}d_from_today" for d in _horizons(policy))))
    if name == "v_subject_requests":
        sql = (sql.replace(_DUE_SOON, str(int(policy.subject_rights.due_soon_within_days)))
                  .replace(_TODAY, local_today_sql(policy)))
    return sql


def local_today_sql(policy: Policy) -> str:
    """Today where the operator is (`operator.local_timezone`), as a DuckDB DATE: the day a request's dates count
    in, whatever the session's zone."""
    return f"CAST(timezone({sql_literal(policy.operator.local_timezone)}, current_timestamp) AS DATE)"


def _horizons(policy: Policy) -> tuple[int, ...]:
    return tuple(int(d) for d in policy.reporting.retention_due_within_days)


def _due_within(since: str, days: int) -> str:
    return f"CAST(coalesce(sum(r.rows) FILTER (WHERE r.due_on <= {since} + {days}), 0) AS BIGINT)"


def define_views(con: duckdb.DuckDBPyConnection, lake: Lake, policy: Policy, *, temp: bool = False) -> None:
    """(Re)create `roaming_status` and every compliance view; called wherever the store is written."""
    if temp:
        stand_in_missing_tables(con)
        stand_in_added_columns(con)
    define_roaming_status(con, lake, temp=temp)
    kind = "TEMP VIEW" if temp else "VIEW"
    for name in VIEW_NAMES:
        # Names and SQL are the project's own files, never input.
        con.execute(f"CREATE OR REPLACE {kind} {name} AS {view_sql(name, policy)}")
        if not temp:
            # COMMENT takes no bound parameter; the text is the file's own, quotes doubled all the same.
            con.execute(f"COMMENT ON VIEW {name} IS '" + view_doc(name).replace("'", "''") + "'")


def define_roaming_status(con: duckdb.DuckDBPyConnection, lake: Lake, *, temp: bool = False) -> None:
    """The view `roaming_status`: every window assessed, one row per subscriber token with its figures.

    The rows stay in the roaming zone's Parquet (`roaming/status/as_of=YYYY-MM/`), where the retention
    sweep deletes them with their month and proves it byte by byte; the audit store holds no token.
    The view names the lake's absolute path, refreshed at every write of the store.
    """
    kind = "TEMP VIEW" if temp else "VIEW"
    status = lake.zone("roaming") / STATUS_DIR
    if any(status.glob("as_of=*/*.parquet")):
        source = ("read_parquet(" + sql_literal(status / "as_of=*" / "*.parquet")
                  + ", hive_partitioning = false, union_by_name = true)")
        present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        # Files written before a column existed lack it: the views read it as NULL rather than fail.
        missing = "".join(f", CAST(NULL AS {t}) AS {c}" for c, t in STATUS_COLUMNS if c not in present)
        con.execute(f"CREATE OR REPLACE {kind} roaming_status AS SELECT *{missing} FROM {source}")
    else:   # no window assessed yet: the same columns, no rows
        columns = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in STATUS_COLUMNS)
        con.execute(f"CREATE OR REPLACE {kind} roaming_status AS SELECT {columns} WHERE false")


def stand_in_missing_tables(con: duckdb.DuckDBPyConnection) -> None:
    """A read-only reader of a store written before a table existed (e.g. `zone_permissions`): for this
    connection, the table is a temp view of its columns with no rows, so the views answer as for a store that
    has it, empty."""
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    present = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND table_schema = 'main'",
        [catalog]).fetchall()}
    for name, t in TABLES.items():
        if name not in present:
            columns = ", ".join(f"CAST(NULL AS {column_type(t.row, c)[0]}) AS {c}" for c in column_names(t.row))
            # Names and types come from the row dataclasses, never from input.
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {columns} WHERE false")


def stand_in_added_columns(con: duckdb.DuckDBPyConnection) -> None:
    """A read-only reader of a store written before columns were added (`tables.ADDED_COLUMNS`): for this
    connection, each such table is a temp view of the same name that reads the missing columns as NULL, so
    the views answer as they would once a writer has added them."""
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    for row_type, names in ADDED_COLUMNS:
        table = table_of(row_type).name
        present = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? AND table_schema = 'main'"
            " AND table_name = ?", [catalog, table]).fetchall()}
        missing = [n for n in names if n not in present]
        if present and missing:
            nulls = "".join(f", CAST(NULL AS {column_type(row_type, n)[0]}) AS {n}" for n in missing)
            # Names come from the row dataclasses and the store's own catalog, never from input.
            con.execute(f'CREATE OR REPLACE TEMP VIEW {table} AS SELECT *{nulls}'
                        f' FROM "{catalog.replace(chr(34), chr(34) * 2)}".main.{table}')
