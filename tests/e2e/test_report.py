"""Compliance views on real lakes, and `cdr-audit report` on the five-month lake (HTML with no personal data)."""

from __future__ import annotations

import re
import shutil
from datetime import date

import pytest

from tests.conftest import HISTORY_NIGHTS, audit_rows, run_cli
from tests.leakscan import night_identifiers, scan

pytestmark = pytest.mark.slow

HEADINGS = ("Did last night's run complete", "How many rows went into each zone, night by night?",
            "Which rules and columns were breached last night?", "Are violations going up or down?",
            "What does analytics hold instead of each billing column?",
            "What falls due for deletion or anonymization in the next 30 and 90 days?",
            "Which legal holds are stopping deletions?", "Subject requests: which are due, which are overdue?",
            "How many subscribers does the roaming check flag?",
            "Is the audit trail intact?")


def assert_views_agree_with_tables(lake):
    # Each night's files counted once (a re-run records skipped files as 'known', with no rows).
    # Rows not loaded are quarantined, refused with their file (nothing kept) or in a failed file; never two.
    assert audit_rows(lake, "SELECT sum(files), sum(rows_read), sum(rows_loaded),"
                            " sum(rows_quarantined + rows_refused + rows_failed) FROM v_nightly_volumes") == audit_rows(
        lake, "SELECT count(DISTINCT (night, sha256, file_name)) FILTER (WHERE status <> 'known'), sum(rows_read),"
              " sum(rows_loaded), sum(rows_rejected) FROM source_files")
    assert audit_rows(lake, "SELECT sum(rows_quarantined), sum(rows_refused) FROM v_nightly_volumes") == audit_rows(
        lake, "SELECT sum(rows_rejected) FILTER (WHERE status IN ('loaded', 'quarantined')),"
              " sum(rows_rejected) FILTER (WHERE status IN ('rejected_file', 'duplicate_file')) FROM source_files")
    assert audit_rows(lake, "SELECT sum(rows_billing + rows_invoices) = sum(rows_loaded) FROM v_nightly_volumes") == [
        (True,)]
    assert audit_rows(lake, "SELECT run_id, rows_read, rows_quarantined + rows_refused + rows_failed, policy_sha256"
                            " FROM v_last_run") == audit_rows(
        lake, "SELECT run_id, rows_read, rows_rejected, policy_sha256 FROM runs ORDER BY started_at DESC LIMIT 1")
    # A file read row by row accounts for each row once: read = loaded + failing + duplicate + unparseable.
    assert audit_rows(lake, "SELECT count(*) FROM source_files WHERE rows_failing IS NOT NULL AND rows_read <>"
                            " rows_loaded + rows_failing + rows_duplicate + rows_unparseable") == [(0,)]
    assert audit_rows(lake, "SELECT count(*) FROM source_files WHERE status = 'loaded' AND rows_loaded = 0"
                            " AND rows_read > 0") == [(0,)]
    (entries, last_seq, links_ok), = audit_rows(lake, "SELECT entries, last_seq, links_ok FROM v_audit_chain")
    assert links_ok and entries == last_seq == audit_rows(lake, "SELECT count(*) FROM audit_log")[0][0]
    assert audit_rows(lake, "SELECT count(*) FROM v_policy_violations WHERE kind = 'off_list_column'") == audit_rows(
        lake, "SELECT count(*) FROM field_findings JOIN v_night_files USING (run_id, sha256, file_name)"
              " WHERE classification IN ('not_allowed', 'unknown')")
    failed = audit_rows(lake, "SELECT coalesce(sum(rows_affected), 0) FROM v_policy_violations"
                              " WHERE kind = 'failed_rule'")
    assert failed == audit_rows(lake, "SELECT coalesce(sum(unexpected_count), 0) FROM validation_results"
                                      " JOIN v_night_files USING (run_id, sha256, file_name) WHERE NOT success")
    actions = dict(audit_rows(lake, "SELECT action, count(*) FILTER (WHERE key_id IS NOT NULL)"
                                    " FROM v_analytics_columns GROUP BY 1"))
    assert actions["pseudonymized"] > 0 and actions["kept"] == actions["generalized"] == 0


def test_views_on_one_night(cli_run):
    assert_views_agree_with_tables(cli_run.lake)
    dropped = {r[0] for r in audit_rows(cli_run.lake, "SELECT column_name FROM v_policy_violations"
                                                      " WHERE kind = 'off_list_column'")}
    assert {"caller_name", "email", "ip_address"} <= dropped
    assert audit_rows(cli_run.lake, "SELECT count(*) FROM v_retention_due") == [(0,)]   # never swept


