"""One writer of the audit store across hosts, without a lock that only one kernel sees (docs/design.md §6).

Two hosts sharing a lake over NFS do not see each other's flock. Here two processes are two hosts: each runs
in its own UTS namespace (`unshare --uts`, its own hostname) and has flock switched off (a no-op), so the
only thing between them is the writer lease in the lake. The second never opens the store while the first
holds it: it waits, or gives up naming the first. A lease of this host whose process is gone is taken over;
another host's lease never is, except by `cdr-audit writer-lease --break-lease`. The per-file step may not
open the store for writing at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from tests.transforms.audit_store.conftest import events
from tests.transforms.lake.conftest import needs_unshare, on_host, wait_for
from transforms.audit_store import StoreBusy, WriterRefused, append_log, no_writing, reading, writing
from transforms.audit_store.writer_lease import LEASE, WriterLease, current_lease
from transforms.entry.cli import main
from transforms.lake.processes import boot_id, host_name, started

REPO = Path(__file__).resolve().parents[3]

# A writer on host `argv[1]` with flock switched off (`on_host`). It notes when it is about to open the DuckDB
# file (`opened`), appends the event `argv[3]` inside `writing`, says it is in (`inside`), and stays in until
# `release` exists. `argv[2]` is the lake.
_WRITER = """
import sys, time
from pathlib import Path
import duckdb
from transforms.audit_store import LogEvent, append_log, writing
from transforms.audit_store import writer_lease
from transforms.lake import Lake
lake, name, work = Lake.at(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
{setup}
real_connect = duckdb.connect
def noting_connect(*a, **k):
    (work / f"{{name}}.opened").write_text("")
    return real_connect(*a, **k)
duckdb.connect = noting_connect
with writing(lake) as con:
    append_log(con, [LogEvent(name, "test", "file_loaded", name, {{}})])
    (work / f"{{name}}.inside").write_text("")
    while not (work / f"{{name}}.release").exists():
        time.sleep(0.02)
"""


def writer_on(host: str, lake: Path, name: str, work: Path, *, wait_s: float, setup: str = "") -> subprocess.Popen:
    return on_host(host, _WRITER.format(setup=textwrap.dedent(setup)), lake, name, work,
                   env={"CDR_AUDIT_STORE_WAIT_S": str(wait_s)})


def logged(lake) -> list[str]:
    with reading(lake) as con:
        return [k for (k,) in con.execute("SELECT event_key FROM audit_log ORDER BY seq").fetchall()]


@needs_unshare
def test_a_second_host_never_opens_the_store_while_the_first_writes(lake, tmp_path):
    a = writer_on("host-a", lake.root, "a", tmp_path, wait_s=30)
    wait_for(tmp_path / "a.inside", a)
    b = writer_on("host-b", lake.root, "b", tmp_path, wait_s=1.5)
    _, err = b.communicate(timeout=60)
    assert b.returncode != 0 and "StoreBusy" in err
    assert "being written by pid" in err and "on host host-a" in err and "--break-lease" in err
    assert not (tmp_path / "b.opened").exists()          # refused before it ever opened the DuckDB file
    (tmp_path / "a.release").write_text("")
    _, err = a.communicate(timeout=60)
    assert a.returncode == 0, err
    assert logged(lake) == ["a"]
    assert current_lease(lake) is None                   # the holder let go of its lease


@needs_unshare
def test_without_the_lease_flock_alone_would_let_the_second_host_in(lake, tmp_path):
    """The control: the same two hosts with the lease taken out of `writing` — the second host gets as far as
    opening the store while the first is inside (only DuckDB's own lock, if the file system carries it, then
    stands between them). So the test above passes because of the lease."""
    no_lease = ("from contextlib import nullcontext\n"
                "import transforms.audit_store.store as s\n"
                "s.held_lease = lambda *a, **k: nullcontext()\n")
    a = writer_on("host-a", lake.root, "a", tmp_path, wait_s=30, setup=no_lease)
    wait_for(tmp_path / "a.inside", a)
    b = writer_on("host-b", lake.root, "b", tmp_path, wait_s=1.5, setup=no_lease)
    b.communicate(timeout=60)
    assert (tmp_path / "b.opened").exists()
    (tmp_path / "a.release").write_text("")
    a.communicate(timeout=60)


@needs_unshare
def test_a_second_host_waits_for_the_lease_then_writes_after_the_first(lake, tmp_path):
    a = writer_on("host-a", lake.root, "a", tmp_path, wait_s=30)
    wait_for(tmp_path / "a.inside", a)
    (tmp_path / "b.release").write_text("")              # b leaves as soon as it is in
    b = writer_on("host-b", lake.root, "b", tmp_path, wait_s=60)
    time.sleep(2.0)
    assert b.poll() is None and not (tmp_path / "b.opened").exists()
    (tmp_path / "a.release").write_text("")
    assert a.wait(timeout=60) == 0
    _, err = b.communicate(timeout=60)
    assert b.returncode == 0, err
    assert "being written by pid" in err and "host-a" in err and "waiting up to 60 s" in err
    assert logged(lake) == ["a", "b"]


def _plant(lake, **changes) -> WriterLease:
    me = WriterLease(host=host_name(), boot_id=boot_id(), pid=os.getpid(), pid_started=started(os.getpid()),
                     since="2026-11-22T02:00:00+00:00", token="planted")
    lease = replace(me, **changes)
    (lake.zone("audit") / LEASE).write_text(json.dumps(asdict(lease)))
    return lease


def _gone_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("dead", [{"pid": "gone"}, {"boot_id": "an-earlier-boot"}], ids=["process gone", "rebooted"])
def test_a_dead_writer_of_this_host_is_taken_over(lake, capsys, dead):
    planted = _plant(lake, **{k: (_gone_pid() if v == "gone" else v) for k, v in dead.items()})
    with writing(lake) as con:
        append_log(con, events(1))
        assert current_lease(lake).token != planted.token and current_lease(lake).pid == os.getpid()
    assert "took over the audit store's writer lease" in capsys.readouterr().err
    assert current_lease(lake) is None


def test_a_killed_writers_half_published_generation_is_cleared_by_the_next_writer(lake):
    # A writer killed between writing its private generation name and renaming it leaves that name behind.
    stray = lake.zone("audit") / ".writer.generation.0123456789abcdef.tmp"
    stray.write_text("0123456789abcdef")
    with writing(lake) as con:
        append_log(con, events(1))
    assert not stray.exists()
    assert sorted(p.name for p in lake.zone("audit").glob(".writer.generation*")) == [".writer.generation"]


def test_another_hosts_lease_is_never_taken_only_broken_by_a_person(lake, monkeypatch, capsys):
    # Its holder looks dead from here (no such pid): another host's process table is not ours to read.
    planted = _plant(lake, host="elsewhere", pid=_gone_pid(), boot_id="their-boot")
    monkeypatch.setenv("CDR_AUDIT_STORE_WAIT_S", "0.3")
    with pytest.raises(StoreBusy, match="being written by pid .* on host elsewhere"):
        with writing(lake):
            pass
    assert current_lease(lake) == planted
    assert not lake.audit_db.exists()

    assert main(["writer-lease", "--lake", str(lake.root)]) == 0              # shows, breaks nothing
    assert "on host elsewhere" in capsys.readouterr().out and current_lease(lake) == planted
    assert main(["writer-lease", "--lake", str(lake.root), "--break-lease"]) == 0
    assert "broke the lease" in capsys.readouterr().out
    assert current_lease(lake) is None
    with reading(lake) as con:
        action, target, details = con.execute("SELECT action, target, details FROM audit_log").fetchone()
    assert (action, target) == ("writer_lease_broken", "audit_store")
    assert json.loads(details)["host"] == "elsewhere" and json.loads(details)["by_host"] == host_name()


def test_the_per_file_step_may_not_open_the_store_for_writing(lake):
    with no_writing("the audit_file task"):
        with pytest.raises(WriterRefused, match="the audit_file task may not write the audit store"):
            with writing(lake):
                pass
    assert not lake.audit_db.exists() and current_lease(lake) is None
    with writing(lake) as con:                          # outside it, writing works again
        append_log(con, events(1))


# An audit_file task of a DAG run, in a process of its own: its step (here made to reach for the store, which
# the real step never does) runs inside `tasks.audit_one`, as on a Celery worker.
_FILE_TASK = """
import sys
import transforms.nightly.audit_file as step
from transforms.audit_store import writing
from transforms.entry import tasks
from transforms.lake import Lake

def reaching_for_the_store(planned, lake, *a, **k):
    with writing(lake):
        raise SystemExit("wrote the audit store")
step.audit_file = reaching_for_the_store
planned = {"path": "x.csv", "file_name": "x.csv", "sha256": "0" * 64, "bytes": 1, "lines": 1, "action": "audit"}
tasks.audit_one(planned, {"lake": sys.argv[1]}, "2026-11-22", "manual__test")
"""


def test_an_audit_file_task_process_cannot_write_the_store(lake):
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_FILE_TASK), str(lake.root)], capture_output=True,
                          text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "CDR_AUDIT_DEMO_MODE": "1"},
                          timeout=120)
    assert done.returncode != 0
    assert "WriterRefused" in done.stderr and "the audit_file task may not write" in done.stderr
    assert "wrote the audit store" not in done.stderr
    assert not lake.audit_db.exists() and current_lease(lake) is None
