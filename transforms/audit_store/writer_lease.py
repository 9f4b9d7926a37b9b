"""The audit store's single writer across machines: a lease file in the lake, and roles that may not write.

The writer's flock (`audit/.writer.lock`) makes writers of one machine take turns, but a lock that only one
kernel sees does not reach another host mounting the same lake (flock over NFS is local to each client, or
not offered at all). So every writing session also holds `audit/.writer.lease`, a lease file
(`transforms/lake/host_lease.py`, docs/design.md §6): created whole by link(), naming host, boot, pid and a
token; a dead holder of this host is taken over (under the flock); another host's is waited for up to
`CDR_AUDIT_STORE_WAIT_S`, then the writer fails naming it. Only a person who has checked that holder is gone
breaks it: `cdr-audit writer-lease --lake LAKE --break-lease`, which the audit log records.

Readers on another host see no flock either: every session, once it holds the lease and before it opens the
store, publishes a new generation (`audit/.writer.generation`, its token), and a reader keeps a copy only if
no lease was held when it began or ended and the generation did not move meanwhile (`store.copy_store`).

And code that must never write the store says so (`no_writing`): the per-file step runs inside it, so an
attempt to open the store for writing from there fails at once, whatever the lease.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from transforms.lake import Lake
from transforms.lake import host_lease
from transforms.lake.host_lease import LeaseHolder as WriterLease
from transforms.lake.host_lease import dead_here
from transforms.lake.commit import commit_file

__all__ = ["LEASE", "GENERATION", "WriterLease", "WriterRefused", "break_lease", "current_lease", "dead_here",
           "generation", "held_lease", "lease_path", "no_writing", "refuse_if_forbidden"]

LEASE = ".writer.lease"
GENERATION = ".writer.generation"


class WriterRefused(RuntimeError):
    """This code may not write the audit store at all (a per-file step)."""


def lease_path(lake: Lake) -> Path:
    return lake.zone("audit") / LEASE


def current_lease(lake: Lake) -> WriterLease | None:
    """The lease as it is now, or None when nobody holds it."""
    return host_lease.read_holder(lease_path(lake))


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
    """Hold the writer lease for the block (the caller holds this host's flock), and publish this session's
    generation before the block opens the store. Waits up to `wait_s` for another host's holder, saying so
    once after a second, then raises `busy(message)`."""
    path = lease_path(lake)

    def refused(holder: WriterLease) -> Exception:
        return busy(f"the audit store {lake.audit_db} is being written by {holder.words()} (writer lease {path});"
                    f" waited {wait_s:g} s (CDR_AUDIT_STORE_WAIT_S) and wrote nothing. If that holder is gone for"
                    " good, check the host, then `cdr-audit writer-lease --lake LAKE --break-lease`")

    def waiting(holder: WriterLease) -> str:
        return (f"the audit store {lake.audit_db} is being written by {holder.words()}; waiting up to {wait_s:g} s"
                " (CDR_AUDIT_STORE_WAIT_S)")

    with host_lease.held(path, "the audit store's writer lease", wait_s=wait_s, busy=refused, waiting=waiting, say=say) as mine:
        _publish_generation(lake, mine.token)
        yield mine


def generation(lake: Lake) -> str:
    """The token of the last writing session that took the lease ('' before any did)."""
    try:
        return (lake.zone("audit") / GENERATION).read_text()
    except FileNotFoundError:
        return ""


def _publish_generation(lake: Lake, token: str) -> None:
    """Replace the generation whole (a private name renamed over it): a reader reads the old token or the new."""
    path = lake.zone("audit") / GENERATION
    # The lease is ours, so no other session is publishing: a private name left here is a killed writer's.
    for stray in path.parent.glob(f"{path.name}.*.tmp"):
        stray.unlink(missing_ok=True)
    tmp = path.with_name(f"{path.name}.{token}.tmp")
    tmp.write_text(token)
    commit_file(tmp, path)          # the audit zone's mode (its readers check it), fsync'd, one rename


def break_lease(lake: Lake) -> WriterLease | None:
    """Remove the writer lease whoever holds it (`cdr-audit writer-lease --break-lease`, after a person has
    made sure its holder is gone); returns what it was, or None when nobody held it."""
    return host_lease.break_lease(lease_path(lake))
