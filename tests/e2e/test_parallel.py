"""Scale-out: per-file audits in parallel OS processes (as Airflow's mapped tasks run on workers) give the same
audit store and zones as one after the other, and writers that contend for audit.duckdb wait, never fail.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.conftest import NIGHT, audit_rows

RUN_ID = "manual__2026-11-22T02:00:00+00:00"   # the same in both lakes, so lineage columns compare equal
ZONES = ("billing", "quarantine", "analytics", "aggregates", "roaming")
SPAWN = multiprocessing.get_context("spawn")   # fresh interpreters, like separate workers


def _audit(planned: dict, params: dict) -> dict:
    from transforms.entry import tasks

    return tasks.audit_one(planned, params, NIGHT, RUN_ID)


def run_night(landing: Path, lake: Path, workers: int) -> dict:
    """plan → audit_file per file (in `workers` processes, or inline) → aggregate, roaming → close."""
    from transforms.entry import tasks

    params = {"landing": str(landing), "lake": str(lake)}
    planned = tasks.plan(params, NIGHT, RUN_ID)
    if workers > 1:
        with SPAWN.Pool(workers) as pool:
            results = pool.starmap(_audit, [(p, params) for p in planned])
    else:
        results = [_audit(p, params) for p in planned]
    tasks.aggregate(params, NIGHT, RUN_ID)
    tasks.roaming(params, NIGHT, RUN_ID)
    return {"planned": len(planned), "results": results, "summary": tasks.close(params, NIGHT, RUN_ID)}


def zone_contents(lake: Path) -> dict:
    """Per zone: the partition folders and a content digest of all rows (order-independent)."""
    out = {}
    con = duckdb.connect()
    for zone in ZONES:
        files = sorted(lake.glob(f"{zone}/**/*.parquet"))
        partitions = sorted({str(f.parent.relative_to(lake)) for f in files})
        if files:
            rows, digest = con.execute(
                "SELECT count(*), bit_xor(hash(t::VARCHAR)) FROM read_parquet(?, union_by_name = true) t",
                [[str(f) for f in files]]).fetchone()
        else:
            rows, digest = 0, None
        out[zone] = {"partitions": partitions, "rows": rows, "digest": digest}
    con.close()
    return out


SOURCE_FILES = ("SELECT file_name, sha256, status, profile, rows_read, rows_loaded, rows_rejected, billing_partitions"
                " FROM source_files ORDER BY sha256, file_name")


@pytest.fixture(scope="module")
def small_night(tmp_path_factory):
    from sample_data.generate import generate_night

    landing = tmp_path_factory.mktemp("parallel") / NIGHT
    generate_night(landing, rows=800, seed=5, night=date.fromisoformat(NIGHT))
    return landing


@pytest.mark.slow
def test_parallel_file_audits_equal_a_sequential_run(small_night, tmp_path):
    seq = run_night(small_night, tmp_path / "seq", workers=1)
    t = time.monotonic()
    par = run_night(small_night, tmp_path / "par", workers=3)
    print(f"parallel night ({par['planned']} files, 3 processes): {time.monotonic() - t:.1f} s")

    assert par["planned"] == seq["planned"] >= 4
    # Each file's source_files row, but for the moment it was recorded.
    rows = lambda night: sorted(json.dumps({k: v for k, v in r.items() if k != "processed_at"}, sort_keys=True)  # noqa: E731
                                for r in night["results"])
    assert rows(par) == rows(seq)
    for key in ("status", "files_seen", "files_processed", "files_failed", "rows_read", "rows_loaded",
                "rows_rejected", "chain_ok"):
        assert par["summary"][key] == seq["summary"][key], key
    assert par["summary"]["status"] == "completed" and par["summary"]["chain_ok"]
    assert audit_rows(tmp_path / "par", SOURCE_FILES) == audit_rows(tmp_path / "seq", SOURCE_FILES)
    for table in ("field_findings", "validation_results", "pseudonymization_log", "analytics_findings"):
        sql = f"SELECT count(*) FROM {table}"
        assert audit_rows(tmp_path / "par", sql) == audit_rows(tmp_path / "seq", sql), table
    assert zone_contents(tmp_path / "par") == zone_contents(tmp_path / "seq")
    # Every fragment was merged and the pending folder is gone or empty.
    pending = tmp_path / "par" / "audit" / "_pending" / RUN_ID
    assert not pending.exists() or not list(pending.glob("file-*.json"))


def _close(params: dict) -> dict:
    from transforms.entry import tasks

    return tasks.close(params, NIGHT, RUN_ID)


def _place_holds(lake: str, n: int) -> list[str]:
    import os

    from transforms.lake import Lake
    from transforms.policy import load_policy
    from transforms.privacy.keys import load_keyring
    from transforms.retention import holds

    policy, keyring = load_policy(), load_keyring(os.environ)
    return [holds.place(Lake.at(lake), policy, keyring, reason=f"dispute case A-{i}", placed_by="legal",
                        dataset="billing", date_from=date(2026, 11, 1)).hold_id
            for i in range(n)]


def _record_failures(lake: str, n: int) -> int:
    from transforms.entry.tasks import record_task_failure

    return sum(record_task_failure({"lake": lake}, {"dag_id": "cdr_nightly_audit", "task_id": "audit_file",
                                                    "run_id": RUN_ID, "try_number": 1, "map_index": i,
                                                    "exception_type": "OSError"}) for i in range(n))


@pytest.mark.slow
def test_contending_writers_wait_and_lose_nothing(small_night, tmp_path):
    """close_night, hold placements and failure callbacks at once on one audit.duckdb: all succeed, all rows stay."""
    from transforms import audit_store
    from transforms.entry import tasks
    from transforms.lake import Lake

    lake = tmp_path / "lake"
    params = {"landing": str(small_night), "lake": str(lake)}
    planned = tasks.plan(params, NIGHT, RUN_ID)
    for p in planned:
        tasks.audit_one(p, params, NIGHT, RUN_ID)

    with SPAWN.Pool(3) as pool:
        # Hold the writer lock while all three start, so each must wait for it (and then for each other).
        with audit_store.writer_lock(Lake.at(lake)):
            closing = pool.apply_async(_close, (params,))
            placing = pool.apply_async(_place_holds, (str(lake), 3))
            failing = pool.apply_async(_record_failures, (str(lake), 4))
            time.sleep(2)
            assert not (closing.ready() or placing.ready() or failing.ready())   # they wait, they do not fail
        summary = closing.get(timeout=300)
        hold_ids = placing.get(timeout=300)
        recorded = failing.get(timeout=300)

    assert summary["status"] == "completed" and summary["files_processed"] == len(planned)
    assert recorded == 4 and len(hold_ids) == 3
    assert audit_rows(lake, "SELECT count(*) FROM source_files WHERE run_id = ?", [RUN_ID])[0][0] >= len(planned)
    assert sorted(r[0] for r in audit_rows(lake, "SELECT hold_id FROM legal_holds")) == sorted(hold_ids)
    actions = dict(audit_rows(lake, "SELECT action, count(*) FROM audit_log GROUP BY action"))
    assert actions["hold_placed"] == 3 and actions["task_failed"] == 4 and actions["run_started"] == 1
    assert audit_store.verify_store(Lake.at(lake)).ok
