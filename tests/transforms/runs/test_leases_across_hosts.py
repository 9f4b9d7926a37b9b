"""The runs' leases and claims across hosts: their lock holds where a flock does not (docs/design.md §10).

Mapped audit_file tasks on Celery workers of several hosts take the night's lease, and runs of two nights
claim files, all in one lake. Here two processes are two hosts (`on_host`: own hostname, flock switched off
as on NFS) that change the same lease at the same moment, each taking a second between reading it and
writing its own: only the lease file `audit/_leases/.lock.lease` stands between them. A dead holder of that
lock on this host is taken over; another host's never is, except by `cdr-audit leases-lock --break-lock`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict

import pytest

from tests.transforms.lake.conftest import needs_unshare, on_host, wait_for
from transforms.audit_store import reading
from transforms.entry.cli import main
from transforms.lake.host_lease import LeaseHolder, read_holder, this_process
from transforms.lake.processes import host_name
from transforms.runs import NightBusy, night_subject
from transforms.runs.claims import claim
from transforms.runs.lease import RUN, Holder, LeasesLockBusy, acquire, lock_lease_path
from transforms.lake.records import read_record

NIGHT = night_subject("2026-11-22")

# Run `argv[3]` of night 2026-11-22 on host `argv[1]`, lake `argv[2]`, notes in `argv[4]`: it reads the lease,
# takes a second, then writes its own (`argv[5]` == "lease"); or, holding a night of its own, reads who claims
# file "aa", takes a second, then claims it ("claim").
# Both hosts start together when `go` appears. It prints what it got.
_RUN = """
import sys, time
from pathlib import Path
from transforms.lake import Lake
from transforms.runs import NightBusy
from transforms.runs import lease
from transforms.runs.claims import claim
lake, run_id, work, what = Lake.at(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), sys.argv[5]
{setup}
def slowly(read):
    def read_then_pause(*a, **k):
        found = read(*a, **k)
        time.sleep(1.0)
        return found
    return read_then_pause
(work / f"{{run_id}}.ready").write_text("")
while not (work / "go").exists():
    time.sleep(0.005)
if what == "lease":
    lease._read = slowly(lease._read)
    try:
        print("took", lease.acquire(lake, "night:2026-11-22", run_id, bound=lease.RUN).run_id)
    except NightBusy as busy:
        print("refused:", busy)
else:
    lease.acquire(lake, f"night:{{run_id}}", run_id, bound=lease.RUN)      # each run, a night of its own
    (work / f"{{run_id}}.holds").write_text("")
    while not all((work / f"{{r}}.holds").exists() for r in ("2026-11-22", "2026-11-23")):
        time.sleep(0.005)
    import transforms.runs.claims as claims
    claims._owner = slowly(claims._owner)
    elsewhere = claim(lake, run_id, ["aa"])
    print("refused: held by", elsewhere["aa"]) if elsewhere else print("took", run_id)
