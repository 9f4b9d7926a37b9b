"""One night, one runner: a run holds a lease on (lake, night) while it works (docs/design.md §10).

The lease is a small JSON record in `audit/_leases/`, read and changed only under one lock, so two runs
started in the same second still see each other, on one host or on two (Celery workers sharing the lake):
the lock is this host's flock of `audit/_leases/.lock` and the lease file `audit/_leases/.lock.lease`, which
holds across hosts where a flock does not (`transforms/lake/host_lease.py`, docs/design.md §10). It is held
for milliseconds; a dead holder of this host is taken over, another host's only broken by a person
(`cdr-audit leases-lock --break-lock`). It names its holder (run id, host, process) and a
heartbeat the holder refreshes while it works. A second run of the night finds it held and is refused
(`NightBusy`, which says by whom and since when), or waits for it. A lease whose holder is dead — its
process is gone (a CLI run), or its heartbeat is older than the limit (an orchestrator's run, whose tasks
are separate processes) — is taken over, and the recovery step clears what the dead run left.

The retention sweep holds the lease `retention` the same way, so the work folders of a live sweep are
never taken for a dead run's.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from transforms.lake import Lake, safe_run_id
from transforms.lake import host_lease
from transforms.lake.commit import exclusive
from transforms.lake.host_lease import LeaseHolder
from transforms.lake.processes import alive, started
from transforms.lake.records import read_record, write_json

# A holder bound to its process (the CLI) is dead as soon as the process is; one bound to its run (Airflow,
# whose tasks come and go) is dead when no task refreshed the heartbeat for STALE_AFTER. The limit must
# outlast the pause between two tasks, retries included (the DAGs' max_retry_delay is 30 minutes).
PROCESS, RUN = "process", "run"
LOCK_WAIT_ENV = "CDR_AUDIT_LEASES_WAIT_S"
STALE_AFTER = timedelta(seconds=int(os.environ.get("CDR_AUDIT_LEASE_STALE_S", str(45 * 60))))
BEAT_EVERY_S = 30.0


class NightBusy(RuntimeError):
    """The lease is held by another live run. The message names the holder; never any data."""

    def __init__(self, subject: str, holder: "Holder"):
        self.subject, self.holder = subject, holder
        super().__init__(f"{_what(subject)} is being worked on by run {holder.run_id} (pid {holder.pid} on host"
                         f" {holder.host}) since {holder.since}; last heartbeat {holder.heartbeat}")


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, and how to tell whether it still lives."""

    subject: str            # night:YYYY-MM-DD | retention
    run_id: str
    bound: str              # process | run
    host: str
    pid: int
    pid_started: str        # the process's start time (Linux: /proc ticks), so a reused pid is not taken for it
    since: str              # UTC, ISO 8601
    heartbeat: str          # UTC, ISO 8601
    took_over_from: str = ""        # the dead holder this lease was taken from, and why it was dead: the
    took_over_because: str = ""     # recovery records it when it marks that run abandoned


def night_subject(night: str) -> str:
    return f"night:{night}"


def acquire(lake: Lake, subject: str, run_id: str, *, bound: str = PROCESS) -> Holder:
    """Take the lease of `subject` for `run_id`, or raise NightBusy. The same run taking it again (a task
    of the run, a retried plan) refreshes it; a dead holder's lease is taken over."""
    with leases_lock(lake):
        current = _read(lake, subject)
        dead = dead_reason(current) if current is not None else None
        if current is not None and not _same_run(current, run_id, bound) and dead is None:
            raise NightBusy(subject, current)
        now, own = _now(), current is not None and current.run_id == run_id
        me = Holder(subject=subject, run_id=run_id, bound=bound, host=socket.gethostname(), pid=os.getpid(),
                    pid_started=started(os.getpid()), heartbeat=now, since=current.since if own else now,
                    took_over_from=current.took_over_from if own else current.run_id if dead else "",
                    took_over_because=current.took_over_because if own else dead or "")
        write_json(_path(lake, subject), me)
        return me


def release(lake: Lake, subject: str, run_id: str) -> None:
    """Give the lease up, if `run_id` still holds it."""
    with leases_lock(lake):
        current = _read(lake, subject)
        if current is not None and current.run_id == run_id:
            _path(lake, subject).unlink(missing_ok=True)


def beat(lake: Lake, subject: str, run_id: str) -> bool:
    """Refresh the heartbeat; False when the lease is no longer this run's (it was taken over)."""
    with leases_lock(lake):
        current = _read(lake, subject)
        if current is None or current.run_id != run_id:
            return False
        write_json(_path(lake, subject), replace(current, heartbeat=_now()))
        return True


