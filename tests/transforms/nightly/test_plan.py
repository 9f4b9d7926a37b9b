"""transforms/nightly/plan.py: what tonight does with each landing file, and the run it opens."""

from __future__ import annotations

import os

import duckdb

from tests.transforms.nightly.conftest import CSV, ROW
from transforms.lake import Lake
from transforms.nightly.plan import PlannedFile, load_plan, plan_night, override_for


def test_plan_skips_copies_and_hidden_files(landing, tmp_path, policy):
    (landing / "a.csv").write_bytes(CSV + ROW * 3)
    (landing / "b_copy.csv").write_bytes(CSV + ROW * 3)      # same bytes as a.csv
    (landing / ".c.csv.part").write_bytes(CSV)                # still being delivered
    os.mkfifo(landing / "d.pipe")                             # not a regular file: never opened
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    assert [(f.file_name, f.action, f.lines) for f in plan.files] == [
        (".c.csv.part", "ignored", 0), ("a.csv", "audit", 4), ("b_copy.csv", "duplicate_file", 4),
        ("d.pipe", "ignored", 0)]
    assert plan.files[2].duplicate_of == plan.files[1].sha256
    assert load_plan(lake, "r1") == plan                       # another process reads the same plan back
    con = duckdb.connect(str(lake.audit_db), read_only=True)
    assert con.execute("SELECT status, files_seen, policy_sha256 FROM runs").fetchall() == [
        ("running", 4, policy.sha256)]
    con.close()


def test_bytes_audited_before_are_known(landing, tmp_path, policy):
    from transforms.nightly.close import close_night

    (landing / "a.csv").write_bytes(CSV + ROW)
    lake = Lake.at(tmp_path / "lake")
    plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    close_night(lake, policy, run_id="r1")        # a.csv recorded (as a task that died): not an audit
    again = plan_night(landing, lake, policy, night="2026-11-22", run_id="r2", trigger="test")
    assert [f.action for f in again.files] == ["audit"]          # a failed file is audited again


def test_a_forced_profile_goes_by_the_first_matching_glob():
    f = PlannedFile(path="/landing/pbx_Master.csv", file_name="pbx_Master.csv", sha256="a", bytes=1, lines=1,
                    action="audit")
    assert override_for(f, {"*.parquet": "canonical_parquet", "pbx_*.csv": "asterisk_master_21",
                           "*.csv": "canonical_csv"}) == "asterisk_master_21"
    assert override_for(f, {"*.parquet": "canonical_parquet"}) is None
