"""transforms/entry/tasks.py: what the DAGs' tasks call, with plain params in and plain JSON out.

A failed task leaves a chained `task_failed` event in the audit log: its ids and exception type, never
the message (it may quote input), and once however often the callback is delivered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import audit_rows
from transforms.audit_store import verify_store
from transforms.bundled import DEFAULT_POLICY, SAMPLE_NIGHT
from transforms.entry.tasks import record_task_failure, resolve
from transforms.lake import Lake

FACTS = {"dag_id": "cdr_nightly_audit", "task_id": "audit_file", "run_id": "manual__2026-11-22T02:00:00+00:00",
         "try_number": 2, "map_index": 3, "exception_type": "ValueError"}


def failures(lake) -> list[tuple]:
    return audit_rows(lake, "SELECT actor, target, details FROM audit_log WHERE action = 'task_failed' ORDER BY seq")


def test_records_ids_and_exception_type_once(tmp_path):
    lake = tmp_path / "lake"
    assert record_task_failure({"lake": str(lake)}, FACTS) is True
    assert record_task_failure({"lake": str(lake)}, FACTS) is False          # the callback delivered again
    (actor, target, details), = failures(lake)
    assert (actor, target) == ("airflow", "cdr_nightly_audit.audit_file")
    assert json.loads(details) == {"run_id": FACTS["run_id"], "try_number": 2, "map_index": 3,
                                   "exception_type": "ValueError"}

    # The next try of the same mapped task is a new event, chained after the first.
    assert record_task_failure({"lake": str(lake)}, {**FACTS, "try_number": 3}) is True
    assert [json.loads(d)["try_number"] for _, _, d in failures(lake)] == [2, 3]
    assert verify_store(Lake.at(lake)).ok


@pytest.mark.parametrize("given", ["ValueError: bad number 38640123456", "x" * 500, None, "",
                                   "Error\nwith 38640123456"])
def test_only_a_class_name_is_ever_stored(tmp_path, given):
    lake = tmp_path / "lake"
    record_task_failure({"lake": str(lake)}, {**FACTS, "exception_type": given})
    (_, _, details), = failures(lake)
    assert json.loads(details)["exception_type"] == "unknown"
    assert "38640123456" not in details


def test_unmapped_task_and_missing_facts(tmp_path):
    lake = tmp_path / "lake"
    record_task_failure({"lake": str(lake)}, {"dag_id": "cdr_retention_sweep", "task_id": "sweep", "run_id": "r1",
                                              "try_number": 1, "map_index": None, "exception_type": "OSError"})
    (_, target, details), = failures(lake)
    assert target == "cdr_retention_sweep.sweep" and json.loads(details)["map_index"] == -1


def test_empty_params_fall_back_to_the_environment_then_the_bundled_files(tmp_path, monkeypatch):
    for name in ("CDR_AUDIT_LANDING", "CDR_AUDIT_LAKE", "CDR_AUDIT_POLICY"):
        monkeypatch.delenv(name, raising=False)
    night, landing, lake, policy = resolve({}, "2026-11-22T02:00:00+00:00")
    assert (night, landing, Path(policy.path)) == ("2026-11-22", SAMPLE_NIGHT, DEFAULT_POLICY)
    monkeypatch.setenv("CDR_AUDIT_LANDING", str(tmp_path / "landing" / "{night}"))
    monkeypatch.setenv("CDR_AUDIT_LAKE", str(tmp_path / "lake"))
    night, landing, lake, _ = resolve({"night": "2026-11-21"}, "2026-11-22")
    assert (landing, lake.root) == (tmp_path / "landing" / "2026-11-21", tmp_path / "lake")
    # A param beats the environment.
    _, landing, lake, _ = resolve({"landing": str(tmp_path / "x"), "lake": str(tmp_path / "y")}, "2026-11-22")
    assert (landing, lake.root) == (tmp_path / "x", tmp_path / "y")



def test_a_second_dag_run_of_the_night_is_refused_until_the_first_closes(tmp_path):
    """Each task of a run holds the night's lease; another run's plan fails with who holds it, and its
    retries succeed once the first run's close gave the lease up (docs/design.md §10)."""
    from transforms.entry import tasks
    from transforms.runs import NightBusy

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.csv").write_bytes(b"origin_number,destination_number,direction,start_time,duration_s,service_type\n"
                                    b"+38640111222,+38641333444,outgoing,2026-11-22T10:00:00Z,10,call\n")
    params = {"landing": str(landing), "lake": str(tmp_path / "lake")}
    planned, = tasks.plan(params, "2026-11-22", "scheduled__a")
    with pytest.raises(NightBusy, match="run scheduled__a"):
        tasks.plan(params, "2026-11-22", "manual__b")
    assert tasks.audit_one(planned, params, "2026-11-22", "scheduled__a")["rows_loaded"] == 1   # the holder goes on
    tasks.close(params, "2026-11-22", "scheduled__a")
    assert [f["action"] for f in tasks.plan(params, "2026-11-22", "manual__b")] == []     # a.csv is known now


def test_plan_refuses_a_lake_open_beyond_the_policy_and_works_owner_only(tmp_path):
    # docs/design.md §2: the plan task holds the lake to the policy's access before anything is written; the DAG
    # turns ZonesOpen into a failure without retries. Each task works under umask 077 and restores the caller's.
    import os

    from transforms.entry import tasks
    from transforms.lake.permissions import ZonesOpen

    lake = tmp_path / "lake"
    (lake / "billing").mkdir(parents=True)              # a lake an earlier version wrote (an empty folder is new)
    lake.chmod(0o755)                                   # listable by others: open
    params = {"lake": str(lake), "landing": str(SAMPLE_NIGHT)}
    before = os.umask(0o022)
    try:
        with pytest.raises(ZonesOpen) as refused:
            tasks.plan(params, "2026-11-22", "manual__x")
        assert os.umask(0o022) == 0o022                 # the task gave the umask back
    finally:
        os.umask(before)
    assert "the lake root is 0755" in str(refused.value)
    assert not (lake / "audit" / "audit.duckdb").exists()


def test_every_task_function_works_owner_only():
    from transforms.entry import tasks

    for name in ("plan", "audit_one", "aggregate", "roaming", "close", "retention", "verify_audit_log",
                 "record_task_failure"):
        assert getattr(tasks, name).__wrapped__.__name__ == name      # wrapped by _owner_only
