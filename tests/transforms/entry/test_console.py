"""transforms/entry/console.py: the lines a night prints — per file where each row went (read = valid + failing +
duplicate + unparseable, docs/design.md §9), refused files kept apart, quiet event dates folded into one line."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, timezone

from transforms.audit_store.tables import SourceFile
from transforms.entry.console import (
    aggregate_lines, day_ranges, file_line, roaming_line, summary_lines,
)
from transforms.nightly.close import NightSummary
from transforms.nightly.roaming_night import RoamingNight
from transforms.privacy.aggregates import AggregateResult
from transforms.privacy.suppression import TableRelease
from transforms.report.queries import aggregate_table_lines, percent
from transforms.roaming.window import RoamingWindowResult

AT = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)
ARITHMETIC = re.compile(r"— ([\d,]+) read = ([\d,]+) valid \+ ([\d,]+) failing a rule \+ ([\d,]+) duplicate"
                        r" \+ ([\d,]+) unparseable; ([\d,]+) loaded, ([\d,]+) quarantined")


def source_file(**kw) -> SourceFile:
    row = SourceFile(run_id="r1", night=date(2026, 11, 22), file_name="calls.csv", sha256="a" * 64, bytes=10,
                     lines=1201, profile="canonical_csv", status="loaded", reason=None, rows_read=1200,
                     rows_loaded=1150, rows_rejected=50, billing_partitions=2, processed_at=AT, rows_failing=30,
                     rows_duplicate=15, rows_unparseable=5, lateness_window_days=7, rows_before_lateness_window=0,
                     rows_after_night=0)
    return dataclasses.replace(row, **kw)


def numbers(match) -> list[int]:
    return [int(g.replace(",", "")) for g in match.groups()]


def test_a_loaded_files_line_adds_up():
    line = file_line(source_file())
    assert line.startswith("calls.csv: loaded — ")
    read, valid, failing, duplicate, unparseable, loaded, quarantined = numbers(ARITHMETIC.search(line))
    assert (read, valid, failing, duplicate, unparseable, loaded, quarantined) == (1200, 1150, 30, 15, 5, 1150, 50)
    assert read == valid + failing + duplicate + unparseable == loaded + quarantined
    assert "before the night" not in line            # nothing late: not mentioned


def test_a_file_that_loaded_no_row_says_quarantined():
    line = file_line(source_file(status="quarantined", rows_read=20, rows_loaded=0, rows_rejected=20, rows_failing=0,
                                 rows_duplicate=0, rows_unparseable=20))
    assert line.startswith("calls.csv: quarantined — 20 read = 0 valid + 0 failing a rule + 0 duplicate"
                           " + 20 unparseable; 0 loaded, 20 quarantined")


def test_late_and_future_rows_are_named_with_the_window():
    line = file_line(source_file(lateness_window_days=7, rows_before_lateness_window=12, rows_after_night=3))
    assert line.endswith("; 12 rows dated more than 7 day(s) before the night, 3 after it (loaded as delivered)")


def test_a_refused_file_keeps_nothing_and_claims_no_quarantine():
    line = file_line(source_file(status="rejected_file", reason="no known source format", profile=None, rows_read=40,
                                 rows_loaded=0, rows_rejected=40, rows_failing=None, rows_duplicate=None,
                                 rows_unparseable=None, lateness_window_days=None))
    assert line == "calls.csv: refused whole — 40 read, nothing kept: no known source format"
    assert "quarantined" not in line


def test_empty_and_failed_files():
    empty = source_file(status="empty", reason="file is empty (0 bytes)", rows_read=0, rows_loaded=0, rows_rejected=0,
                        rows_failing=None, rows_duplicate=None, rows_unparseable=None)
    assert file_line(empty) == "calls.csv: empty — 0 read: file is empty (0 bytes)"
    failed = dataclasses.replace(empty, status="failed", reason="internal error: OSError", rows_read=3,
                                 rows_rejected=3)
    assert file_line(failed) == "calls.csv: failed — 3 read, nothing kept: internal error: OSError"


def test_day_ranges_fold_consecutive_days():
    assert day_ranges(["2026-11-16", "2026-11-14", "2026-11-15", "2026-11-20"]) == "2026-11-14…2026-11-16, 2026-11-20"
    assert day_ranges(["2026-11-21"]) == "2026-11-21"
    assert day_ranges(["2026-02-28", "2026-03-01"]) == "2026-02-28…2026-03-01"     # across a month end


def release(day: str, released: int, primary: int, secondary: int = 0, k: int = 10) -> AggregateResult:
    """One date's release: a coarse table with everything released, a fine one with `released` cells."""
    coarse = TableRelease(day, "day_service", "§3.3", 2 if released else 1, 2 if released else 0,
                          0 if released else 1, 0, 0, 100, 100 if released else 0)
    fine = TableRelease(day, "hour_area_service", "§3.3", released + primary + secondary, released, primary,
                        secondary, 1 if released else 0, 100, 60 if released else 0)
    return AggregateResult(k=k, clause="§3.3", event_dates=(day,), rows_in=100, tables=(coarse, fine), seconds=0.5)


