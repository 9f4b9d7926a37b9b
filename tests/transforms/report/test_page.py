"""transforms/report: the HTML page from a hand-made gather() dict and from a tiny store — hostile names escaped,
nothing that runs or fetches."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

from transforms.audit_store import AnchorCheck, ChainCheck, connect, insert
from transforms.audit_store.tables import Run, SourceFile
from transforms.audit_store.views import define_views
from transforms.report import gather, render_html, render_index, write_report
from transforms.report.text import render_text
from transforms.report.queries import NIGHT_COLUMNS, DueRows, FileOutcome, RoamingWindow

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
NIGHT = date(2026, 11, 22)
AT = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)


RUN = {"night": NIGHT, "run_id": "r1", "status": "completed", "trigger": "cli", "started_at": AT, "finished_at": AT,
       "files_seen": 1, "nothing_landed": False, "files_processed": 1, "files_skipped_known": 0, "files_rejected": 0, "files_failed": 0,
       "rows_read": 10, "rows_loaded": 7, "rows_quarantined": 3, "rows_refused": 0, "rows_failed": 0,
       "rows_before_lateness_window": 0, "rows_after_night": 0, "policy_id": "p", "policy_version": "1",
       "policy_sha256": "a" * 12}
# 10 rows read = 7 loaded to billing + 3 quarantined; one file, none refused.
NIGHT_FIGURES = dict(zip(NIGHT_COLUMNS, (1, 1, 0, 0, 0, 10, 7, 0, 3, 0, 0, 7, 7, 0, 0, 0, 0, 0)))


def figures(name: str) -> dict:
    """A gather()-shaped dict for one night, with `name` as a file, column, rule, reason and data set."""
    return {
        "run": dict(RUN),
        "generated_at": AT,
        "warning": None, "sources_missing": [],
        "night": dict(NIGHT_FIGURES),
        "lateness_window_days": 7,
        "files": [FileOutcome(f"{name}.csv", "loaded", "billing_csv", 10, 7, 3, f"reason {name}", 0, 0)],
        "off_list": [(f'col {name} & "q"', "not_allowed", "dropped", "§3.2", 1)],
        "violations": [("failed_rule", name, "§3.2 ¶3", f"rule {name}", 1, 2),
                       ("quarantine_reason", "", "", name, 1, None)],
        "volumes": [(NIGHT, 7, 0, 3, 7, 0)],
        "violations_by_night": [(NIGHT, 1, 1, 1)],
        "analytics": [(name, "", "pseudonymized", "§4", "k1")],
        "horizons": (30, 90),
        "due": [DueRows(as_of=date(2026, 11, 23), dataset=name, kept=7, after_sweep=(1, 2), from_today=(0, 0),
                        next_due_on=date(2026, 12, 1))],
        "sweep": [(date(2026, 11, 23), name, 5)],
        "holds": [("H-1", name, "dpo", NIGHT, "billing", None, None, "", 1)],
        "roaming": [RoamingWindow("2026-10", {"flagged": 1, "not_flagged": 2, "insufficient_history": 0}, 3,
                                  f"window 2026-07…2026-10 {name}", True)],
        "chain": (4, 4, "b" * 16, False, 3),
        "verify": ChainCheck(False, 4, 3, f"problem {name}"),
        "anchors": AnchorCheck(),
    }


def assert_self_contained(page: str) -> None:
    assert "<script" not in page and "src=" not in page and "<link" not in page and "@import" not in page
    without_svg_namespace = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"https?://", without_svg_namespace)


def test_hostile_names_are_escaped_everywhere_they_are_shown():
    page = " ".join(render_html(figures(HOSTILE), f"/lake/{HOSTILE}/audit.duckdb").split())   # whitespace as shown
    assert_self_contained(page)
    assert HOSTILE not in page
    assert f"<td>{ESCAPED}.csv</td>" in page and f"<td>reason {ESCAPED}</td>" in page
    assert "<td>col " + ESCAPED + " &amp; &#34;q&#34;</td>" in page
    assert f"<title>{ESCAPED}: due within 30 days of the sweep 1</title>" in page   # chart tooltips
    assert f">{ESCAPED}</text>" in page                                              # chart axis labels
    assert f"<p>That sweep: {ESCAPED} 5 rows.</p>" in page
    assert f"BROKEN</span> at entry 3: problem {ESCAPED}:" in page
    assert f"Audit store: /lake/{ESCAPED}/audit.duckdb." in page
    assert f"Fair-use window 2026-07…2026-10 {ESCAPED}, as assessed by the last run" in page
    assert page.count(ESCAPED) == 16


def test_index_escapes_page_names(tmp_path):
    (tmp_path / "compliance-<script>&'\".html").write_text("x")   # a file name cannot hold "/"
    (tmp_path / "compliance-2026-11-22.html").write_text("x")
    index = render_index(tmp_path)
    assert_self_contained(index)
    link = "compliance-&lt;script&gt;&amp;&#39;&#34;.html"
    assert f'url={link}"' in index and f'<a href="{link}">{link}</a>' in index
    assert '<li><a href="compliance-2026-11-22.html">' in index


def test_report_from_a_tiny_store(lake, policy):
    con = connect(lake)
    try:
        define_views(con, lake, policy)
        assert gather(con, policy)["run"] is None   # nothing to report yet
        insert(con, [Run(run_id="r1", night=NIGHT, trigger="cli", started_at=AT, finished_at=AT, status="completed",
                         policy_id="p", policy_version="1", policy_sha256="a" * 64, code_version="c", files_seen=1,
                         files_processed=1, files_skipped_known=0, files_rejected=0, files_failed=0, rows_read=10,
                         rows_loaded=7, rows_rejected=3)])
        insert(con, [SourceFile(run_id="r1", night=NIGHT, file_name=f"{HOSTILE}.csv", sha256="c" * 64, bytes=10,
                                lines=5, profile="billing_csv", status="loaded", reason=None, rows_read=10,
                                rows_loaded=7, rows_rejected=3, billing_partitions=1, processed_at=AT)])
    finally:
        con.close()
    report = write_report(lake, policy)
    assert report.night == NIGHT and report.chain_ok and "compliance report for night 2026-11-22" in report.text
    page = report.html_path.read_text()
    assert report.html_path.name == "compliance-2026-11-22.html"
    assert_self_contained(page)
    assert f"<tr><td>{ESCAPED}.csv</td><td>loaded</td>" in page and HOSTILE not in page
    assert 'href="compliance-2026-11-22.html"' in report.index_path.read_text()


def test_the_retention_figures_follow_the_policys_horizons():
    d = figures("billing")
    d["horizons"] = (7, 30, 365)
    d["due"] = [DueRows(as_of=date(2026, 11, 23), dataset="billing", kept=9, after_sweep=(1, 4, 9),
                        from_today=(0, 2, 8), next_due_on=date(2026, 11, 25))]
    page = " ".join(render_html(d, "/lake/audit.duckdb").split())
    assert "in the next 7, 30 and 365 days?" in page
    for h in (7, 30, 365):
        assert f"<th class=\"n\">due ≤ {h} days after sweep</th>" in page
        assert f"<th class=\"n\">due ≤ {h} days from today</th>" in page
    assert "<td>billing</td><td class=\"n\">9</td><td class=\"n\">1</td><td class=\"n\">4</td>" in page


def test_the_page_says_refused_whole_and_counts_lateness():
    d = figures("billing")
    d["night"].update(files=2, files_rejected=1, rows_read=40, rows_refused=30, rows_before_lateness_window=4,
                      rows_after_night=1)
    d["files"].append(FileOutcome("notes.csv", "rejected_file", "-", 30, 0, None,
                                  "nothing kept: no known source format", None, None))
    page = " ".join(render_html(d, "/lake/audit.duckdb").split())
    assert ('<tr><td>notes.csv</td><td>refused whole</td><td>-</td><td class="n">30</td><td class="n">0</td>'
            '<td class="n">—</td><td class="n">—</td><td class="n">—</td><td>nothing kept: no known source format</td>'
            '</tr>') in page
    assert '<div class="card"><b>30</b>rows in files refused whole (nothing kept)</div>' in page
    assert '<div class="card"><b>3</b>rows quarantined</div>' in page
    assert "Event dates: 4 rows dated more than 7 day(s) before the night, 1 after it." in page
    assert '<th class="n">late</th> <th class="n">future</th>' in page
    assert "<i>late</i> (dated more than 7 days before the night)" in page


def test_the_report_shows_the_latest_anchor_and_fails_without_the_anchored_tail(lake, policy, monkeypatch):
    import duckdb

    from transforms.audit_store import LogEvent, append_log, writing

    monkeypatch.delenv("CDR_AUDIT_ANCHOR_KEY", raising=False)
    with writing(lake) as con:
        insert(con, [Run(run_id="r1", night=NIGHT, trigger="cli", started_at=AT, finished_at=AT, status="completed",
                         policy_id="p", policy_version="1", policy_sha256="a" * 64, code_version="c", files_seen=0)])
        append_log(con, [LogEvent(f"e{i}", "pipeline", "run_finished", "r1", {"i": i}) for i in (1, 2)], at=AT)
    (anchor,) = [p.name for p in (lake.root / "audit" / "anchors").glob("anchor-*.json")]
    report = write_report(lake, policy)
    page = " ".join(report.html_path.read_text().split())
    assert report.chain_ok and f"latest anchor: seq 2, {anchor[7:11]}-" in page and f"({anchor});" in page
    assert "audit-log chain: intact, 2 entries, head seq 2; latest anchor: seq 2" in report.text
    with duckdb.connect(str(lake.audit_db)) as con:
        con.execute("DELETE FROM audit_log WHERE seq = 2")
    report = write_report(lake, policy)
    page = " ".join(report.html_path.read_text().split())
    assert not report.chain_ok
    assert "BROKEN</span>: it no longer holds what was anchored" in page
    assert f"anchor {anchor}: entry seq 2 is missing from the audit log" in page
    assert f"    anchor {anchor}: entry seq 2 is missing from the audit log" in report.text


def test_the_page_shows_each_release_table_of_the_night():
    d = figures("billing")
    d["release_tables"] = ["day_service", "hour_area_service"]
    d["aggregates"] = [("day_service", 10, 5, 5, 0, 0, 0, 1000, 1000),
                       ("hour_area_service", 10, 400, 250, 140, 10, 30, 1000, 655)]
    page = " ".join(render_html(d, "/lake/audit.duckdb").split())
    assert "What did last night's aggregates release?" in page
    assert ('<tr><td>hour_area_service</td><td class="n">400</td><td class="n">250</td><td class="n">140</td>'
            '<td class="n">10</td><td class="n">30</td><td>65.5 %</td></tr>') in page
    assert '<tr><td>day_service</td><td class="n">5</td><td class="n">5</td>' in page
    text = render_text(d)
    assert "    hour_area_service            250 of       400 (140 / 10; 30 other), 65.5 % of events" in text
