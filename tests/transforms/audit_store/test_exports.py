"""transforms/audit_store/exports.py: Parquet snapshots of every table and view but the token-holding ones, and
the schema listing docs/audit_schema.md must equal."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from tests.transforms.audit_store.conftest import AT, TABLE_NAMES, events, source_file
from tests.transforms.policy.conftest import load_edited
from transforms.audit_store import append_log, insert
from transforms.audit_store.exports import EXPORTED, export_parquet, schema_listing
from transforms.audit_store.views import NOT_EXPORTED_VIEWS, VIEW_NAMES, view_doc
from transforms.bundled import REPO_ROOT

DAY = date(2026, 11, 23)
DOC = REPO_ROOT / "docs" / "audit_schema.md"


def test_exported_is_every_table_and_view_but_the_token_holding_one():
    assert NOT_EXPORTED_VIEWS == ("v_roaming_flagged",)
    assert set(EXPORTED) == TABLE_NAMES | set(VIEW_NAMES) - {"v_roaming_flagged"}


def test_export_parquet_writes_one_snapshot_per_table_and_view(chained, lake, policy, pq_read):
    insert(chained, [source_file()])
    written = export_parquet(chained, lake, policy, run_date=DAY)
    names = TABLE_NAMES | set(VIEW_NAMES) - {"v_roaming_flagged"}
    assert sorted(written) == sorted(f"audit/parquet/{t}/run_date=2026-11-23/part.parquet" for t in names)
    folder = lake.zone("audit") / "parquet"
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    assert all(sorted(f.name for f in (folder / t / "run_date=2026-11-23").iterdir()) == ["part.parquet"]
               for t in names)   # no temp files left
    day = "run_date=2026-11-23/part.parquet"
    assert pq_read(folder / "audit_log" / day, "SELECT count(*), max(seq) FROM t") == [(5, 5)]
    assert pq_read(folder / "source_files" / day, "SELECT rows_read, rows_loaded, rows_rejected FROM t") == [
        (10, 7, 3)]
    assert pq_read(folder / "runs" / day, "SELECT count(*) FROM t") == [(0,)]
    assert pq_read(folder / "v_audit_chain" / day, "SELECT entries, last_seq, links_ok FROM t") == [(5, 5, True)]


def test_export_parquet_replaces_the_same_day_and_keeps_earlier_days(chained, lake, policy, pq_read):
    export_parquet(chained, lake, policy, run_date=DAY - timedelta(days=1))
    export_parquet(chained, lake, policy, run_date=DAY)
    append_log(chained, events(2, "more"), at=AT)
    export_parquet(chained, lake, policy, run_date=DAY)
    folder = lake.zone("audit") / "parquet" / "audit_log"
    assert sorted(p.name for p in folder.iterdir()) == ["run_date=2026-11-22", "run_date=2026-11-23"]
    # Each day is a snapshot of the whole table as of that day's last export.
    assert pq_read(folder / "*" / "*.parquet", "SELECT run_date, count(*) FROM t GROUP BY 1 ORDER BY 1",
                   hive=True) == [(date(2026, 11, 22), 5), (date(2026, 11, 23), 7)]


def test_export_parquet_removes_the_old_flat_files(chained, lake, policy):
    old = lake.zone("audit") / "parquet" / "runs.parquet"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"stale")
    export_parquet(chained, lake, policy, run_date=DAY)
    assert not old.exists()


def test_the_views_exported_follow_the_policys_horizons(chained, lake, pq_columns, tmp_path):
    policy = load_edited(tmp_path, lambda d: d["reporting"].update(retention_due_within_days=[14]))
    export_parquet(chained, lake, policy, run_date=DAY)
    columns = pq_columns(lake.zone("audit") / "parquet" / "v_retention_due" / f"run_date={DAY}" / "part.parquet")
    assert [c for c in columns if c.startswith("rows_due_")] == ["rows_due_14d_after_sweep", "rows_due_14d_from_today"]


# ---------------------------------------------------------------- docs/audit_schema.md

def documented() -> dict[str, list[tuple[str, str]]]:
    found, current = {}, None
    for line in DOC.read_text().splitlines():
        heading = re.fullmatch(r"## (?:Table|View) `(\w+)`", line)
        if heading:
            current = found.setdefault(heading.group(1), [])
            continue
        row = re.fullmatch(r"\| `(\w+)` \| ([^|]+) \| (.+) \|", line)
        if row and current is not None:
            assert row.group(3).strip(), f"column {row.group(1)} has no meaning"
            current.append((row.group(1), row.group(2).strip()))
    return found


@pytest.fixture()
def real_schema(empty_store) -> dict[str, list[tuple[str, str]]]:
    return schema_listing(empty_store)


def test_schema_listing_is_every_table_and_view_with_duckdbs_types(real_schema):
    names = list(real_schema)
    assert set(names[:len(TABLE_NAMES)]) == TABLE_NAMES and names[len(TABLE_NAMES):] == list(VIEW_NAMES)
    assert all(real_schema.values())                       # every name has columns
    assert ("path", "VARCHAR") in real_schema["roaming_runs"]


def test_the_doc_matches_the_real_schema(real_schema):
    assert documented() == real_schema


def test_the_doc_names_every_view_in_its_overview_with_its_files_description():
    text = DOC.read_text()
    for view in VIEW_NAMES:
        assert f"| `{view}` |" in text
        assert f"| `{view}` | {view_doc(view)} |" in text, f"{view}: the overview differs from {view}.sql's first line"
        assert f"## View `{view}`\n\n{view_doc(view)}\n" in text, f"{view}: its section opens otherwise"
