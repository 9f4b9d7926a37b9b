"""Commit points: a file or a folder appears in the lake whole, in one rename, or not at all.

Every writer of a zone stages beside its target and renames into view (docs/design.md §2): readers see
the old content or the new, never half of either; a run killed before the rename leaves only a stray
staging name, which the next run replaces. Before the rename, what is committed gets its zone's modes
(transforms/lake/permissions.py): nothing appears in a zone with a looser mode than the zone declares, and
a staging folder is owner-only while it is filled.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from transforms.lake.patience import Patience
from transforms.lake.permissions import make_dirs, set_file_mode, settle_tree

T = TypeVar("T")


def commit_file(tmp: Path, final: Path) -> None:
    """Commit point: move a fully written file into view in one rename, with the mode of its folder's zone."""
    make_dirs(final.parent)
    with open(tmp, "rb") as fh:
        set_file_mode(fh.fileno(), final.parent)
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def commit_folder(final: Path, fill: Callable[[Path], T]) -> T:
    """Commit point for a folder: `fill(stage)` writes the files into a staging folder beside `final`,
    which then takes the place of `final` (and of everything it held) in one rename.

    Committers of one parent folder take turns (a lock on the parent). Under that lock any staging
    folder still there was left by a run killed before its rename, rows no reader or retention sweep
    looks at: it is removed before staging anew.
    """
    return _commit_staged(final, fill, _take_place)


class AlreadyCommitted(FileExistsError):
    """`commit_new_folder` was asked to commit a folder that is already there: it is never replaced."""


def commit_new_folder(final: Path, fill: Callable[[Path], T]) -> T:
    """Commit point for a folder that may appear once and never change (a release, docs/design.md §4):
    as `commit_folder`, but an existing `final` is never replaced — AlreadyCommitted is raised, before
    staging and again at the rename (renameat2's RENAME_NOREPLACE; where the system has none, the check
    under the parent's lock, which every committer of the parent takes, stands in for it).
    """
    def refuse(final: Path) -> None:
        if final.exists():
            raise AlreadyCommitted(f"{final.name} is already committed in {final.parent.name}; it is never replaced")
    return _commit_staged(final, fill, _place_new, before=refuse)


def _commit_staged(final: Path, fill: Callable[[Path], T], place: Callable[[Path, Path], None],
                   before: Callable[[Path], None] = lambda _final: None) -> T:
    parent = final.parent
    make_dirs(parent)
    with _locked_dir(parent):
        before(final)
        for stray in [*parent.glob(f"{_STAGING}*"), *parent.glob(f"{_REPLACED}*")]:
            remove_tree(stray)
        stage = parent / f"{_STAGING}{final.name}-{uuid.uuid4().hex}"
        stage.mkdir(mode=0o700)         # owner-only while it is filled, whatever the umask (policy access.work)
        try:
            result = fill(stage)
            for f in stage.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            settle_tree(stage, parent)  # the zone's modes, the stage itself last
            place(stage, final)         # commit point: the folder's new files appear together
        finally:
            remove_tree(stage)
    return result


_STAGING, _REPLACED = ".staging-", ".replaced-"
_AT_FDCWD, _RENAME_NOREPLACE, _RENAME_EXCHANGE = -100, 1, 2


def _take_place(stage: Path, final: Path) -> None:
    """Move `stage` to `final`. An existing `final` is swapped out in one rename (renameat2's
    RENAME_EXCHANGE; `stage` then holds the old files); where the system has no such rename, it is
    moved aside first, and for that moment `final` is missing."""
    if not final.exists():
        os.replace(stage, final)
    elif not _renameat2(stage, final, _RENAME_EXCHANGE):
        old = final.parent / f"{_REPLACED}{final.name}-{uuid.uuid4().hex}"
        os.replace(final, old)
        os.replace(stage, final)
        remove_tree(old)


def _place_new(stage: Path, final: Path) -> None:
    """Move `stage` to `final` unless `final` exists (AlreadyCommitted then)."""
    try:
        if _renameat2(stage, final, _RENAME_NOREPLACE):
            return
    except FileExistsError:
        raise AlreadyCommitted(f"{final.name} is already committed in {final.parent.name}") from None
    if final.exists():      # no RENAME_NOREPLACE here: the parent's lock keeps other committers out
        raise AlreadyCommitted(f"{final.name} is already committed in {final.parent.name}")
    os.rename(stage, final)


def _renameat2(a: Path, b: Path, flags: int) -> bool:
    """renameat2(a, b, flags); False where the system or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))   # EEXIST: FileExistsError


@contextmanager
def _locked_dir(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a folder itself (no lock file is left among the zone's files)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)   # releases the lock


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks (files here reach gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def clear_strays(root: Path) -> int:
    """Remove every staging or replaced folder a killed committer left under `root`, each under its parent's
    lock (a live commit's staging folder is never seen: it is gone before the lock is let go). They hold
    rows no reader or retention sweep looks at. Returns how many."""
    removed = 0
    for parent, dirs, _ in os.walk(root):
        strays = [d for d in dirs if d.startswith((_STAGING, _REPLACED))]
        dirs[:] = [d for d in dirs if d not in strays]
        if strays:
            with _locked_dir(Path(parent)):
                for d in strays:
                    remove_tree(Path(parent) / d)
                    removed += 1
    return removed


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (processes on one machine take turns; a second one waits, and so
    does a `shared` holder of the same file).

    The lock file has its folder's mode: in a group zone its group may open it to take a shared lock
    (a reader of the audit store waits for the writer on `audit/.writer.lock`)."""
    make_dirs(lock_file.parent)
    with open(lock_file, "a+") as fh:
        try:
            set_file_mode(fh.fileno(), lock_file.parent)
        except PermissionError:
            pass                        # another account's lock file: its owner set its mode
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class LockWaitExpired(TimeoutError):
    """A `shared` lock was not free within its wait."""


@contextmanager
def shared(lock_file: Path, wait_s: float, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold a shared lock on `lock_file`: beside other shared holders, never beside an `exclusive` one (that one
    waits until every shared holder has let go, and a shared one waits for it).

    The file is opened read-only and never created: a reader may only read its folder. It waits up to
    `wait_s` seconds for an exclusive holder, calling `on_wait` once after the first second, then raises
    LockWaitExpired; FileNotFoundError when the file does not exist.
    """
    fd = os.open(lock_file, os.O_RDONLY)
    try:
        patience = Patience(wait_s, poll_s=0.05)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if patience.over():
                    raise LockWaitExpired(f"{lock_file} stayed locked for {wait_s:g} s") from None
                patience.pause(on_wait)
        yield
    finally:
        os.close(fd)   # releases the lock
