"""transforms/nightly/close.py: every landing file accounted for, the night's facts merged in one go."""

from __future__ import annotations

import duckdb
import pytest

from tests.transforms.nightly.conftest import CSV, ROW
from transforms.lake import Lake
from transforms.nightly.close import close_night
from transforms.nightly.plan import plan_night


def test_close_records_a_task_that_died_and_a_same_night_copy(landing, tmp_path, policy):
    (landing / "a.csv").write_bytes(CSV + ROW * 3)
    (landing / "b_copy.csv").write_bytes(CSV + ROW * 3)      # same bytes as a.csv
    (landing / ".c.csv.part").write_bytes(CSV)                # still being delivered
    lake = Lake.at(tmp_path / "lake")
    plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")

    # a.csv's task never ran (killed worker): the night still closes and says so.
    summary = close_night(lake, policy, run_id="r1")
    assert (summary.status, summary.files_failed) == ("completed_with_errors", 1)
    # Nothing of either file is kept: their rows are refused (the copy) or failed, never quarantined.
    assert (summary.rows_read, summary.rows_loaded, summary.rows_quarantined, summary.rows_refused,
            summary.rows_failed) == (8, 0, 0, 4, 4)
    con = duckdb.connect(str(lake.audit_db), read_only=True)
    rows = con.execute("SELECT file_name, status, rows_read, rows_loaded, rows_rejected, reason FROM source_files"
                       " ORDER BY file_name").fetchall()
    reasons = con.execute("SELECT file_name, reason, rows FROM rejection_reasons").fetchall()
    run = con.execute("SELECT status, rows_read, rows_loaded, rows_rejected FROM runs").fetchone()
    con.close()
    # 4 physical lines (header + 3 rows): counted as not loaded rather than silently as nothing.
    assert rows[1] == ("a.csv", "failed", 4, 0, 4, "file task did not finish")
    # The copy repeats its original's rows, all rejected as a duplicate delivery.
    assert rows[2][:5] == ("b_copy.csv", "duplicate_file", 4, 0, 4)
    assert rows[0][:2] == (".c.csv.part", "ignored")
    assert reasons == [("b_copy.csv", "duplicate_file", 4)]
    assert run == ("completed_with_errors", 8, 0, 8)
    assert not lake.fragments_dir("r1").exists()          # the facts are in the store now


def test_closing_again_replaces_the_runs_rows(landing, tmp_path, policy):
    (landing / "a.csv").write_bytes(CSV + ROW)
    lake = Lake.at(tmp_path / "lake")
    plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    close_night(lake, policy, run_id="r1")
    plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")   # the run cleared and re-run
    close_night(lake, policy, run_id="r1")
    con = duckdb.connect(str(lake.audit_db), read_only=True)
    assert con.execute("SELECT count(*) FROM source_files").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    con.close()


def test_the_summary_counts_rows_by_where_they_went_and_by_lateness(landing, tmp_path, policy, formats):
    from transforms.nightly.audit_file import audit_file
    from transforms.privacy.keys import demo_keyring

    late = b"+38640111222,+38641333444,outgoing,2026-11-01T10:00:00Z,10,call\n"      # 21 days before the night
    ahead = b"+38640111222,+38641333444,outgoing,2026-11-24T10:00:00Z,10,call\n"     # after the night
    (landing / "a.csv").write_bytes(CSV + ROW * 2 + late + ahead)        # one repeat of ROW
    (landing / "b.csv").write_bytes(CSV + ROW * 2 + late + ahead)        # same bytes: a copy, refused whole
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    audit_file(plan.to_audit[0], lake, policy, formats, run_id="r1", night="2026-11-22", keyring=demo_keyring())
    s = close_night(lake, policy, run_id="r1")
    # a.csv: 4 read = 3 loaded + 1 duplicate quarantined; b.csv repeats its 4 rows, refused whole.
    assert (s.rows_read, s.rows_loaded, s.rows_rejected) == (8, 3, 5)
    assert (s.rows_quarantined, s.rows_refused, s.rows_failed) == (1, 4, 0)
    assert (s.lateness_window_days, s.rows_before_lateness_window, s.rows_after_night) == (
        policy.lateness.window_days, 1, 1)


def test_a_run_whose_plan_failed_has_nothing_to_close_and_gives_the_night_up(tmp_path, policy):
    from transforms.nightly.close import NoPlan
    from transforms.runs.lease import RUN, acquire, live_holders, night_subject

    lake = Lake.at(tmp_path / "lake")
    # The plan task took the night's lease, then was refused (zones open) before it wrote its plan.
    acquire(lake, night_subject("2026-11-22"), "r1", bound=RUN)
    assert [h.run_id for h in live_holders(lake)] == ["r1"]
    with pytest.raises(NoPlan, match="r1 has no plan .*nothing to close"):
        close_night(lake, policy, run_id="r1", night="2026-11-22")
    assert live_holders(lake) == []                      # the next run of the night need not wait 45 minutes
    assert not lake.audit_db.exists()                    # and nothing was written


def test_the_close_builds_the_nights_data_docs_and_a_site_it_cannot_build_does_not_stop_it(landing, tmp_path,
                                                                                          policy, formats):
    import json

    from transforms.nightly.audit_file import audit_file
    from transforms.privacy.keys import demo_keyring

    (landing / "a.csv").write_bytes(CSV + ROW * 2)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    audit_file(plan.to_audit[0], lake, policy, formats, run_id="r1", night="2026-11-22", keyring=demo_keyring())
    assert not (lake.data_docs / "index.html").exists()     # a file's task keeps its result only
    (lake.data_docs / "validations").write_text("not a folder")      # the site cannot take a page
    broken = close_night(lake, policy, run_id="r1")
    assert broken.status == "completed" and broken.data_docs_error.startswith("Data Docs not built: ")

    def finished() -> dict:
        con = duckdb.connect(str(lake.audit_db), read_only=True)
        try:
            (details,), = con.execute("SELECT details FROM audit_log WHERE action = 'run_finished'"
                                      " ORDER BY seq DESC LIMIT 1").fetchall()
        finally:
            con.close()
        return json.loads(details)

    assert finished()["data_docs_error"] == broken.data_docs_error and "data_docs_pages" not in finished()
    (lake.data_docs / "validations").unlink()
    plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")   # the run cleared and re-run
    audit_file(plan.to_audit[0], lake, policy, formats, run_id="r1", night="2026-11-22", keyring=demo_keyring())
    fixed = close_night(lake, policy, run_id="r1")
    assert fixed.data_docs_error is None
    # The log keeps the first close's outcome and, after it, the re-run's: pages now, no error.
    assert "data_docs_error" not in finished() and finished()["data_docs_pages"] >= 1
    with duckdb.connect(str(lake.audit_db), read_only=True) as con:
        said = [json.loads(d) for (d,) in con.execute(
            "SELECT details FROM audit_log WHERE action = 'run_finished' ORDER BY seq").fetchall()]
    assert [("data_docs_error" in d) for d in said] == [True, False]
    assert len(list((lake.data_docs / "validations").rglob("*.html"))) == 2     # both validations of a.csv
