"""`cdr-audit report`: the compliance report — last night at a glance, for a data-protection officer.

Reads only the audit store's compliance views (`transforms/audit.py` VIEWS, docs/audit_schema.md), opened
read-only; prints a short summary and writes one self-contained HTML file (inline CSS and SVG, no script,
nothing fetched) to `LAKE/reports/compliance-<night>.html`, with `LAKE/reports/index.html` pointing at the
newest. The report holds counts and the names of files, columns, rules and clauses — never a data value
and never a subscriber token (roaming is shown as counts per state).
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from transforms import audit_store as audit
from transforms.audit_store.views import define_views
from transforms.lake import Lake
from transforms.lake.commit import commit_file
from transforms.policy import Policy

# Constant SQL over the views; the only parameter is the night, bound.
SQL = {
    "run": "SELECT night, run_id, status, trigger, started_at, finished_at, files_seen, files_processed,"
           " files_skipped_known, files_rejected, files_failed, rows_read, rows_loaded, rows_quarantined,"
           " policy_id, policy_version, left(policy_sha256, 12) FROM v_last_run",
    "night": "SELECT files, files_loaded, files_rejected, files_failed, rows_read, rows_billing, rows_invoices,"
             " rows_quarantined, rows_analytics, aggregate_groups_released, aggregate_groups_suppressed"
             " FROM v_nightly_volumes WHERE night = ?",
    "volumes": "SELECT night, rows_billing, rows_invoices, rows_quarantined, rows_analytics,"
               " aggregate_groups_released FROM v_nightly_volumes ORDER BY night",
    "files": "SELECT file_name, status, coalesce(profile, '-'), rows_read, rows_loaded, rows_rejected,"
             " coalesce(reason, '') FROM v_night_files WHERE night = ? ORDER BY file_name",
    "off_list": "SELECT column_name, rule, outcome, clause, count(DISTINCT file_name) AS files"
                " FROM v_policy_violations WHERE night = ? AND kind = 'off_list_column'"
                " GROUP BY ALL ORDER BY files DESC, column_name LIMIT 12",
    "violations": "SELECT kind, coalesce(column_name, ''), coalesce(clause, ''), rule, count(DISTINCT file_name),"
                  " CAST(sum(rows_affected) AS BIGINT) AS n FROM v_policy_violations WHERE night = ?"
                  " AND kind <> 'off_list_column' GROUP BY ALL ORDER BY n DESC, 5 DESC, 1, 2, 4 LIMIT 12",
    "violations_by_night": "SELECT n.night,"
                           " count(v.kind) FILTER (WHERE v.kind = 'off_list_column'),"
                           " count(v.kind) FILTER (WHERE v.kind = 'failed_rule'),"
                           " count(v.kind) FILTER (WHERE v.kind = 'quarantine_reason')"
                           " FROM v_nightly_volumes n LEFT JOIN v_policy_violations v USING (night)"
                           " GROUP BY n.night ORDER BY n.night",
    "analytics": "SELECT column_name, coalesce(output_column, ''), action, clause,"
                 " coalesce(string_agg(DISTINCT key_id, ', '), '') FROM v_analytics_columns GROUP BY ALL"
                 " ORDER BY action, column_name",
    "due": "SELECT as_of, dataset, CAST(sum(rows_kept) AS BIGINT), CAST(sum(rows_due_30d_after_sweep) AS BIGINT),"
           " CAST(sum(rows_due_90d_after_sweep) AS BIGINT), CAST(sum(rows_due_30d_from_today) AS BIGINT),"
           " CAST(sum(rows_due_90d_from_today) AS BIGINT), min(next_due_on)"
           " FROM v_retention_due GROUP BY ALL ORDER BY dataset",
    "sweep": "SELECT as_of, action, CAST(sum(rows) AS BIGINT) FROM v_retention_actions"
             " WHERE as_of = (SELECT max(as_of) FROM v_retention_actions WHERE NOT dry_run) AND NOT dry_run"
             " GROUP BY ALL ORDER BY action",
    "holds": "SELECT hold_id, reason, placed_by, CAST(placed_at AS DATE), coalesce(dataset, 'every data set'),"
             " date_from, date_to, coalesce(subject_kind, ''), days_active FROM v_legal_holds_active",
    "roaming": "SELECT as_of_month, state, subscribers FROM v_roaming_states ORDER BY as_of_month, state",
    "chain": "SELECT entries, last_seq, left(last_hash, 16), links_ok, first_bad_seq FROM v_audit_chain",
}
ZONE_SERIES = (("billing rows loaded", "#2b6cb0"), ("invoice rows loaded", "#68a0d8"),
               ("rows quarantined", "#d9822b"), ("analytics rows", "#38a169"))
VIOLATION_SERIES = (("off-list columns found", "#805ad5"), ("rules failed", "#d9822b"),
                    ("other quarantine reasons", "#a0aec0"))
KIND_WORDS = {"off_list_column": "column not on the allowed list", "failed_rule": "rule failed",
              "quarantine_reason": "rows quarantined"}
ROAMING_STATES = ("flagged", "not_flagged", "insufficient_history")


@dataclass(frozen=True)
class Report:
    """What `write_report` produced."""

    night: date | None
    text: str                  # the summary printed to stdout
    html_path: Path | None     # None: the store holds no run yet
    index_path: Path | None
    chain_ok: bool


def gather(con) -> dict:
    """Every figure the report shows, from the compliance views."""
    run = con.execute(SQL["run"]).fetchone()
    d = {"run": run, "generated_at": audit.now_utc()}
    if run is None:
        return d
    night = run[0]
    for key in ("night", "files", "off_list", "violations"):
        d[key] = con.execute(SQL[key], [night]).fetchall()
    d["night"] = d["night"][0] if d["night"] else None
    for key in ("volumes", "violations_by_night", "analytics", "due", "sweep", "holds", "roaming"):
        d[key] = con.execute(SQL[key]).fetchall()
    d["chain"] = con.execute(SQL["chain"]).fetchone()
    d["verify"] = audit.verify_chain(con)
    return d


def _n(value) -> str:
    return "—" if value is None else f"{value:,}"


def _roaming_latest(rows: list) -> tuple[str | None, dict[str, int]]:
    if not rows:
        return None, {}
    month = max(r[0] for r in rows)
    return month, {state: n for m, state, n in rows if m == month}


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
                     f" {files:>3} file(s) {_n(rows):>8} rows")
    if not d["violations"]:
        lines.append("    none")
    if d["due"]:
        as_of = d["due"][0][0]
        lines.append(f"\n  retention (latest sweep as of {as_of}): rows due within 30 / 90 days of the sweep")
        for _, dataset, kept, d30, d90, t30, t90, nxt in d["due"]:
            lines.append(f"    {dataset:<12} {_n(d30):>10} / {_n(d90):>10}   (from today {_n(t30)} / {_n(t90)};"
                         f" next due {nxt or '—'})")
    else:
        lines.append("\n  retention: no sweep recorded yet")
    lines.append(f"  active legal holds: {len(d['holds'])}")
    month, states = _roaming_latest(d["roaming"])
    if month:
        lines.append(f"  roaming window as of {month}: "
                     + ", ".join(f"{states.get(s, 0):,} {s.replace('_', ' ')}" for s in ROAMING_STATES))
    else:
        lines.append("  roaming: no window assessed yet")
    ok = verify.ok and chain[3]
    lines.append(f"  audit-log chain: {'intact' if ok else 'BROKEN'}, {chain[0]:,} entries"
                 + ("" if ok else f" (first bad entry {verify.first_bad_seq or chain[4]})"))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ SVG charts

def _bar_chart(labels: list[str], series: list[tuple[str, str, list[int]]], *, stacked: bool,
               title: str) -> str:
    """A vertical bar chart as inline SVG: one group per label, stacked or side by side."""
    width, height, left, bottom, top = 760, 280, 70, 40, 36
    plot_w, plot_h = width - left - 16, height - bottom - top
    if stacked:
        peak = max([sum(s[2][i] or 0 for s in series) for i in range(len(labels))] or [0])
    else:
        peak = max([v or 0 for s in series for v in s[2]] or [0])
    peak = peak or 1
    group_w = plot_w / max(len(labels), 1)
    bar_w = group_w * 0.6 / (1 if stacked else max(len(series), 1))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}"><title>{html.escape(title)}</title>']
    for i in range(5):   # grid lines with their values
        v = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 16}" y2="{y:.1f}" stroke="#e2e8f0"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="ax">{v:,.0f}</text>')
    for i, label in enumerate(labels):
        x0 = left + group_w * i + group_w * 0.2
        base = top + plot_h
        for j, (name, color, values) in enumerate(series):
            v = values[i] or 0
            h = plot_h * v / peak
            x = x0 if stacked else x0 + bar_w * j
            y = base - h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}">'
                       f'<title>{html.escape(label)}: {html.escape(name)} {v:,}</title></rect>')
            if stacked:
                base = y
        out.append(f'<text x="{left + group_w * i + group_w / 2:.1f}" y="{height - bottom + 16}" '
                   f'text-anchor="middle" class="ax">{html.escape(label)}</text>')
    x = left
    for name, color, _ in series:   # legend
        out.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{color}"/>'
                   f'<text x="{x + 16}" y="18" class="ax">{html.escape(name)}</text>')
        x += 24 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)


# ------------------------------------------------------------------------------------------ HTML

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:62rem;color:#1a202c;
line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:2px solid #e2e8f0;
padding-bottom:.2rem}p.lead{color:#4a5568;margin-top:0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}th,td{padding:.25rem .6rem;
border-bottom:1px solid #e2e8f0;text-align:left}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#276749;font-weight:600}.bad{color:#c53030;font-weight:600}.ax{font-size:11px;fill:#4a5568}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{border:1px solid #e2e8f0;border-radius:6px;padding:.6rem 1rem;
min-width:10rem}.card b{display:block;font-size:1.4rem}.note{color:#4a5568;font-size:.88rem}
"""