@contextmanager
def held(lake: Lake, subject: str, run_id: str, *, bound: str = PROCESS, wait_s: float = 0.0,
         say=None, keep: bool = False) -> Iterator[Holder]:
    """Hold the lease while the block runs, its heartbeat refreshed in the background.

    `wait_s` > 0 waits that long for a busy lease (saying so once), then gives up with NightBusy.
    `keep` leaves the lease held on exit (an orchestrator task: the run goes on in the next task).
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            holder = acquire(lake, subject, run_id, bound=bound)
            break
        except NightBusy as busy:
            if time.monotonic() >= deadline:
                raise
            if say is not None:
                say(f"waiting for the lease: {busy}")
                say = None
            time.sleep(min(2.0, max(deadline - time.monotonic(), 0.1)))
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(BEAT_EVERY_S):
            if not beat(lake, subject, run_id):
                return

    beater = threading.Thread(target=heartbeat, name="cdr-audit-lease", daemon=True)
    beater.start()
    try:
        yield holder
    finally:
        stop.set()
        beater.join()
        if not keep:
            release(lake, subject, run_id)


def live_holders(lake: Lake) -> list[Holder]:
    """Every lease whose holder lives: the runs whose work must not be touched."""
    return [h for h in _all(lake) if dead_reason(h) is None]


def why_lapsed(lake: Lake, run_id: str) -> str | None:
    """Why the lease of `run_id` lapsed: its own record if it is still there, else what the run that took the
    lease over found; None when no lease names it (released, or never taken)."""
    for h in _all(lake):
        if h.run_id == run_id:
            return dead_reason(h)
        if h.took_over_from == run_id:
            return h.took_over_because
    return None


def dead_reason(holder: Holder) -> str | None:
    """Why the holder is dead, or None while it lives."""
    if holder.bound == PROCESS and holder.host == socket.gethostname() and not alive(holder.pid,
                                                                                        holder.pid_started):
        return f"its process (pid {holder.pid} on host {holder.host}) is gone"
    age = datetime.now(timezone.utc) - datetime.fromisoformat(holder.heartbeat)
    if age > STALE_AFTER:
        return f"no heartbeat since {holder.heartbeat} (limit {int(STALE_AFTER.total_seconds() // 60)} min)"
    return None


class LeasesLockBusy(RuntimeError):
    """Another host held the lock of the runs' leases for longer than the wait; the message names it."""


@contextmanager
def leases_lock(lake: Lake, *, wait_s: float | None = None) -> Iterator[None]:
    """The lock every change of a lease or claim takes; recovery holds it while it decides which runs are dead.
    This host's processes take turns on the flock, hosts on the lease file. Another host's holder is waited
    for up to `wait_s` (default `CDR_AUDIT_LEASES_WAIT_S`, 120 s), then LeasesLockBusy names it."""
    wait_s = _lock_wait_s() if wait_s is None else wait_s
    path = lock_lease_path(lake)

    def busy(holder: LeaseHolder) -> Exception:
        return LeasesLockBusy(f"the lock of the runs' leases {path} is held by {holder.words()}; waited {wait_s:g} s"
                              f" ({LOCK_WAIT_ENV}) and changed no lease. If that holder is gone for good, check"
                              " the host, then `cdr-audit leases-lock --lake LAKE --break-lock`")

    def waiting(holder: LeaseHolder) -> str:
        return f"the lock of the runs' leases is held by {holder.words()}; waiting up to {wait_s:g} s ({LOCK_WAIT_ENV})"

    with exclusive(path.with_name(".lock")), host_lease.held(path, "the lock of the runs' leases", wait_s=wait_s,
                                                             busy=busy, waiting=waiting, say=_say):
        yield


def lock_lease_path(lake: Lake) -> Path:
    return lake.zone("audit") / "_leases" / ".lock.lease"


def _lock_wait_s() -> float:
    return float(os.environ.get(LOCK_WAIT_ENV) or 120.0)


def _say(message: str) -> None:
    print(f"cdr-audit: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ helpers

def _same_run(holder: Holder, run_id: str, bound: str) -> bool:
    """A run's own lease: any task of an orchestrator's run; for a process-bound run, the same process (two
    CLI runs given the same --run-id are still two runners)."""
    if holder.run_id != run_id:
        return False
    return bound == RUN or (holder.host == socket.gethostname() and holder.pid == os.getpid())


def _path(lake: Lake, subject: str) -> Path:
    return lake.zone("audit") / "_leases" / f"{safe_run_id(subject)}.json"


def _all(lake: Lake) -> list[Holder]:
    folder = lake.zone("audit") / "_leases"
    holders = [_read_file(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return [h for h in holders if h is not None]


def _read(lake: Lake, subject: str) -> Holder | None:
    return _read_file(_path(lake, subject))


def _read_file(path: Path) -> Holder | None:
    try:
        return read_record(path, Holder)
    except (FileNotFoundError, ValueError, TypeError, KeyError):
        return None     # absent, or a record torn by a crash before its rename: nobody holds it


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _what(subject: str) -> str:
    kind, _, value = subject.partition(":")
    return f"night {value}" if kind == "night" else f"the {kind} sweep"
