"""transforms/report/text.py: the summary `cdr-audit report` prints."""

from __future__ import annotations

import dataclasses
import re
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
    assert "audit-log chain: BROKEN, 4 entries, head seq 4 (first bad entry 3); no anchor written yet" in text


def test_nothing_to_report_without_a_run():
    assert render_text({"run": None}) == "the audit store holds no run yet; nothing to report"


def test_refused_files_are_not_quarantined_and_lateness_is_counted():
    from transforms.report.queries import FileOutcome

    d = figures("billing")
    d["night"].update(files=3, files_rejected=1, rows_read=40, rows_refused=30, rows_before_lateness_window=4,
                      rows_after_night=1)
    d["files"] = [FileOutcome("a.csv", "loaded", "canonical_csv", 10, 7, 3, "main reason: imsi_shape (2 of 3"
                              " quarantined)", 4, 1, "4 rows dated more than 7 day(s) before the night, 1 after it"),
                  FileOutcome("notes.csv", "rejected_file", "-", 30, 0, None, "nothing kept: no known source format",
                              None, None)]
    d["violations"] = [("refused_file", "", "", "no known source format", 1, 30)]
    text = render_text(d)
    assert "files: 3 (1 loaded, 0 with every row quarantined, 1 refused whole, 0 failed)" in text
    assert "rows:  40 read = 7 billing + 0 invoices + 0 consent events loaded + 3 quarantined + 30 in files refused whole" in text
    assert "event dates: 4 rows dated more than 7 day(s) before the night, 1 after it (loaded as delivered)" in text
    assert "main reason: imsi_shape (2 of 3 quarantined); 4 rows dated more than 7 day(s)" in text
    refused = next(line for line in text.splitlines() if "notes.csv" in line)
    assert "refused whole" in refused and "nothing kept" in refused and "quarantined" not in refused
    assert "file refused whole" in text and "rows quarantined " not in text


def test_the_roaming_line_is_the_window_the_last_run_printed():
    d = figures("billing")
    d["roaming"][0] = dataclasses.replace(d["roaming"][0], words="window 2026-07…2026-10: 0 flagged, 0 not flagged,"
                                          " 0 insufficient history")
    assert ("  roaming window 2026-07…2026-10: 0 flagged, 0 not flagged, 0 insufficient history (assessed by the"
            " last run)") in render_text(d).splitlines()


def test_no_word_is_cut_in_half():
    d = figures("billing")
    clause = "§3.2 ¶3 (not on the billing-data list of the operator's privacy policy)"
    column = "very_long_column_name_that_a_hostile_export_might_use"
    d["off_list"] = [(column, "unknown", "dropped", clause, 1)]
    d["violations"] = [("failed_rule", "origin_number", "§3.2 ¶3 item 1 (origin, calling number or user name)",
                        "origin_number_shape_of_an_e164_number_or_a_user_name", 2, 5)]
    text = render_text(d)
    words = set(re.split(r"[\s_\-./]+", " ".join([clause, column, d["violations"][0][2], d["violations"][0][3]])))
    shortened = [t for t in text.split() if t.endswith("…")]
    assert shortened                                     # these texts are too long for their columns
    for token in shortened:
        *whole, last = re.split(r"[\s_\-./]+", token.removesuffix("…"))
        assert last in words, token                      # the last word before the ellipsis is whole
