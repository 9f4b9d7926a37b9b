"""transforms/report/text.py: the summary `cdr-audit report` prints."""

from __future__ import annotations

from datetime import date

from tests.transforms.report.test_page import figures
from transforms.report import render_text
from transforms.report.queries import DueRows


def test_the_summary_names_the_night_the_chain_and_the_horizons():
    d = figures("billing")
    d["horizons"] = (7, 30, 365)
    d["due"] = [DueRows(as_of=date(2026, 11, 23), dataset="billing", kept=9, after_sweep=(1, 4, 9),
                        from_today=(0, 2, 8), next_due_on=date(2026, 11, 25))]
    text = render_text(d)
    assert "compliance report for night 2026-11-22 — run r1: completed" in text
    assert "rows due within 7 / 30 / 365 days of the sweep" in text
    assert "(from today 0 / 2 / 8; next due 2026-11-25)" in text
    assert "audit-log chain: BROKEN, 4 entries (first bad entry 3)" in text


def test_nothing_to_report_without_a_run():
    assert render_text({"run": None}) == "the audit store holds no run yet; nothing to report"
