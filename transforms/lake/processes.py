"""Which machine and which process: what a lock record in the lake names so that another process can tell
whether its holder still lives (the runs' leases, docs/design.md §10; the audit store's writer lease, §6)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def host_name() -> str:
    return socket.gethostname()


def boot_id() -> str:
    """This boot of this machine's kernel (Linux), '' where there is no such file: a holder recorded under
    another boot id of the same host died with that boot."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


def started(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), '' where /proc is not there."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]      # field 22: starttime, after the command in parentheses


def alive(pid: int, started_at: str) -> bool:
    """Whether process `pid` of this machine still runs, and is the one that started at `started_at` (a pid
    the kernel gave to another process since is not taken for it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass                # someone else's process: it exists
    return not started_at or started(pid) in ("", started_at)