def test_views_on_five_months(history):
    assert_views_agree_with_tables(history.lake)
    nights = [r[0] for r in audit_rows(history.lake, "SELECT night FROM v_nightly_volumes ORDER BY night")]
    assert nights == [date.fromisoformat(n) for n in HISTORY_NIGHTS]
    # Roaming: counts per state are the roaming zone's, and the flagged list matches them.
    assert audit_rows(history.lake, "SELECT as_of_month, state, subscribers FROM v_roaming_states ORDER BY 1, 2") == \
        audit_rows(history.lake, "SELECT as_of_month, state, count(*) FROM roaming_status GROUP BY 1, 2 ORDER BY 1, 2")
    flagged = audit_rows(history.lake, "SELECT subscriber_token_hex FROM v_roaming_flagged WHERE as_of_month = '2026-10'")
    assert flagged and all(re.fullmatch(r"[0-9a-f]{32}", t) for t, in flagged)
    assert audit_rows(history.lake, "SELECT subscribers FROM v_roaming_states WHERE as_of_month = '2026-10'"
                                    " AND state = 'flagged'") == [(len(flagged),)]
    # Every window a run assessed, with the counts the roaming zone's status files hold where there is one.
    windows = audit_rows(history.lake, "SELECT as_of_month, flagged, not_flagged, insufficient_history, subscribers,"
                                       " status_file_written FROM v_roaming_windows ORDER BY 1")
    states = {}
    for month, state, n in audit_rows(history.lake, "SELECT as_of_month, state, subscribers FROM v_roaming_states"):
        states.setdefault(month, {})[state] = n
    assert {w[0] for w in windows if w[5]} == set(states)
    for month, flagged_n, not_flagged_n, insufficient_n, subscribers, written in windows:
        if written:
            by_state = states[month]
            assert (flagged_n, not_flagged_n, insufficient_n) == tuple(
                by_state.get(s, 0) for s in ("flagged", "not_flagged", "insufficient_history"))
        assert subscribers == flagged_n + not_flagged_n + insufficient_n
    real = audit_rows(history.lake, "SELECT column_name, data_type FROM information_schema.columns"
                                    " WHERE table_name = 'roaming_status' ORDER BY ordinal_position")
    from transforms.roaming.schema import STATUS_COLUMNS
    assert real == list(STATUS_COLUMNS)   # the stand-in before any window has the same columns


@pytest.fixture(scope="module")
def reported(history, tmp_path_factory):
    """A copy of the five-month lake with a hold and a retention sweep, then the report."""
    lake = tmp_path_factory.mktemp("report") / "lake"
    shutil.copytree(history.lake, lake)
    hold = run_cli("hold", "place", "--lake", str(lake), "--reason", "dispute 2026/114", "--by", "dpo",
                   "--dataset", "billing", "--from", "2026-08-01", "--to", "2026-08-31")
    assert hold.returncode == 0, hold.stderr
    sweep = run_cli("retention", "--lake", str(lake), "--as-of", "2026-11-23", "--quiet")
    assert sweep.returncode == 0, sweep.stderr
    number = history.manifests["2026-11-22"].msisdns[0]          # E.164; given spaced, as a person types it
    request = run_cli("subject", "request", "--lake", str(lake), "--right", "access", "--msisdn",
                      f"{number[:4]} {number[4:6]} {number[6:]}", "--received", "2026-11-20")
    assert request.returncode == 0 and re.fullmatch(r"R-[0-9a-f]{12}", request.stdout.splitlines()[-1]), request.stderr
    report = run_cli("report", "--lake", str(lake))
    assert report.returncode == 0, report.stderr
    return lake, report


def test_report_writes_a_self_contained_page(reported):
    lake, report = reported
    page = lake / "reports" / "compliance-2026-11-22.html"
    assert page.is_file() and str(page) in report.stdout
    html = page.read_text()
    for heading in HEADINGS:
        assert heading in html, heading
    assert html.count("<svg") >= 3
    assert "<script" not in html and "src=" not in html and "<link" not in html
    assert not re.search(r'href="https?:', html)
    index = (lake / "reports" / "index.html").read_text()
    assert 'href="compliance-2026-11-22.html"' in index


