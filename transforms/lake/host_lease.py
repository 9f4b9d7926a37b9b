"""A lease file: one holder at a time across every host that mounts the lake, without a lock one kernel keeps.

A flock reaches the processes of one machine: another host mounting the lake over NFS does not see it (a
client's flock is local to it, or not offered at all). A lease file does (docs/design.md §6, §10):

* it is created whole and atomically: the holder writes its record to a private name, then hard-links it to
  the lease's name, which fails when the name exists (link() is atomic on local disks and on NFS alike; an
  NFS link answered with an error is checked by the private name's link count);
* it names the holder: host, the kernel's boot id, pid and the pid's start time, since when, and a token;
* the holder removes it when done, if it is still its own (its token);
* a lease of this host whose process is gone, or from an earlier boot of this host, is dead: it is removed
  and taken. The caller holds this host's flock meanwhile, so two processes of this host never both take a
  dead lease over (a flock does reach every process of one host);
* a lease of another host is never taken: its holder may be alive behind a network that does not answer.
  A taker waits up to its `wait_s`, then fails naming the holder. Only a person who has checked that the
  holder is gone breaks it (`break_lease`, behind a command that records it). There is no expiry: a silent
  holder is not a dead one.

A process killed between writing its private name and linking it leaves that name behind; it carries the
host and pid, and the next taker of this host removes those of dead processes (`clear_dead_temps`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from transforms.lake.patience import Patience
from transforms.lake.permissions import make_dirs, set_file_mode
from transforms.lake.processes import alive, boot_id, host_name, started

_TMP = ".tmp"
_NOT_IN_A_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease file."""

    host: str
    boot_id: str
    pid: int
    pid_started: str
    since: str          # UTC, ISO 8601
    token: str          # this holding's own: a lease broken and taken by another is not removed by this one

    def words(self) -> str:
        return f"pid {self.pid} on host {self.host} since {self.since}"


def this_process() -> LeaseHolder:
    """This process as a new holder, with a token of its own."""
    return LeaseHolder(host=host_name(), boot_id=boot_id(), pid=os.getpid(), pid_started=started(os.getpid()),
                       since=datetime.now(timezone.utc).isoformat(timespec="seconds"), token=uuid.uuid4().hex)


def read_holder(path: Path) -> LeaseHolder | None:
    """The lease at `path` as it is now, or None when nobody holds it (it is linked into place only once
    written whole, so a torn one cannot be there)."""
    try:
        return LeaseHolder(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def dead_here(holder: LeaseHolder) -> str | None:
    """Why a holder of this host is dead, or None: it lives, or it is another host's (never judged from here)."""
    if holder.host != host_name():
        return None
    if holder.boot_id and boot_id() and holder.boot_id != boot_id():
        return f"host {holder.host} has restarted since ({holder.words()})"
    if not alive(holder.pid, holder.pid_started):
        return f"its process is gone ({holder.words()})"
    return None


@contextmanager
def held(path: Path, what: str, *, wait_s: float, busy: Callable[[LeaseHolder], Exception],
         waiting: Callable[[LeaseHolder], str], say: Callable[[str], None] | None = None) -> Iterator[LeaseHolder]:
    """Hold the lease at `path` for the block (the caller holds this host's flock of it). While another host's
    holder (or a live one of this host) has it, waits up to `wait_s`, saying `waiting(holder)` once after a
    second, then raises `busy(holder)`. A dead holder of this host is taken over, said through `say`. `what`
    names the lease in what is said."""
    mine = take(path, what, wait_s=wait_s, busy=busy, waiting=waiting, say=say)
    try:
        yield mine
    finally:
        if not remove_if(path, mine) and say is not None:
            say(f"{what} was broken while {mine.words()} held it")


def take(path: Path, what: str, *, wait_s: float, busy: Callable[[LeaseHolder], Exception],
         waiting: Callable[[LeaseHolder], str], say: Callable[[str], None] | None = None) -> LeaseHolder:
    """Take the lease at `path` (see `held`); the caller gives it up with `remove_if`."""
    make_dirs(path.parent)
    clear_dead_temps(path)
    patience = Patience(wait_s, poll_s=0.25)
    while True:
        mine = this_process()
        if create(path, mine):
            return mine
        holder = read_holder(path)
        if holder is None:
            continue                    # let go between our link and our read: try again at once
        dead = dead_here(holder)
        if dead is not None:
            remove_if(path, holder)     # this host's flock is held: no other process of this host races us
            if say is not None:
                say(f"took over {what}: {dead}")
            continue
        if patience.over():
            raise busy(holder)
        patience.pause(say and (lambda: say(waiting(holder))))


def create(path: Path, holder: LeaseHolder) -> bool:
    """Create the lease at `path` whole, naming `holder`, or return False when one is there: written to a
    private name, then hard-linked to `path` (fails on an existing name, on NFS too)."""
    tmp = _temp_name(path, holder)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        set_file_mode(fd, path.parent)          # its folder's mode: a reader may look who holds it
        os.write(fd, json.dumps(asdict(holder), sort_keys=True).encode())
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


def remove_if(path: Path, holder: LeaseHolder) -> bool:
    """Remove the lease at `path` if it is still `holder`'s (its token); False when it is another's or gone."""
    now = read_holder(path)
    if now is None or now.token != holder.token:
        return False
    path.unlink(missing_ok=True)
    return True


def break_lease(path: Path) -> LeaseHolder | None:
    """Remove the lease at `path` whoever holds it (a person has made sure its holder is gone); returns what it
    was, or None when nobody held it."""
    holder = read_holder(path)
    if holder is not None:
        remove_if(path, holder)
    return holder


def clear_dead_temps(path: Path) -> int:
    """Remove the private names of `path`'s takers that died before linking or before removing them: those of
    this host whose process is gone (their name carries host and pid; the record, when whole, the pid's start
    time and boot). Another host's are never judged from here. Returns how many."""
    removed = 0
    here = _in_a_name(host_name())
    for tmp in path.parent.glob(f"{path.name}.*{_TMP}"):
        parts = tmp.name[len(path.name) + 1:-len(_TMP)].split(".")      # host, pid<N>, token
        if len(parts) != 3 or parts[0] != here or not parts[1].startswith("pid") or not parts[1][3:].isdigit():
            continue
        pid = int(parts[1][3:])
        try:
            holder = LeaseHolder(**json.loads(tmp.read_text()))
        except FileNotFoundError:
            continue                    # linked and removed by its live taker meanwhile
        except (ValueError, TypeError):
            holder = None               # torn: its taker died while writing it
        dead = dead_here(holder) if holder is not None else (None if alive(pid, "") else "gone")
        if dead is not None:
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _temp_name(path: Path, holder: LeaseHolder) -> Path:
    return path.with_name(f"{path.name}.{_in_a_name(holder.host)}.pid{holder.pid}.{holder.token}{_TMP}")


def _in_a_name(host: str) -> str:
    return _NOT_IN_A_NAME.sub("_", host)