def test_event_dates_with_nothing_to_release_fold_into_one_line():
    releases = {"2026-11-22": release("2026-11-22", 10, 1400), "2026-11-21": release("2026-11-21", 0, 21),
                "2026-11-14": release("2026-11-14", 0, 3), "2026-11-15": release("2026-11-15", 0, 4, 1),
                "2026-11-01": release("2026-11-01", 0, 2)}
    lines = aggregate_lines(releases)
    assert lines == [
        "aggregates 2026-11-22: day_service 2 of 2 (100.0 % of events);"
        " hour_area_service 10 of 1,410 (60.0 % of events) (k=10) (0.5 s)",
        "aggregates: nothing to release on 4 event date(s) (2026-11-01, 2026-11-14…2026-11-15, 2026-11-21):"
        " 35 cells suppressed (k=10) (2.0 s)"]     # 21 + 3 + 5 + 2 fine cells, one coarse cell each


def test_every_date_that_released_cells_keeps_its_line():
    lines = aggregate_lines({"2026-11-22": release("2026-11-22", 10, 5), "2026-11-21": release("2026-11-21", 2, 9)})
    assert [line.split(":")[0] for line in lines] == ["aggregates 2026-11-21", "aggregates 2026-11-22"]
    assert all(line.endswith("(k=10) (0.5 s)") for line in lines)
    assert "hour_area_service 2 of 11 (60.0 % of events)" in lines[0]
    assert aggregate_lines({}) == []


def test_a_share_just_under_all_is_not_shown_as_all():
    assert percent(0.9996) == "99.9 %" and percent(1.0) == "100.0 %" and percent(0.6) == "60.0 %"


def test_summary_lines_per_release_table_in_the_policy_order():
    rows = [("hour_area_service", 10, 50, 30, 15, 5, 4, 1000, 650), ("day_service", 10, 5, 5, 0, 0, 0, 1000, 1000),
            (None, 10, 9, 1, 8, 0, None, None, None)]           # a row of a run before the release tables
    lines = aggregate_table_lines(rows, ["day_service", "hour_area_service"])
    assert lines[1:] == [
        "  day_service                    5 of         5 (0 / 0; 0 other), 100.0 % of events",
        "  hour_area_service             30 of        50 (15 / 5; 4 other), 65.0 % of events",
        "  single grain                   1 of         9 (8 / 0; 0 other)"]
    assert lines[0].startswith("aggregates (k=10): per release table")
    assert aggregate_table_lines([], []) == []


def test_the_roaming_line_names_the_window_as_the_report_does():
    window = RoamingWindowResult(clause="§3.2 ¶4", as_of_month="2026-10",
                                 window_months=("2026-07", "2026-08", "2026-09", "2026-10"), months_missing=(),
                                 key_ids=(), subscribers=0, flagged=0, not_flagged=0, insufficient_history=0,
                                 long_inactivity=0, path=None, seconds=0.1)
    line = roaming_line(RoamingNight(None, window))
    assert line == ("roaming: 0 month(s) rebuilt (0.0 s); window 2026-07…2026-10: 0 flagged, 0 not flagged,"
                    " 0 insufficient history (0.1 s)")


def test_the_nights_summary_adds_up_and_keeps_refused_rows_apart():
    s = NightSummary(run_id="r1", night="2026-11-22", status="completed", files_seen=4, files_processed=3,
                     files_skipped_known=0, files_rejected=1, files_failed=0, rows_read=2892, rows_loaded=2137,
                     rows_rejected=755, rows_quarantined=55, rows_refused=700, rows_failed=0, lateness_window_days=7,
                     rows_before_lateness_window=4, rows_after_night=1, audit_db="/lake/audit/audit.duckdb",
                     exports=(), chain_ok=True)
    lines = summary_lines(s)
    assert lines[1] == "  files: 4 seen, 3 audited, 0 already audited, 1 refused whole, 0 failed"
    assert lines[2] == "  rows:  2,892 read = 2,137 loaded + 55 quarantined + 700 in files refused whole (nothing kept)"
    assert lines[3] == ("  event dates: 4 rows dated more than 7 day(s) before the night, 1 after it"
                        " (loaded as delivered)")
