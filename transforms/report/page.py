"""The report as HTML: the gathered figures shaped for templates/report.html.j2 and templates/index.html.j2.

Jinja2 autoescapes every value the templates print, so a hostile file or column name shows as text.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from transforms.report.charts import bar_chart
from transforms.report.queries import (KIND_WORDS, NIGHT_COLUMNS, REQUEST_STATES, anchor_words, chain_ok, in_words,
                                      lateness_words, number, percent, permissions_words, roaming_headline)
from transforms.roaming.schema import STATES as ROAMING_STATES

ZONE_SERIES = (("billing rows loaded", "#2b6cb0"), ("invoice rows loaded", "#68a0d8"),
               ("rows quarantined", "#d9822b"), ("analytics rows", "#38a169"))
VIOLATION_SERIES = (("off-list columns found", "#805ad5"), ("rules failed", "#d9822b"),
                    ("other quarantine reasons and files refused whole", "#a0aec0"))
HORIZON_COLORS = ("#d9822b", "#2b6cb0", "#38a169", "#805ad5")   # one per reporting horizon, in turn

ENV = Environment(loader=PackageLoader("transforms.report", "templates"), autoescape=True,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENV.filters["n"] = number


def _series(rows: list, names: tuple) -> list[tuple[str, str, list]]:
    """Chart series from rows whose first column is the label: column i + 1 is series i."""
    return [(name, color, [r[i + 1] for r in rows]) for i, (name, color) in enumerate(names)]


def render_html(d: dict, store: str) -> str:
    """The whole report as one self-contained HTML page (inline CSS and SVG, no script)."""
    vols, by_night, due = d["volumes"], d["violations_by_night"], d["due"]
    night = d["night"] or dict.fromkeys(NIGHT_COLUMNS, 0)     # a night without files: every count 0
    window_days = d.get("lateness_window_days", 0)
    return ENV.get_template("report.html.j2").render(
        d=d, run=d["run"], store=store, night=night, chain_ok=chain_ok(d), anchors=anchor_words(d["anchors"]),
        files=[[f.file_name, f.outcome, f.profile, f.rows_read, f.rows_loaded, f.rows_quarantined,
                f.rows_before_lateness_window, f.rows_after_night, f.why] for f in d["files"]],
        window_days=window_days,
        lateness=lateness_words(night["rows_before_lateness_window"], night["rows_after_night"], window_days,
                                always=True),
        zone_chart=bar_chart([str(v[0]) for v in vols], _series(vols, ZONE_SERIES), stacked=True,
                             title="rows per zone per night"),
        violations=[[KIND_WORDS[k], c, r, cl, f, n] for k, c, cl, r, f, n in d["violations"]],
        aggregates=[[table, cells, released, primary, secondary, other or 0,
                     percent(events_released / events) if events else "—"]
                    for table, _, cells, released, primary, secondary, other, events, events_released
                    in d.get("aggregates") or []],
        violation_chart=bar_chart([str(v[0]) for v in by_night], _series(by_night, VIOLATION_SERIES),
                                  stacked=True, title="findings per night"),
        due_chart=bar_chart([r.dataset for r in due],
                            [(f"due within {h} days of the sweep", HORIZON_COLORS[i % len(HORIZON_COLORS)],
                              [r.after_sweep[i] for r in due]) for i, h in enumerate(d["horizons"])],
                            stacked=False, title="rows due per data set"),
        due_head=["data set", "rows kept", *(f"due ≤ {h} days after sweep" for h in d["horizons"]),
                  *(f"due ≤ {h} days from today" for h in d["horizons"]), "next due on"],
        due_rows=[[r.dataset, r.kept, *r.after_sweep, *r.from_today, r.next_due_on] for r in due],
        due_numeric=tuple(range(1, 1 + 1 + 2 * len(d["horizons"]))), horizons=in_words(d["horizons"]),
        roaming_window=roaming_headline(d["roaming"]),
        roaming=[[w.as_of_month, w.subscribers, *(w.by_state.get(st, 0) for st in ROAMING_STATES)]
                 for w in d["roaming"]],
        permissions_words=permissions_words(d.get("permissions") or []),
        permissions=[[z.zone, z.readers, z.dir_mode, z.file_mode or "—", z.entries, z.open]
                     for z in d.get("permissions") or []],
        permissions_open=any(z.open for z in d.get("permissions") or []),
        subjects=d.get("subjects"), subject_head=["right", *(s.replace("_", " ") for s in REQUEST_STATES)],
        subject_counts=[[right, *counts] for right, counts in d["subjects"].by_right] if d.get("subjects") else [])


def render_index(folder: Path) -> str:
    """The page listing the folder's reports, newest first, that forwards to the newest."""
    pages = sorted((p.name for p in folder.glob("compliance-*.html")), reverse=True)
    return ENV.get_template("index.html.j2").render(pages=pages, latest=pages[0] if pages else "")
