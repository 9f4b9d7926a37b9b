"""docs/audit_schema.md lists every exported table and compliance view with the columns and types DuckDB has."""

from __future__ import annotations

import re
from pathlib import Path

from transforms import audit
from transforms.lake import Lake

DOC = Path(__file__).resolve().parent.parent / "docs" / "audit_schema.md"


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


def test_the_doc_matches_the_real_schema(tmp_path):
    lake = Lake.at(tmp_path / "lake")
    lake.ensure()
    con = audit.connect(lake)
    try:
        audit.define_views(con, lake)
        real = audit.schema_listing(con)
    finally:
        con.close()
    assert documented() == real


def test_the_doc_names_every_view_in_its_overview():
    text = DOC.read_text()
    for view in audit.VIEWS:
        assert f"| `{view}` |" in text
