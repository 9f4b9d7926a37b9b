"""transforms/runs/recovery.py and claims.py: a dead run's staged work is removed and the run marked
abandoned; a file's bytes are audited by one live run at a time."""

from __future__ import annotations

import json
from dataclasses import replace

import duckdb

from tests.transforms.nightly.conftest import CSV, ROW
from tests.transforms.runs.test_lease import _dead_pid
from transforms.lake.permissions import owner_only
from transforms.lake.records import read_record, write_json
from transforms.nightly.close import close_night
from transforms.nightly.plan import plan_night
from transforms.runs import night_subject, recover
from transforms.runs.claims import claim, claims_dir, release_claims
from transforms.runs.lease import Holder, acquire

NIGHT = "2026-11-22"


def _kill(lake, night: str) -> None:
    """Make the night's lease holder a process that is gone, as kill -9 leaves it."""
    path = lake.zone("audit") / "_leases" / f"night_{night}.json"
    write_json(path, replace(read_record(path, Holder), pid=_dead_pid()))


def _staged_by(lake, run_id: str):
    """What a killed run leaves, made as the run makes it: owner-only (its entry point's umask 077)."""
    work, pending = lake.root / "_work" / run_id, lake.zone("audit") / "_pending" / run_id
    with owner_only():
        (work / "0123456789abcdef").mkdir(parents=True)
        (work / "0123456789abcdef" / "staged.parquet").write_bytes(b"PAR1 numbers and IMSIs")
        pending.mkdir(parents=True, exist_ok=True)
        stray = lake.zone("billing") / "event_date=2026-11-22" / ".staging-part-0123"
        stray.mkdir(parents=True)
        (stray / "part.parquet").write_bytes(b"PAR1 half committed")
    return work, pending, stray


def _runs(lake):
    con = duckdb.connect(str(lake.audit_db), read_only=True)
    try:
        runs = con.execute("SELECT run_id, status, status_reason FROM runs ORDER BY started_at").fetchall()
        log = con.execute("SELECT target, action, details FROM audit_log WHERE action = 'run_abandoned'").fetchall()
    finally:
        con.close()
    return runs, log


def test_a_dead_runs_staging_goes_and_the_run_is_abandoned_with_its_reason(landing, lake, policy):
    (landing / "a.csv").write_bytes(CSV + ROW)
    plan_night(landing, lake, policy, night=NIGHT, run_id="r1", trigger="test")
    work, pending, stray = _staged_by(lake, "r1")
    _kill(lake, NIGHT)
    plan_night(landing, lake, policy, night=NIGHT, run_id="r2", trigger="test")
    assert not work.exists() and not stray.exists()
    assert [p.name for p in (lake.zone("audit") / "_pending").iterdir()] == ["r2"]     # the new run's plan
    runs, log = _runs(lake)
    assert [(r, s) for r, s, _ in runs] == [("r1", "abandoned"), ("r2", "running")]
    assert "process" in runs[0][2] and "is gone" in runs[0][2]
    assert [(t, a) for t, a, _ in log] == [("r1", "run_abandoned")]
    assert json.loads(log[0][2])["staged_folders_removed"] == 2


def test_a_live_runs_work_is_left_alone(landing, lake, policy):
    (landing / "a.csv").write_bytes(CSV + ROW)
    plan_night(landing, lake, policy, night="2026-11-21", run_id="r-live", trigger="test")   # this process
    work = lake.root / "_work" / "r-live"
    work.mkdir(parents=True)
    result = recover(lake, actor="test")
    assert result.runs_abandoned == () and work.exists()
    assert (lake.zone("audit") / "_pending" / "r-live" / "plan.json").exists()


def test_a_run_that_ended_without_a_lease_is_abandoned_too(landing, lake, policy):
    plan_night(landing, lake, policy, night=NIGHT, run_id="r1", trigger="test")
    (lake.zone("audit") / "_leases" / f"night_{NIGHT}.json").unlink()     # released by a failing CLI run
    assert recover(lake, actor="test").runs_abandoned == ("r1",)
    runs, _ = _runs(lake)
    assert "holds no lease" in runs[0][2]
    assert recover(lake, actor="test").runs_abandoned == ()                # once


def test_another_nights_live_run_holds_its_files_claimed(landing, lake, policy):
    (landing / "a.csv").write_bytes(CSV + ROW)
    first = plan_night(landing, lake, policy, night="2026-11-21", run_id="r1", trigger="test")
    second = plan_night(landing, lake, policy, night=NIGHT, run_id="r2", trigger="test")
    assert [(f.action, f.reason) for f in second.files] == [("known", "being audited by run r1")]
    close_night(lake, policy, run_id="r1")                                 # r1's close frees the claim …
    assert not any(claims_dir(lake).iterdir())
    third = plan_night(landing, lake, policy, night="2026-11-23", run_id="r3", trigger="test")
    assert [f.action for f in third.files] == ["audit"]                   # … r1 recorded it as a task that died
    assert first.files[0].sha256 == third.files[0].sha256


def test_a_claim_holds_the_content_in_either_form(landing, tmp_path, lake, policy):
    import gzip

    (landing / "a.csv.gz").write_bytes(gzip.compress(CSV + ROW, mtime=1))
    plan_night(landing, lake, policy, night="2026-11-21", run_id="r1", trigger="test")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.csv").write_bytes(CSV + ROW)                              # the same rows, not compressed
    second = plan_night(plain, lake, policy, night=NIGHT, run_id="r2", trigger="test")
    assert [(f.action, f.reason) for f in second.files] == [("known", "being audited by run r1")]


def test_a_dead_runs_claim_is_taken_over(lake):
    acquire(lake, night_subject(NIGHT), "r1")
    assert claim(lake, "r1", ["aa", "bb"]) == {}
    assert claim(lake, "r2", ["aa"]) == {"aa": "r1"}
    _kill(lake, NIGHT)
    assert claim(lake, "r2", ["aa"]) == {}
    assert release_claims(lake, "r2") == 1 and release_claims(lake, "r1") == 1
