"""transforms/nightly.py: planning a night and closing it, without running the file steps."""

from __future__ import annotations

import duckdb

from transforms.lake import Lake
from transforms.nightly import close_night, plan_night

CSV = b"origin_number,destination_number,direction,start_time,duration_s,service_type\n"
ROW = b"+38640111222,+38641333444,outgoing,2026-11-22T10:00:00Z,10,call\n"


def test_plan_skips_copies_and_hidden_files_and_close_records_a_task_that_died(tmp_path, policy):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.csv").write_bytes(CSV + ROW * 3)
    (landing / "b_copy.csv").write_bytes(CSV + ROW * 3)      # same bytes as a.csv
    (landing / ".c.csv.part").write_bytes(CSV)                # still being delivered
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    assert [(f.file_name, f.action, f.lines) for f in plan.files] == [
        (".c.csv.part", "ignored", 0), ("a.csv", "audit", 4), ("b_copy.csv", "duplicate_file", 4)]

    # a.csv's task never ran (killed worker): the night still closes and says so.
    summary = close_night(lake, policy, run_id="r1")
    assert (summary.status, summary.files_failed) == ("completed_with_errors", 1)
    con = duckdb.connect(str(lake.audit_db), read_only=True)
    rows = con.execute("SELECT file_name, status, rows_read, rows_loaded, rows_rejected, reason FROM source_files"
                       " ORDER BY file_name").fetchall()
    con.close()
    # 4 physical lines (header + 3 rows): counted as not loaded rather than silently as nothing.
    assert rows[1] == ("a.csv", "failed", 4, 0, 4, "file task did not finish")
    # The copy repeats its original's rows, all rejected as a duplicate delivery.
    assert rows[2][:5] == ("b_copy.csv", "duplicate_file", 4, 0, 4)
    assert rows[0][:2] == (".c.csv.part", "ignored")


def test_a_file_failing_after_its_billing_commit_leaves_no_rows_behind(tmp_path, policy, monkeypatch):
    from transforms import nightly
    from transforms.pseudonymize import demo_keyring

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.csv").write_bytes(CSV + ROW * 3)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")        # analytics fails after billing committed the rows
    monkeypatch.setattr(nightly, "build_analytics", broken)
    result = nightly.audit_file(plan.to_audit[0], lake, policy, run_id="r1", night="2026-11-22",
                                keyring=demo_keyring())
    assert (result.status, result.rows_loaded) == ("failed", 0)
    # The audit says nothing was loaded, so no zone may hold the file's rows.
    assert list(lake.zone("billing").rglob("*.parquet")) == []
    assert list(lake.zone("quarantine").rglob("*.parquet")) == []
    assert (lake.zone("audit") / "errors" / "r1").is_dir()
