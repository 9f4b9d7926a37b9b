"""The audit store's single writer across machines: a lease file in the lake, and roles that may not write.

The writer's flock (`audit/.writer.lock`) makes writers of one machine take turns, but a lock that only one
kernel sees does not reach another host mounting the same lake (flock over NFS is local to each client, or
not offered at all). So every writing session also holds `audit/.writer.lease` (docs/design.md §6):

* it is created whole and atomically: the holder writes its record to a private name, then hard-links it to
  the lease's name, which fails when the name exists (link() is atomic on local disks and on NFS alike);
* it names the holder: host, the kernel's boot id, pid and the pid's start time, since when, and a token;
* `writing` takes it after the flock and removes it when the session ends, if it is still its own;
* a lease from this host whose process is gone, or from an earlier boot of this host, is dead: it is removed
  (under the flock, so two processes of this host never both do) and taken;
* a lease from another host is never taken: its holder may be alive behind a network that does not answer.
  A writer waits for it up to `CDR_AUDIT_STORE_WAIT_S`, then fails naming the holder. Only a person who has
  checked that holder is gone breaks it: `cdr-audit writer-lease --lake LAKE --break-lease`, which the audit
  log records. There is no expiry: a silent holder is not a dead one.

And code that must never write the store says so (`no_writing`): the per-file step runs inside it, so an
attempt to open the store for writing from there fails at once, whatever the lease.
"""

from __future__ import annotations

import errno
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from transforms.lake import Lake
from transforms.lake.permissions import make_dirs, set_file_mode
from transforms.lake.processes import alive, boot_id, host_name, started

LEASE = ".writer.lease"


class WriterRefused(RuntimeError):
    """This code may not write the audit store at all (a per-file step)."""


@dataclass(frozen=True)
class WriterLease:
    """Who holds the audit store's writer lease."""

    host: str
    boot_id: str
    pid: int
    pid_started: str
    since: str          # UTC, ISO 8601
    token: str          # this session's own: a lease broken and taken by another is not removed by this one

    def words(self) -> str:
        return f"pid {self.pid} on host {self.host} since {self.since}"


def lease_path(lake: Lake) -> Path:
    return lake.zone("audit") / LEASE


def current_lease(lake: Lake) -> WriterLease | None:
    """The lease as it is now, or None when nobody holds it (a record torn by a crash counts as none: it is
    linked into place only once written whole, so a torn one cannot be there)."""
    try:
        return WriterLease(**json.loads(lease_path(lake).read_text()))
    except FileNotFoundError:
        return None


def dead_here(lease: WriterLease) -> str | None:
    """Why a lease of this host is dead, or None: it lives, or it is another host's (never judged from here)."""
    if lease.host != host_name():
        return None
    if lease.boot_id and boot_id() and lease.boot_id != boot_id():
        return f"host {lease.host} has restarted since ({lease.words()})"
    if not alive(lease.pid, lease.pid_started):
        return f"its process is gone ({lease.words()})"
    return None


_forbidden: list[str] = []     # process-wide: a thread the per-file step starts is refused too


@contextmanager
def no_writing(role: str) -> Iterator[None]:
    """The block may not open the audit store for writing: `writing` raises WriterRefused naming `role`."""
    _forbidden.append(role)
    try:
        yield
    finally:
        _forbidden.remove(role)


def refuse_if_forbidden(lake: Lake) -> None:
    if _forbidden:
        raise WriterRefused(f"{_forbidden[-1]} may not write the audit store {lake.audit_db}: per-file work"
                            " leaves fragments, and only the night's plan and close write (docs/design.md §6)")


@contextmanager
def held_lease(lake: Lake, wait_s: float, say: Callable[[str], None] | None,
               busy: Callable[[str], Exception]) -> Iterator[WriterLease]:
    """Hold the writer lease for the block (the caller holds this host's flock). Waits up to `wait_s` for
    another host's holder, saying so once after a second, then raises `busy(message)`."""
    mine = _take(lake, wait_s, say, busy)
    try:
        yield mine
    finally:
        _give_up(lake, mine, say)


def _take(lake: Lake, wait_s: float, say, busy) -> WriterLease:
    path = lease_path(lake)
    make_dirs(path.parent)
    start = time.monotonic()
    while True:
        mine = WriterLease(host=host_name(), boot_id=boot_id(), pid=os.getpid(), pid_started=started(os.getpid()),
                           since=datetime.now(timezone.utc).isoformat(timespec="seconds"), token=uuid.uuid4().hex)
        if _link_new(path, mine):
            return mine
        holder = current_lease(lake)
        if holder is None:
            continue                    # let go between our link and our read: try again at once
        dead = dead_here(holder)
        if dead is not None:
            _remove_if(path, holder)    # this host's flock is held: no other process of this host races us
            if say is not None:
                say(f"took over the audit store's writer lease: {dead}")
            continue
        waited = time.monotonic() - start
        if waited >= wait_s:
            raise busy(f"the audit store {lake.audit_db} is being written by {holder.words()} (writer lease"
                       f" {path}); waited {wait_s:g} s (CDR_AUDIT_STORE_WAIT_S) and wrote nothing. If that holder"
                       " is gone for good, check the host, then `cdr-audit writer-lease --lake LAKE --break-lease`")
        if say is not None and waited >= 1.0:
            say(f"the audit store {lake.audit_db} is being written by {holder.words()}; waiting up to {wait_s:g} s"
                " (CDR_AUDIT_STORE_WAIT_S)")
            say = None
        time.sleep(min(0.25, max(wait_s - waited, 0.01)))


def _link_new(path: Path, lease: WriterLease) -> bool:
    """Create the lease at `path` whole, or return False when one is there: written to a private name, then
    hard-linked to `path` (fails on an existing name, on NFS too)."""
    tmp = path.with_name(f"{path.name}.{lease.token}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        set_file_mode(fd, path.parent)          # the audit zone's mode: a reader may look who writes
        os.write(fd, json.dumps(asdict(lease), sort_keys=True).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        # NFS may answer a link that succeeded with an error (a retransmitted request): the link count says.
        if exc.errno not in (errno.EIO, errno.ETIMEDOUT) or os.stat(tmp).st_nlink != 2:
            raise
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _remove_if(path: Path, lease: WriterLease) -> bool:
    """Remove the lease at `path` if it is still `lease` (its token); False when it is another's or gone."""
    try:
        now = WriterLease(**json.loads(path.read_text()))
    except FileNotFoundError:
        return False
    if now.token != lease.token:
        return False
    path.unlink(missing_ok=True)
    return True


def _give_up(lake: Lake, mine: WriterLease, say) -> None:
    if not _remove_if(lease_path(lake), mine) and say is not None:
        say(f"the audit store's writer lease was broken while this session ({mine.words()}) held it")


def break_lease(lake: Lake) -> WriterLease | None:
    """Remove the writer lease whoever holds it (`cdr-audit writer-lease --break-lease`, after a person has
    made sure its holder is gone); returns what it was, or None when nobody held it."""
    holder = current_lease(lake)
    if holder is not None:
        _remove_if(lease_path(lake), holder)
    return holder
