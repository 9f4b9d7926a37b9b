"""transforms/report: the HTML page from a hand-made gather() dict and from a tiny store — hostile names escaped,
nothing that runs or fetches."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

from transforms import audit
from transforms.audit import ChainCheck
from transforms.report import gather, render_html, render_index, write_report

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
NIGHT = date(2026, 11, 22)
AT = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)


def figures(name: str) -> dict:
    """A gather()-shaped dict for one night, with `name` as a file, column, rule, reason and data set."""
    return {
        "run": (NIGHT, "r1", "completed", "cli", AT, AT, 1, 1, 0, 0, 0, 10, 7, 3, "p", "1", "a" * 12),
        "generated_at": AT,
        "night": (1, 1, 0, 0, 10, 7, 0, 3, 7, 0, 0),
        "files": [(f"{name}.csv", "loaded", "billing_csv", 10, 7, 3, f"reason {name}")],
        "off_list": [(f'col {name} & "q"', "not_allowed", "dropped", "§3.2", 1)],
        "violations": [("failed_rule", name, "§3.2 ¶3", f"rule {name}", 1, 2),
                       ("quarantine_reason", "", "", name, 1, None)],
        "volumes": [(NIGHT, 7, 0, 3, 7, 0)],
        "violations_by_night": [(NIGHT, 1, 1, 1)],
        "analytics": [(name, "", "pseudonymized", "§4", "k1")],
        "due": [(date(2026, 11, 23), name, 7, 1, 2, 0, 0, date(2026, 12, 1))],
        "sweep": [(date(2026, 11, 23), name, 5)],
        "holds": [("H-1", name, "dpo", NIGHT, "billing", None, None, "", 1)],
        "roaming": [(f"2026-10 {name}", "flagged", 1)],
        "chain": (4, 4, "b" * 16, False, 3),
        "verify": ChainCheck(False, 4, 3, f"problem {name}"),
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
    assert page.count(ESCAPED) == 17


def test_index_escapes_page_names(tmp_path):
    (tmp_path / "compliance-<script>&'\".html").write_text("x")   # a file name cannot hold "/"
    (tmp_path / "compliance-2026-11-22.html").write_text("x")
    index = render_index(tmp_path)
    assert_self_contained(index)
    link = "compliance-&lt;script&gt;&amp;&#39;&#34;.html"
    assert f'url={link}"' in index and f'<a href="{link}">{link}</a>' in index
    assert '<li><a href="compliance-2026-11-22.html">' in index


def test_report_from_a_tiny_store(lake):
    con = audit.connect(lake)
    try:
        audit.define_views(con, lake)
        assert gather(con)["run"] is None   # nothing to report yet
        con.execute("INSERT INTO runs VALUES ('r1', ?, 'cli', ?, ?, 'completed', 'p', '1', ?, 'c', 1, 1, 0, 0, 0,"
                    " 10, 7, 3)", [NIGHT, AT, AT, "a" * 64])
        con.execute("INSERT INTO source_files VALUES ('r1', ?, ?, ?, 10, 5, 'billing_csv', 'loaded', NULL, 10, 7, 3,"
                    " NULL, 1, ?)", [NIGHT, f"{HOSTILE}.csv", "c" * 64, AT])
    finally:
        con.close()
    report = write_report(lake)
    assert report.night == NIGHT and report.chain_ok and "compliance report for night 2026-11-22" in report.text
    page = report.html_path.read_text()
    assert report.html_path.name == "compliance-2026-11-22.html"
    assert_self_contained(page)
    assert f"<tr><td>{ESCAPED}.csv</td><td>loaded</td>" in page and HOSTILE not in page
    assert 'href="compliance-2026-11-22.html"' in report.index_path.read_text()