"""

# Without the lease file: the lock as it was, a flock only, which another host does not see.
FLOCK_ONLY = """
from transforms.lake.commit import exclusive
lease.leases_lock = lambda lake, **k: exclusive(lake.zone("audit") / "_leases" / ".lock")
import transforms.runs.claims as claims_module, transforms.runs.recovery as recovery_module
claims_module.leases_lock = recovery_module.leases_lock = lease.leases_lock
"""


def two_hosts_at_once(lake, tmp_path, what: str, runs: tuple[str, str], setup: str = "") -> list[str]:
    """Both runs, on host-a and host-b, change the lease (or claim) at the same moment; what each printed."""
    code = _RUN.format(setup=setup)
    hosts = [on_host(h, code, lake.root, run, tmp_path, what) for h, run in zip(("host-a", "host-b"), runs)]
    for run, child in zip(runs, hosts):
        wait_for(tmp_path / f"{run}.ready", child)
    (tmp_path / "go").write_text("")
    said = []
    for child in hosts:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        said.append(out.strip())
    return said


@needs_unshare
def test_two_hosts_never_both_take_one_nights_lease(lake, tmp_path):
    said = two_hosts_at_once(lake, tmp_path, "lease", ("run-a", "run-b"))
    took = [s for s in said if s.startswith("took")]
    refused = [s for s in said if s.startswith("refused")]
    assert len(took) == 1 and len(refused) == 1, said
    winner = took[0].split()[1]
    holder = read_record(lake.zone("audit") / "_leases" / "night_2026-11-22.json", Holder)
    assert holder.run_id == winner and holder.host == {"run-a": "host-a", "run-b": "host-b"}[winner]
    assert f"being worked on by run {winner}" in refused[0] and f"on host {holder.host}" in refused[0]
    assert read_holder(lock_lease_path(lake)) is None          # the lock is let go


@needs_unshare
def test_without_the_lease_file_two_hosts_both_take_it(lake, tmp_path):
    """The control: the same two hosts with the lock a flock only, as it was — both take the night (the one
    that wrote last holds the record). So the test above passes because of the lease file."""
    said = two_hosts_at_once(lake, tmp_path, "lease", ("run-a", "run-b"), setup=FLOCK_ONLY)
    assert sorted(said) == ["took run-a", "took run-b"]


@needs_unshare
def test_two_hosts_never_both_claim_one_file(lake, tmp_path):
    runs = ("2026-11-22", "2026-11-23")
    said = two_hosts_at_once(lake, tmp_path, "claim", runs)
    assert sorted(s.split()[0] for s in said) == ["refused:", "took"], said
    winner = next(s.split()[1] for s in said if s.startswith("took"))
    assert (lake.zone("audit") / "_claims" / "aa").read_text() == winner
    assert said[1 - runs.index(winner)] == f"refused: held by {winner}"


@needs_unshare
def test_without_the_lease_file_two_hosts_both_claim_it(lake, tmp_path):
    said = two_hosts_at_once(lake, tmp_path, "claim", ("2026-11-22", "2026-11-23"), setup=FLOCK_ONLY)
    assert sorted(said) == ["took 2026-11-22", "took 2026-11-23"]


# ------------------------------------------------------------------------------------- stale locks

def _plant(lake, **changes) -> LeaseHolder:
    holder = LeaseHolder(**{**asdict(this_process()), "since": "2026-11-22T02:00:00+00:00", **changes})
    path = lock_lease_path(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(holder)))
    return holder


def _gone_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_dead_holder_of_this_host_is_taken_over(lake, capsys):
    _plant(lake, pid=_gone_pid())
    assert acquire(lake, NIGHT, "run-a").run_id == "run-a"
    assert "took over the lock of the runs' leases: its process is gone" in capsys.readouterr().err
    assert read_holder(lock_lease_path(lake)) is None


def test_another_hosts_holder_is_waited_for_then_named_and_only_a_person_breaks_it(lake, monkeypatch, capsys):
    planted = _plant(lake, host="elsewhere", pid=_gone_pid(), boot_id="their-boot")     # looks dead from here
    monkeypatch.setenv("CDR_AUDIT_LEASES_WAIT_S", "0.3")
    with pytest.raises(LeasesLockBusy, match=r"held by pid \d+ on host elsewhere .*leases-lock --lake LAKE"):
        acquire(lake, NIGHT, "run-a")
    with pytest.raises(LeasesLockBusy):
        claim(lake, "run-a", ["aa"])
    assert read_holder(lock_lease_path(lake)) == planted
    assert not (lake.zone("audit") / "_leases" / "night_2026-11-22.json").exists()

    assert main(["leases-lock", "--lake", str(lake.root)]) == 0                # shows, breaks nothing
    assert "on host elsewhere" in capsys.readouterr().out and read_holder(lock_lease_path(lake)) == planted
    assert main(["leases-lock", "--lake", str(lake.root), "--break-lock"]) == 0
    assert "broke the lease of pid" in capsys.readouterr().out
    assert acquire(lake, NIGHT, "run-a").run_id == "run-a"
    with reading(lake) as con:
        action, target, details = con.execute("SELECT action, target, details FROM audit_log").fetchone()
    assert (action, target) == ("leases_lock_broken", "runs_leases")
    assert json.loads(details)["host"] == "elsewhere" and json.loads(details)["by_host"] == host_name()
    assert json.loads(details)["by_pid"] == os.getpid()


def test_a_night_held_by_a_live_run_is_still_refused_through_the_lock(lake):
    acquire(lake, NIGHT, "run-a", bound=RUN)
    with pytest.raises(NightBusy):
        acquire(lake, NIGHT, "run-b")
