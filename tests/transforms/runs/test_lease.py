"""transforms/runs/lease.py: one night, one runner; a dead holder's lease is taken over."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from transforms.lake.records import read_record, write_json
from transforms.lake.processes import started
from transforms.runs import NightBusy, held, night_subject
from transforms.runs import lease as lease_mod
from transforms.runs.lease import PROCESS, RUN, Holder, acquire, beat, dead_reason, live_holders, release

NIGHT = night_subject("2026-11-22")


def _lease_file(lake):
    return lake.zone("audit") / "_leases" / "night_2026-11-22.json"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _planted(lake, **changes) -> Holder:
    """A lease written as another holder would have left it."""
    now = datetime.now(timezone.utc).isoformat()
    holder = Holder(subject=NIGHT, run_id="other", bound=PROCESS, host=os.uname().nodename, pid=os.getpid(),
                    pid_started=started(os.getpid()), since=now, heartbeat=now)
    holder = replace(holder, **changes)
    write_json(_lease_file(lake), holder)
    return holder


def test_a_second_run_of_the_night_is_refused_with_who_and_since_when(lake):
    first = acquire(lake, NIGHT, "run-a")
    with pytest.raises(NightBusy) as busy:
        acquire(lake, NIGHT, "run-b")
    text = str(busy.value)
    assert "night 2026-11-22" in text and "run-a" in text and f"pid {os.getpid()}" in text
    assert first.since in text
    acquire(lake, night_subject("2026-11-23"), "run-b")          # another night is another lease


def test_the_same_run_takes_its_lease_again_and_keeps_its_start(lake):
    first = acquire(lake, NIGHT, "run-a")
    time.sleep(0.01)
    again = acquire(lake, NIGHT, "run-a")
    assert again.since == first.since and again.heartbeat > first.heartbeat


def test_a_holder_whose_process_is_gone_is_taken_over(lake):
    _planted(lake, pid=_dead_pid())
    assert "is gone" in dead_reason(read_record(_lease_file(lake), Holder))
    assert acquire(lake, NIGHT, "run-b").run_id == "run-b"


def test_a_reused_pid_is_not_taken_for_the_holder(lake):
    _planted(lake, pid_started="1")               # our pid, but a process that started at another time
    assert acquire(lake, NIGHT, "run-b").run_id == "run-b"


def test_a_live_process_with_the_same_run_id_is_still_another_runner(lake):
    _planted(lake, run_id="run-a", pid=os.getppid(), pid_started=started(os.getppid()))
    with pytest.raises(NightBusy):
        acquire(lake, NIGHT, "run-a")             # two CLI runs given the same --run-id


def test_an_orchestrators_run_spans_processes_and_lapses_by_heartbeat(lake):
    old = (datetime.now(timezone.utc) - lease_mod.STALE_AFTER - timedelta(minutes=1)).isoformat()
    _planted(lake, run_id="airflow-run", bound=RUN, pid=_dead_pid())
    assert acquire(lake, NIGHT, "airflow-run", bound=RUN).run_id == "airflow-run"   # its next task, new process
    with pytest.raises(NightBusy):
        acquire(lake, NIGHT, "run-b")              # a task process ended; the run itself lives
    _planted(lake, run_id="airflow-run", bound=RUN, heartbeat=old)
    assert "no heartbeat since" in dead_reason(read_record(_lease_file(lake), Holder))
    assert acquire(lake, NIGHT, "run-b").run_id == "run-b"


def test_only_the_holder_releases_and_beats(lake):
    acquire(lake, NIGHT, "run-a")
    release(lake, NIGHT, "run-b")
    assert _lease_file(lake).exists() and not beat(lake, NIGHT, "run-b")
    assert beat(lake, NIGHT, "run-a")
    release(lake, NIGHT, "run-a")
    assert not _lease_file(lake).exists() and live_holders(lake) == []


def test_held_waits_for_the_lease_then_beats_and_gives_it_up(lake, monkeypatch):
    monkeypatch.setattr(lease_mod, "BEAT_EVERY_S", 0.05)
    acquire(lake, NIGHT, "run-a")
    with pytest.raises(NightBusy):
        with held(lake, NIGHT, "run-b"):
            pass
    threading.Timer(0.5, release, (lake, NIGHT, "run-a")).start()
    heard = []
    with held(lake, NIGHT, "run-b", wait_s=30, say=heard.append) as holder:
        time.sleep(0.3)
        assert read_record(_lease_file(lake), Holder).heartbeat > holder.heartbeat   # refreshed meanwhile
    assert len(heard) == 1 and "run-a" in heard[0]
    assert not _lease_file(lake).exists()


def test_a_kept_lease_outlives_the_block(lake):
    with held(lake, NIGHT, "airflow-run", bound=RUN, keep=True):
        pass
    assert read_record(_lease_file(lake), Holder).run_id == "airflow-run"
