"""What a night prints as it goes (`cdr-audit run` on stderr, the DAG's tasks in their logs): counts that add up.

A file read row by row says where each of its rows went — read = valid + failing a rule + duplicate +
unparseable, each row once (docs/design.md §9) — and a file refused whole says that nothing of it is kept.
Event dates whose aggregates released nothing fold into one line. Counts, dates and names only.
"""

from __future__ import annotations

from datetime import date, timedelta

from transforms.audit_store.tables import SourceFile
from transforms.report.queries import REFUSED_WHOLE, lateness_words, outcome, percent, roaming_window_words


def file_line(s: SourceFile) -> str:
    """One file's outcome in a line: where each row went, or why nothing of it was kept."""
    head = f"{s.file_name}: {outcome(s.status)} — {s.rows_read:,} read"
    if s.rows_failing is not None:          # read row by row
        line = (f"{head} = {s.rows_loaded:,} valid + {s.rows_failing:,} failing a rule + {s.rows_duplicate:,}"
                f" duplicate + {s.rows_unparseable:,} unparseable; {s.rows_loaded:,} loaded,"
                f" {s.rows_rejected:,} quarantined")
        if s.lateness_window_days is not None:
            late = lateness_words(s.rows_before_lateness_window or 0, s.rows_after_night or 0,
                                  s.lateness_window_days)
            line += f"; {late} (loaded as delivered)" if late else ""
        return line
    if s.status in REFUSED_WHOLE or s.status == "failed":
        return f"{head}, nothing kept: {s.reason}"
    return f"{head}{': ' + s.reason if s.reason else ''}"


def day_ranges(days: list[str]) -> str:
    """ISO dates, runs of consecutive days as 'first…last': 2026-11-14, 2026-11-15, 2026-11-16, 2026-11-20
    → '2026-11-14…2026-11-16, 2026-11-20'."""
    ordered = sorted(date.fromisoformat(d) for d in set(days))
    runs: list[list[date]] = []
    for d in ordered:
        if runs and d - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(d)
        else:
            runs.append([d])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}…{r[-1]}" for r in runs)


def aggregate_lines(releases: dict) -> list[str]:
    """The night's aggregate releases (`{event date: AggregateResult}`): a line per date that released cells, each
    release table with its cells released and share of events released, coarse to fine; one line for every date
    that released none."""
    lines, quiet = [], {}
    for day, r in sorted(releases.items()):
        if r.cells_released:
            tables = "; ".join(f"{t.table} {t.cells_released:,} of {t.cells:,} ({percent(t.share_events_released)}"
                               " of events)" for t in r.tables)
            lines.append(f"aggregates {day}: {tables} (k={r.k}) ({r.seconds:.1f} s)")
        else:
            quiet[day] = r
    if quiet:
        suppressed = sum(r.cells_suppressed for r in quiet.values())
        ks = sorted({r.k for r in quiet.values()})
        lines.append(f"aggregates: nothing to release on {len(quiet)} event date(s) ({day_ranges(list(quiet))}):"
                     f" {suppressed:,} cells suppressed (k={', '.join(map(str, ks))})"
                     f" ({sum(r.seconds for r in quiet.values()):.1f} s)")
    return lines


def roaming_line(night) -> str:
    """The night's roaming step (`RoamingNight`): months rebuilt, and the window assessed in the words the
    report uses for it."""
    w = night.window
    months = night.months
    return (f"roaming: {len(months.months) if months else 0} month(s) rebuilt ({months.seconds if months else 0.0:.1f} s);"
            f" {roaming_window_words(w.as_of_month, len(w.window_months), w.by_state)} ({w.seconds:.1f} s)")


def marketing_line(built) -> str:
    """The night's marketing step (`MarketingProfilesResult`): days rebuilt, subscribers profiled, called
    parties named and counted, rows removed for withdrawn consents."""
    days = built.days
    return (f"marketing: {len(days)} day(s) rebuilt, {sum(d.subscribers for d in days):,} profile(s) of"
            f" {built.consents_standing:,} subscriber(s) whose consent stands; called parties"
            f" {sum(d.called_named for d in days):,} named, {sum(d.called_counted for d in days):,} counted;"
            f" {sum(d.rows_removed for d in days):,} row(s) removed (consent withdrawn) ({built.seconds:.1f} s)")


def summary_lines(s) -> list[str]:
    """The closed night (`NightSummary`): files, and rows read = loaded + quarantined + refused (+ failed)."""
    failed = f" + {s.rows_failed:,} in failed files (nothing kept)" if s.rows_failed else ""
    return [
        f"run {s.run_id} for night {s.night}: {s.status}",
        f"  files: {s.files_seen} seen, {s.files_processed} audited, {s.files_skipped_known} already audited, "
        f"{s.files_rejected} refused whole, {s.files_failed} failed",
        f"  rows:  {s.rows_read:,} read = {s.rows_loaded:,} loaded + {s.rows_quarantined:,} quarantined"
        f" + {s.rows_refused:,} in files refused whole (nothing kept){failed}",
        "  event dates: " + lateness_words(s.rows_before_lateness_window, s.rows_after_night,
                                           s.lateness_window_days, always=True) + " (loaded as delivered)",
    ]
