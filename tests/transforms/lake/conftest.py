"""Helpers for the lake tests: a second OS process that takes a lock, or is killed half-way."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from contextlib import AbstractContextManager
from pathlib import Path

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
