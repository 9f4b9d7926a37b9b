"""The report's summary as printed to stdout by `cdr-audit report`.

Texts too long for their column are shortened between words, with an ellipsis (`shorten`), never inside one.
"""

from __future__ import annotations

from transforms.privacy.redact import shorten
from transforms.report.queries import (KIND_WORDS, aggregate_table_lines, anchor_words, chain_ok, lateness_words, number, permissions_words,
                                      roaming_headline)


def render_text(d: dict) -> str:
    """The summary table printed to stdout."""
    run = d["run"]
    if run is None:
        return "the audit store holds no run yet; nothing to report"
    night, chain, verify = d["night"], d["chain"], d["verify"]
    lines = [f"compliance report for night {run['night']} — run {run['run_id']}: {run['status']}",
             f"  policy {run['policy_id']} v{run['policy_version']} (sha256 {run['policy_sha256']}…)"]
    if d["warning"]:
        lines.append(f"  WARNING: {d['warning']}")
    lines += [f"  WARNING: {m.words()}" for m in d["sources_missing"]]
    if night:
        lines.append(f"  files: {night['files']:,} ({night['files_loaded']:,} loaded,"
                     f" {night['files_quarantined']:,} with every row quarantined,"
                     f" {night['files_rejected']:,} refused whole, {night['files_failed']:,} failed)")
        failed = f" + {night['rows_failed']:,} in failed files" if night["rows_failed"] else ""
        lines.append(f"  rows:  {night['rows_read']:,} read = {night['rows_billing']:,} billing"
                     f" + {night['rows_invoices']:,} invoices + {night['rows_consents']:,} consent events loaded"
                     f" + {night['rows_quarantined']:,} quarantined"
                     f" + {night['rows_refused']:,} in files refused whole (nothing kept){failed};"
                     f" {night['rows_analytics']:,} analytics rows;"
                     f" {night['aggregate_groups_released']:,} aggregate cells released (every release table)")
        lines.append("  event dates: " + lateness_words(night["rows_before_lateness_window"],
                                                         night["rows_after_night"], d["lateness_window_days"],
                                                         always=True) + " (loaded as delivered)")
    lines.append("\n  files with rows not loaded or dated outside the lateness window, and why:")
    shown = [f for f in d["files"] if (f.why or f.lateness) and f.rows_read]
    for f in shown:
        lines.append(f"    {shorten(f.file_name, 36):<36} {f.outcome:<15} {f.rows_read:>8,} read"
                     f" {f.rows_loaded:>8,} loaded  {'; '.join(w for w in (shorten(f.why, 80), f.lateness) if w)}")
    if not shown:
        lines.append("    none")
    lines.append("\n  columns not on the allowed list, found last night (dropped before loading):")
    for column, classification, action, clause, files in d["off_list"][:8]:
        lines.append(f"    {shorten(column, 30):<30} {classification:<12} {action:<8} {shorten(clause, 40):<40}"
                     f" {files:>3} file(s)")
    if not d["off_list"]:
        lines.append("    none")
    lines.append("\n  top rules failed / quarantine reasons last night:")
    for kind, column, clause, rule, files, rows in d["violations"][:8]:
        lines.append(f"    {KIND_WORDS[kind]:<32} {shorten(column or '-', 22):<22} {shorten(rule, 34):<34}"
                     f" {shorten(clause, 24):<24} {files:>3} file(s) {number(rows):>8} rows")
    if not d["violations"]:
        lines.append("    none")
    if d.get("aggregates"):
        lines.append("")
        lines += [f"  {line}" for line in aggregate_table_lines(d["aggregates"], d["release_tables"])]
    if d["due"]:
        lines.append(f"\n  retention (latest sweep as of {d['due'][0].as_of}): rows due within"
                     f" {' / '.join(map(str, d['horizons']))} days of the sweep")
        for r in d["due"]:
            lines.append(f"    {r.dataset:<12} {' / '.join(f'{number(n):>10}' for n in r.after_sweep)}   (from today"
                         f" {' / '.join(number(n) for n in r.from_today)}; next due {r.next_due_on or '—'})")
    else:
        lines.append("\n  retention: no sweep recorded yet")
    lines.append(f"  active legal holds: {len(d['holds'])}")
    if d.get("subjects"):
        lines.append(f"  subject requests (§6): {d['subjects'].words()}")
        for request_id, right, _, _, _, days_left, state in d["subjects"].pressing:
            lines.append(f"    {request_id}  {right:<14} {state.replace('_', ' '):<9} {days_left:>4} day(s) left")
    window = roaming_headline(d["roaming"])
    if window:
        by = "the last run" if window.by_last_run else "an earlier run"
        lines.append(f"  roaming {window.words} (assessed by {by})")
    else:
        lines.append("  roaming: no window assessed yet")
    lines.append(f"  who may read each zone: {permissions_words(d.get('permissions') or [])}")
    ok = chain_ok(d)
    broken_at = "" if verify.ok and chain[3] else f" (first bad entry {verify.first_bad_seq or chain[4]})"
    lines.append(f"  audit-log chain: {'intact' if ok else 'BROKEN'}, {chain[0]:,} entries, head seq"
                 f" {number(chain[1])}{broken_at}; {anchor_words(d['anchors'])}")
    lines += [f"    {p}" for p in d["anchors"].problems]
    return "\n".join(lines)
