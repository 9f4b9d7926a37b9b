"""`cdr-audit report`: the compliance report — last night at a glance, for a data-protection officer.

Reads only the audit store's compliance views (`transforms/audit_store/views/`, docs/audit_schema.md), on a
private read-only copy of the store (`audit_store.reading`, docs/design.md §6); prints a short summary and
writes one self-contained HTML file (inline CSS and SVG, no script, nothing fetched) to
`LAKE/reports/compliance-<night>.html`, with `LAKE/reports/index.html` pointing at the newest. The report
holds counts and the names of files, columns, rules and clauses — never a data value and never a subscriber
token (roaming is shown as counts per state).

queries.py gathers the figures, text.py prints the summary, page.py and charts.py shape them for the Jinja2
templates in templates/ (autoescaped).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from transforms.audit_store import reading
from transforms.audit_store.anchors import check_anchors
from transforms.audit_store.views import define_views
from transforms.lake import Lake
from transforms.lake.commit import commit_file
from transforms.lake.permissions import make_dirs
from transforms.policy import Policy
from transforms.report.page import render_html, render_index
from transforms.report.queries import chain_ok, gather
from transforms.report.text import render_text

__all__ = ["Report", "gather", "render_html", "render_index", "render_text", "write_report"]


@dataclass(frozen=True)
class Report:
    """What `write_report` produced."""

    night: date | None
    text: str                  # the summary printed to stdout
    html_path: Path | None     # None: the store holds no run yet
    index_path: Path | None
    chain_ok: bool


def _write(path: Path, text: str) -> None:
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    commit_file(tmp, path)   # commit point: the page appears whole


def write_report(lake: Lake, policy: Policy, out: Path | None = None) -> Report:
    """Read the audit store (a read-only copy), write the HTML report and return the printed summary.

    The policy gives the reporting horizons of the retention figures (`reporting.retention_due_within_days`).
    """
    with reading(lake) as con:
        define_views(con, lake, policy, temp=True)   # this connection only: the current views, whatever wrote the store
        d = gather(con, policy)
        d["anchors"] = check_anchors(con, lake)   # the anchors live beside the store, not in it
    text = render_text(d)
    if d["run"] is None:
        return Report(None, text, None, None, True)
    night = d["run"]["night"]
    folder = lake.zone("reports")
    path = out or folder / f"compliance-{night}.html"
    _write(path, render_html(d, str(lake.audit_db)))
    index = None
    if out is None:
        index = folder / "index.html"
        _write(index, render_index(folder))
    return Report(night, text, path, index, chain_ok(d))
