"""Helpers for the lake tests: a second OS process that takes a lock, or is killed half-way; a process that
runs as another host sharing the lake."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

# A child that says it started, takes the lock `{lock}` (a `with` target), notes the time it got it, then
# runs `{body}` inside.
_WAITER = """
import sys, time
from pathlib import Path
started, acquired = Path(sys.argv[1]), Path(sys.argv[2])
{setup}
started.write_text("")
with {lock}:
    acquired.write_text(repr(time.time()))
    {body}
"""


def python(code: str, *args: object) -> subprocess.Popen:
    """Start `code` in a fresh interpreter (the project is importable from anywhere in the venv)."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, child: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert child.poll() is None, child.communicate()[1]
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def assert_second_process_waits(hold: AbstractContextManager, lock: str, tmp_path: Path, setup: str = "",
                                body: str = "pass") -> None:
    """While this process is inside `hold`, a second process entering `with <lock>:` must wait, and get in
    (and run `body`) once `hold` is left, not fail."""
    started, acquired = tmp_path / "started", tmp_path / "acquired"
    with hold:
        child = python(_WAITER.format(setup=textwrap.dedent(setup), lock=lock, body=body), started, acquired)
        wait_for(started, child)
        time.sleep(0.5)
        assert child.poll() is None and not acquired.exists(), "the second process did not wait for the lock"
        released = time.time()
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert float(acquired.read_text()) >= released


# ------------------------------------------------------------------------ two hosts sharing one lake

REPO = Path(__file__).resolve().parents[3]


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--uts", "true"], capture_output=True).returncode == 0


needs_unshare = pytest.mark.skipif(not _can_unshare(), reason="needs `unshare --uts` (root, util-linux)")

# Prepended to what runs as another host: flock reaches no other host sharing the lake over NFS (a client's
# flock is local, or not offered): here it reaches nothing, so only what holds across hosts is left.
_AS_HOST = """
import fcntl, sys
fcntl.flock = lambda *a, **k: None
from transforms.lake.processes import host_name
assert host_name() == sys.argv[1], host_name()
"""


def on_host(host: str, code: str, *args: object, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Run `code` as host `host`: its own UTS namespace with that hostname, flock switched off. In `code`,
    sys.argv[1] is the host and sys.argv[2:] are `args`."""
    return subprocess.Popen(["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', host, sys.executable,
                             "-c", textwrap.dedent(_AS_HOST) + textwrap.dedent(code), host, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