def _table(head: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    if not rows:
        return '<p class="note">Nothing to show.</p>'
    th = "".join(f'<th class="n">{html.escape(h)}</th>' if i in numeric else f"<th>{html.escape(h)}</th>"
                 for i, h in enumerate(head))
    body = []
    for r in rows:
        cells = []
        for i, v in enumerate(r):
            if i in numeric:
                cells.append(f'<td class="n">{_n(v)}</td>')
            else:
                cells.append(f"<td>{html.escape('' if v is None else str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _card(label: str, value: str) -> str:
    return f'<div class="card"><b>{value}</b>{html.escape(label)}</div>'


def render_html(d: dict, store: str) -> str:
    """The whole report as one self-contained HTML page (inline CSS and SVG, no script)."""
    run, night, chain, verify = d["run"], d["night"] or (0,) * 11, d["chain"], d["verify"]
    ok = verify.ok and chain[3]
    s = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
         f"<title>CDR privacy audit — compliance report {run[0]}</title><style>{CSS}</style></head><body>",
         f"<h1>CDR privacy audit — compliance report for night {run[0]}</h1>",
         f'<p class="lead">Generated {d["generated_at"]:%Y-%m-%d %H:%M} UTC from the audit store. This report '
         "shows counts and the names of files, columns, rules and legal clauses only: no phone number, IMSI, "
         "account or subscriber token.</p>"]

    s.append("<h2>Did last night's run complete, and under which policy?</h2>")
    status_cls = "ok" if run[2] == "completed" else "bad"
    s.append(f'<p>Run <code>{html.escape(run[1])}</code> ({html.escape(run[3])}) finished with status '
             f'<span class="{status_cls}">{html.escape(run[2])}</span> under policy '
             f'{html.escape(run[14])} version {html.escape(run[15])} (sha256 {html.escape(run[16])}…).</p>')
    s.append('<div class="cards">' + "".join([
        _card("files received", _n(night[0])), _card("rows read", _n(night[4])),
        _card("rows loaded to billing", _n(night[5])), _card("rows loaded to invoices", _n(night[6])),
        _card("rows quarantined", _n(night[7])), _card("files rejected whole", _n(night[2])),
        _card("files failed", _n(night[3])), _card("rows made into analytics", _n(night[8])),
        _card("aggregate groups released", _n(night[9]))]) + "</div>")
    s.append("<h3>Each file of the night</h3>")
    s.append(_table(["file", "outcome", "format", "rows read", "loaded", "quarantined", "reason"],
                    [list(f) for f in d["files"]], {3, 4, 5}))

    s.append("<h2>How many rows went into each zone, night by night?</h2>")
    vols = d["volumes"]
    labels = [str(v[0]) for v in vols]
    s.append(_bar_chart(labels, [(name, color, [v[i + 1] for v in vols])
                                 for i, (name, color) in enumerate(ZONE_SERIES)], stacked=True,
                        title="rows per zone per night"))
    s.append(_table(["night", "billing rows", "invoice rows", "quarantined rows", "analytics rows",
                     "aggregate groups released"], [list(v) for v in vols], {1, 2, 3, 4, 5}))

    s.append("<h2>Which rules and columns were breached last night?</h2>")
    s.append('<p class="note">Columns not on the allowed list are dropped before loading; rows that fail a rule '
             "are quarantined with their reason.</p>")
    s.append("<h3>Columns that are not on the allowed list</h3>")
    s.append(_table(["column", "finding", "what was done", "clause", "files"], [list(r) for r in d["off_list"]],
                    {4}))
    s.append("<h3>Rules that rows failed, and other quarantine reasons</h3>")
    s.append(_table(["what", "column", "rule or reason", "clause", "files", "rows"],
                    [[KIND_WORDS[k], c, r, cl, f, n] for k, c, cl, r, f, n in d["violations"]], {4, 5}))
    s.append("<h3>Are violations going up or down?</h3>")
    vb = d["violations_by_night"]
    s.append(_bar_chart([str(v[0]) for v in vb], [(name, color, [v[i + 1] for v in vb])
                                                  for i, (name, color) in enumerate(VIOLATION_SERIES)],
                        stacked=True, title="findings per night"))

    s.append("<h2>What does analytics hold instead of each billing column?</h2>")
    s.append(_table(["billing column", "analytics column", "treatment", "clause", "key id(s)"],
                    [list(r) for r in d["analytics"]]))

    s.append("<h2>What falls due for deletion or anonymization in the next 30 and 90 days?</h2>")
    if d["due"]:
        as_of = d["due"][0][0]
        s.append(f"<p>From the latest retention sweep (as of {as_of}): rows kept then, by the date they fall "
                 "due. Rows already due on or before today wait for the next sweep.</p>")
        s.append(_bar_chart([r[1] for r in d["due"]],
                            [("due within 30 days of the sweep", "#d9822b", [r[3] for r in d["due"]]),
                             ("due within 90 days of the sweep", "#2b6cb0", [r[4] for r in d["due"]])],
                            stacked=False, title="rows due per data set"))
        s.append(_table(["data set", "rows kept", "due ≤ 30 days after sweep", "due ≤ 90 days after sweep",
                         "due ≤ 30 days from today", "due ≤ 90 days from today", "next due on"],
                        [list(r[1:]) for r in d["due"]], {1, 2, 3, 4, 5}))
        if d["sweep"]:
            s.append("<p>That sweep: " + "; ".join(f"{html.escape(a)} {_n(n)} rows" for _, a, n in d["sweep"])
                     + ".</p>")
    else:
        s.append('<p class="note">No retention sweep has been recorded yet.</p>')

    s.append("<h2>Which legal holds are stopping deletions?</h2>")
    s.append(_table(["hold", "reason", "placed by", "placed on", "data set", "from", "to", "subject", "days active"],
                    [list(h) for h in d["holds"]], {8}) if d["holds"]
             else '<p class="note">No legal hold is active.</p>')

    s.append("<h2>How many subscribers does the roaming check flag?</h2>")
    month, states = _roaming_latest(d["roaming"])
    if month:
        s.append(f"<p>Window as of {html.escape(month)} (EU fair-use: more days abroad than at home and most "
                 "consumption abroad). Counts only; the flagged subscribers' tokens stay in the roaming zone.</p>")
        by_month: dict[str, dict[str, int]] = {}
        for m, state, n in d["roaming"]:
            by_month.setdefault(m, {})[state] = n
        s.append(_table(["as of month", "flagged", "not flagged", "insufficient history"],
                        [[m, *(v.get(st, 0) for st in ROAMING_STATES)] for m, v in sorted(by_month.items())],
                        {1, 2, 3}))
    else:
        s.append('<p class="note">No roaming window has been assessed yet.</p>')

    s.append("<h2>Is the audit trail intact?</h2>")
    verdict = ('<span class="ok">intact</span>' if ok else
               f'<span class="bad">BROKEN</span> at entry {_n(verify.first_bad_seq or chain[4])}: '
               f"{html.escape(verify.problem or 'a previous-hash link does not match')}")
    s.append(f"<p>The hash-chained audit log is {verdict}: {_n(chain[0])} entries, last entry {_n(chain[1])} "
             f"(hash {html.escape(chain[2] or '—')}…). Every entry's hash was recomputed for this report.</p>")
    s.append(f'<p class="note">Audit store: {html.escape(store)}. Tables and views: docs/audit_schema.md; '
             "Parquet snapshots: audit/parquet/&lt;name&gt;/run_date=YYYY-MM-DD/.</p></body></html>")
    return "\n".join(s)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    commit_file(tmp, path)   # commit point: the page appears whole


def _index(folder: Path) -> str:
    pages = sorted((p.name for p in folder.glob("compliance-*.html")), reverse=True)
    latest = pages[0] if pages else ""
    items = "".join(f'<li><a href="{html.escape(p)}">{html.escape(p)}</a></li>' for p in pages)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="0; url={html.escape(latest)}">'
            f"<title>Compliance reports</title><style>{CSS}</style></head><body><h1>Compliance reports</h1>"
            f'<p>Latest: <a href="{html.escape(latest)}">{html.escape(latest)}</a></p><ul>{items}</ul></body></html>')


def write_report(lake: Lake, policy: Policy, out: Path | None = None) -> Report:
    """Read the audit store (read-only), write the HTML report and return the printed summary."""
    con = audit.connect(lake, read_only=True)
    try:
        define_views(con, lake, policy, temp=True)   # this connection only: the current views, whatever wrote the store
        d = gather(con)
    finally:
        con.close()
    text = render_text(d)
    if d["run"] is None:
        return Report(None, text, None, None, True)
    night = d["run"][0]
    folder = lake.zone("reports")
    path = out or folder / f"compliance-{night}.html"
    _write(path, render_html(d, str(lake.audit_db)))
    index = None
    if out is None:
        index = folder / "index.html"
        _write(index, _index(folder))
    return Report(night, text, path, index, bool(d["verify"].ok and d["chain"][3]))