def test_report_summary_and_figures(reported, history):
    lake, report = reported
    out = report.stdout
    assert "compliance report for night 2026-11-22" in out and "audit-log chain: intact" in out
    assert "active legal holds: 1" in out and "retention (latest sweep as of 2026-11-23)" in out
    assert "subject requests (§6): 1 not answered yet" in out
    (read,), = audit_rows(lake, "SELECT rows_read FROM v_nightly_volumes WHERE night = '2026-11-22'")[0:1]
    assert f"{read:,} read" in out
    (due90,), = audit_rows(lake, "SELECT sum(rows_due_90d_after_sweep) FROM v_retention_due")
    assert due90 == audit_rows(lake, "SELECT coalesce(sum(rows), 0) FROM retention_actions WHERE action = 'kept'"
                                     " AND as_of = '2026-11-23' AND due_on <= DATE '2026-11-23' + 90")[0][0]
    assert audit_rows(lake, "SELECT count(*) FROM v_legal_holds_active") == [(1,)]


def test_report_wording_agrees_with_what_the_run_printed(reported, history):
    lake, report = reported
    out = report.stdout
    # The roaming line is the window the night's run assessed, in the words the run printed.
    printed = re.search(r"roaming: .*?; (window \S+: [^(]+) \(", history.runs["2026-11-22"].stderr)[1].strip()
    assert f"  roaming {printed} (assessed by the last run)" in out.splitlines()
    page = " ".join((lake / "reports" / "compliance-2026-11-22.html").read_text().split())
    assert f"Fair-use {printed}, as assessed by the last run" in page
    # A refused file (each night's byte-identical copy) is "refused whole", its rows never called quarantined.
    (refused,), = audit_rows(lake, "SELECT rows_refused FROM v_nightly_volumes WHERE night = '2026-11-22'")
    assert refused > 0 and f"+ {refused:,} in files refused whole (nothing kept)" in out
    copy = next(line for line in out.splitlines() if "billing_2026-11-22_copy.csv" in line)
    assert " refused whole " in copy and "nothing kept: byte-identical to billing_2026-11-22.csv" in copy
    assert "quarantined" not in copy
    assert "<td>billing_2026-11-22_copy.csv</td><td>refused whole</td>" in page
    assert f'<div class="card"><b>{refused:,}</b>rows in files refused whole (nothing kept)</div>' in page
    # Files that loaded most of their rows still name the main reason for the rest.
    billing = next(line for line in out.splitlines() if line.split()[:1] == ["billing_2026-11-22.csv"])
    assert "loaded" in billing and "main reason: " in billing and " quarantined)" in billing
    assert "event dates: 0 rows dated more than 7 day(s) before the night, 0 after it" in out
    # The generator's hostile header has a column name thousands of characters long (very_long_column_column_…):
    # as the views, and so the report, give it, it is cut between its words, never inside one.
    (long_name,), = set(audit_rows(lake, "SELECT column_name FROM v_policy_violations"
                                         " WHERE column_name LIKE 'very_long_column_%'"))
    assert long_name.endswith("…") and len(long_name) <= 64
    assert set(long_name.removesuffix("…").split("_")) == {"very", "long", "column"}


def test_report_holds_no_personal_data(reported, history):
    lake, report = reported
    needles = [n for m in history.manifests.values() for n in night_identifiers(m)]
    assert scan([lake / "reports"], needles, report.stdout + report.stderr) == {}
    for page in (lake / "reports").glob("*.html"):
        text = page.read_text()
        assert not re.search(r"(?i)(?<![0-9a-f])(?:[0-9a-f]{32}){1,2}(?![0-9a-f])", text), page  # no token, no hash


def test_report_to_another_file_and_exit_codes(reported, tmp_path):
    lake, _ = reported
    out = tmp_path / "r.html"
    again = run_cli("report", "--lake", str(lake), "--out", str(out))
    assert again.returncode == 0 and out.is_file() and "<svg" in out.read_text()
    missing = run_cli("report", "--lake", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "no audit store" in missing.stderr


def test_exports_are_snapshots_by_run_date(reported):
    lake, _ = reported
    folder = lake / "audit" / "parquet"
    days = {p.name for p in folder.glob("*/run_date=*")}
    assert days and all(re.fullmatch(r"run_date=\d{4}-\d{2}-\d{2}", d) for d in days)
    assert not list(folder.glob("*.parquet")) and not (folder / "v_roaming_flagged").exists()
    assert (folder / "v_nightly_volumes").is_dir() and (folder / "retention_actions").is_dir()
