"""The report's summary as printed to stdout by `cdr-audit report`."""

from __future__ import annotations

from transforms.report.queries import KIND_WORDS, chain_ok, number, roaming_latest
from transforms.roaming.schema import STATES as ROAMING_STATES


def render_text(d: dict) -> str:
    """The summary table printed to stdout."""
    run = d["run"]
    if run is None:
        return "the audit store holds no run yet; nothing to report"
    night, chain, verify = d["night"], d["chain"], d["verify"]
    lines = [f"compliance report for night {run[0]} — run {run[1]}: {run[2]}",
             f"  policy {run[14]} v{run[15]} (sha256 {run[16]}…)"]
    if night:
        lines.append(f"  files: {night[0]:,} ({night[1]:,} loaded, {night[2]:,} rejected whole, {night[3]:,} failed)")
        lines.append(f"  rows:  {night[4]:,} read → {night[5]:,} billing + {night[6]:,} invoices loaded,"
                     f" {night[7]:,} quarantined; {night[8]:,} analytics rows;"
                     f" {night[9]:,} aggregate groups released")
    lines.append("\n  columns not on the allowed list, found last night (dropped before loading):")
    for column, classification, action, clause, files in d["off_list"][:8]:
        lines.append(f"    {column[:30]:<30} {classification:<12} {action:<8} {clause[:16]:<16} {files:>3} file(s)")
    if not d["off_list"]:
        lines.append("    none")
    lines.append("\n  top rules failed / quarantine reasons last night:")
    for kind, column, clause, rule, files, rows in d["violations"][:8]:
        lines.append(f"    {KIND_WORDS[kind]:<32} {column or '-':<22} {rule[:34]:<34} {clause[:10]:<10}"
                     f" {files:>3} file(s) {number(rows):>8} rows")
    if not d["violations"]:
        lines.append("    none")
    if d["due"]:
        lines.append(f"\n  retention (latest sweep as of {d['due'][0].as_of}): rows due within"
                     f" {' / '.join(map(str, d['horizons']))} days of the sweep")
        for r in d["due"]:
            lines.append(f"    {r.dataset:<12} {' / '.join(f'{number(n):>10}' for n in r.after_sweep)}   (from today"
                         f" {' / '.join(number(n) for n in r.from_today)}; next due {r.next_due_on or '—'})")
    else:
        lines.append("\n  retention: no sweep recorded yet")
    lines.append(f"  active legal holds: {len(d['holds'])}")
    month, states = roaming_latest(d["roaming"])
    if month:
        lines.append(f"  roaming window as of {month}: "
                     + ", ".join(f"{states.get(s, 0):,} {s.replace('_', ' ')}" for s in ROAMING_STATES))
    else:
        lines.append("  roaming: no window assessed yet")
    ok = chain_ok(d)
    lines.append(f"  audit-log chain: {'intact' if ok else 'BROKEN'}, {chain[0]:,} entries"
                 + ("" if ok else f" (first bad entry {verify.first_bad_seq or chain[4]})"))
    return "\n".join(lines)
