"""transforms/lake/host_lease.py: the private names a taker killed before its link() left are cleared.

A taker writes its record to a private name and then links it to the lease's name; killed in between, it
leaves the private name behind. The next taker of this host removes those of dead processes of this host,
never a live process's (it is about to link it) nor another host's (its processes are not ours to judge).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import asdict, replace

from tests.transforms.lake.conftest import REPO
from transforms.audit_store import writing
from transforms.audit_store.writer_lease import current_lease, lease_path
from transforms.lake.host_lease import _temp_name, clear_dead_temps, create, read_holder, this_process


def _gone_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _temps(path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(f"{path.name}.*.tmp"))


# A writer killed between creating its private name and linking it to the lease (os._exit: no `finally` runs).
_KILLED_BEFORE_LINK = """
import os, sys
from transforms.audit_store import writing
from transforms.lake import Lake
os.link = lambda *a, **k: os._exit(9)
with writing(Lake.at(sys.argv[1])):
    pass
"""


def test_a_writer_killed_before_its_link_leaves_a_private_name_the_next_writer_removes(lake):
    path = lease_path(lake)
    killed = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_KILLED_BEFORE_LINK), str(lake.root)],
                              stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    _, err = killed.communicate(timeout=120)
    assert killed.returncode == 9, err
    (left,) = _temps(path)
    assert f".pid{killed.pid}." in left and current_lease(lake) is None     # never linked: nobody holds the lease
    with writing(lake):
        assert _temps(path) == []
    assert current_lease(lake) is None


def test_only_dead_processes_of_this_host_lose_their_private_names(lake):
    path = lease_path(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = this_process()
    dead = replace(me, pid=_gone_pid(), token="dead")
    planted = {
        "dead, whole": dead,
        "dead, torn": replace(dead, token="torn"),
        "reused pid": replace(me, pid_started="1", token="reused"),         # our pid, another start time
        "earlier boot": replace(me, boot_id="an-earlier-boot", token="rebooted"),
        "alive": replace(me, token="alive"),
        "another host's": replace(dead, host="elsewhere", token="theirs"),
    }
    for what, holder in planted.items():
        _temp_name(path, holder).write_text("" if what == "dead, torn" else json.dumps(asdict(holder)))
    assert clear_dead_temps(path) == 4
    left = _temps(path)
    assert len(left) == 2 and any(".alive." in n for n in left) and any(n.startswith(f"{path.name}.elsewhere.")
                                                                       for n in left)


def test_a_lease_is_created_once_whole_and_the_private_name_goes(lake):
    path = lease_path(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    first, second = this_process(), this_process()
    assert create(path, first) and not create(path, second)
    assert read_holder(path) == first and _temps(path) == []
