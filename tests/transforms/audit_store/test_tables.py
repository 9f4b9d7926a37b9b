"""transforms/audit_store/tables.py: the DDL generated from the row dataclasses is what DuckDB holds, column
by column, constraint by constraint. (That docs/audit_schema.md lists the same is test_exports.py.)"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime

import duckdb
import pytest

from tests.transforms.audit_store.conftest import TABLE_NAMES, source_file
from transforms.audit_store import insert
from transforms.audit_store.tables import (
    PER_RUN_TABLES, RETENTION_TABLES, SCHEMA, TABLES, AuditLogEntry, Integer, LegalHold, RoamingRun, Run, SourceFile,
    column_names, ddl, table_of,
)

# The documented rule (tables.py): a field's Python type gives its DuckDB type, `Integer` a 32-bit column;
# `X | None` is nullable, anything else NOT NULL.
DUCKDB_TYPE = {str: "VARCHAR", int: "BIGINT", bool: "BOOLEAN", float: "DOUBLE", date: "DATE",
               datetime: "TIMESTAMP WITH TIME ZONE"}


def declared(row_type: type) -> list[tuple[str, str, bool]]:
    """(column, DuckDB type, nullable) as the row dataclass declares them, in field order."""
    hints = typing.get_type_hints(row_type, include_extras=True)
    out = []
    for f in dataclasses.fields(row_type):
        hint, nullable = hints[f.name], False
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
            nullable = True
        out.append((f.name, "INTEGER" if hint == Integer else DUCKDB_TYPE[hint], nullable))
    return out


def in_duckdb(con, table: str) -> list[tuple[str, str, bool]]:
    return [(c, t, n == "YES") for c, t, n in con.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = ?"
        " ORDER BY ordinal_position", [table]).fetchall()]


def constraints(con, table: str, kind: str) -> list:
    return [(cols, expr) for cols, expr in con.execute(
        "SELECT constraint_column_names, expression FROM duckdb_constraints()"
        " WHERE table_name = ? AND constraint_type = ? ORDER BY constraint_index", [table, kind]).fetchall()]


def bare(expression: str) -> str:
    """A CHECK expression without the parentheses and spaces DuckDB adds when it prints one."""
    return expression.replace("(", "").replace(")", "").replace(" ", "")


def test_the_store_has_these_tables():
    assert set(TABLES) == TABLE_NAMES
    assert all(t.name == name and table_of(t.row) is t for name, t in TABLES.items())


@pytest.mark.parametrize("name", sorted(TABLE_NAMES))
def test_columns_types_and_nullability_are_the_row_dataclasses(empty_store, name):
    assert in_duckdb(empty_store, name) == declared(TABLES[name].row)


@pytest.mark.parametrize("name", sorted(TABLE_NAMES))
def test_primary_key_unique_and_checks_are_the_tables(empty_store, name):
    t = TABLES[name]
    assert constraints(empty_store, name, "PRIMARY KEY") == ([([t.primary_key], None)] if t.primary_key else [])
    assert constraints(empty_store, name, "UNIQUE") == [([c], None) for c in t.unique]
    assert [bare(e) for _, e in constraints(empty_store, name, "CHECK")] == [bare(c) for c in t.checks]


def test_the_constraints_by_hand(empty_store):
    keys = {t: c[0][0] for t in TABLE_NAMES if (c := constraints(empty_store, t, "PRIMARY KEY"))}
    assert keys == {"runs": ["run_id"], "legal_holds": ["hold_id"], "audit_log": ["seq"],
                    "subject_requests": ["request_id"]}
    unique = {t: c for t in TABLE_NAMES if (c := constraints(empty_store, t, "UNIQUE"))}
    assert unique == {"audit_log": [(["event_key"], None)]}
    [(columns, expression)] = constraints(empty_store, "source_files", "CHECK")
    assert sorted(columns) == ["rows_loaded", "rows_read", "rows_rejected"]
    assert bare(expression) == "rows_read=rows_loaded+rows_rejected"


@pytest.mark.parametrize("table, column, expected", [
    ("runs", "files_seen", ("INTEGER", True)),
    ("runs", "rows_read", ("BIGINT", True)),
    ("runs", "started_at", ("TIMESTAMP WITH TIME ZONE", False)),
    ("source_files", "lines", ("BIGINT", True)),
    ("source_files", "billing_partitions", ("INTEGER", False)),
    ("aggregate_releases", "k", ("INTEGER", False)),
    ("aggregate_releases", "event_date", ("DATE", False)),
    ("retention_actions", "dry_run", ("BOOLEAN", False)),
    ("retention_actions", "due_on", ("DATE", True)),
    ("roaming_runs", "path", ("VARCHAR", True)),          # a window with no subscriber writes no file
    ("audit_log", "seq", ("BIGINT", False)),
    ("legal_holds", "subject_tokens", ("VARCHAR", True)),
])
def test_some_columns_by_hand(empty_store, table, column, expected):
    assert {c: (t, n) for c, t, n in in_duckdb(empty_store, table)}[column] == expected


def test_not_null_is_enforced(con):
    with pytest.raises(duckdb.ConstraintException):
        insert(con, [source_file(status=None)])
    insert(con, [source_file(reason=None, profile=None, lines=None)])      # the nullable ones may be None


def test_source_files_accepts_a_balanced_row(con):
    insert(con, [source_file()])      # 10 = 7 + 3
    assert con.execute("SELECT rows_read, rows_loaded, rows_rejected FROM source_files").fetchall() == [(10, 7, 3)]


@pytest.mark.parametrize("read, loaded, rejected", [(10, 7, 2), (10, 8, 3), (0, 1, 0)])
def test_source_files_check_rejects_unbalanced_counts(con, read, loaded, rejected):
    with pytest.raises(duckdb.ConstraintException):
        insert(con, [source_file(rows_read=read, rows_loaded=loaded, rows_rejected=rejected)])
    assert con.execute("SELECT count(*) FROM source_files").fetchone()[0] == 0


def test_primary_key_and_unique_are_enforced(con):
    entry = AuditLogEntry(seq=1, event_key="k", logged_at=datetime(2026, 1, 1), actor="a", action="x", target="t",
                          details="{}", prev_hash="0" * 64, hash="1" * 64)
    insert(con, [entry])
    with pytest.raises(duckdb.ConstraintException):
        insert(con, [dataclasses.replace(entry, event_key="other")])        # seq again
    with pytest.raises(duckdb.ConstraintException):
        insert(con, [dataclasses.replace(entry, seq=2)])                    # event_key again


def test_ddl_is_create_if_not_exists_and_runs_twice():
    con = duckdb.connect()
    try:
        for t in TABLES.values():
            text = ddl(t)
            assert text.startswith(f"CREATE TABLE IF NOT EXISTS {t.name} (")
            con.execute(text)
            con.execute(text)
        con.execute(SCHEMA)
        assert {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()} == TABLE_NAMES
    finally:
        con.close()


def test_schema_is_every_tables_ddl():
    assert SCHEMA == "\n".join(ddl(t) for t in TABLES.values())


def test_column_names_and_table_of():
    assert column_names(LegalHold)[:4] == ("hold_id", "reason", "placed_by", "placed_at")
    assert column_names(Run) == tuple(f.name for f in dataclasses.fields(Run))
    assert table_of(RoamingRun).name == "roaming_runs"
    assert table_of(SourceFile) is TABLES["source_files"]


def test_per_run_and_retention_tables():
    # Rows a nightly run replaces whole when it is merged again; rows a sweep replaces when re-run.
    assert set(PER_RUN_TABLES) == {"source_files", "field_findings", "validation_results", "rejection_reasons",
                                   "pseudonymization_log", "analytics_findings", "aggregate_releases",
                                   "aggregate_waiting", "roaming_runs", "marketing_profiles"}
    assert RETENTION_TABLES == ("retention_actions", "retention_proofs")
    for name in (*PER_RUN_TABLES, *RETENTION_TABLES):
        assert "run_id" in column_names(TABLES[name].row), name


def test_rows_are_frozen_and_keyword_only():
    with pytest.raises(TypeError):
        Run("r1", date(2026, 11, 22))                      # positional: refused, columns go by name
    row = source_file()
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.rows_read = 0
