"""Commit points: a file or a folder appears in the lake whole, in one rename, or not at all.

Every writer of a zone stages beside its target and renames into view (docs/design.md §2): readers see
the old content or the new, never half of either; a run killed before the rename leaves only a stray
staging name, which the next run replaces.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def commit_file(tmp: Path, final: Path) -> None:
    """Commit point: move a fully written file into view in one rename."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def commit_folder(final: Path, fill: Callable[[Path], T]) -> T:
    """Commit point for a folder: `fill(stage)` writes the files into a staging folder beside `final`,
    which then takes the place of `final` (and of everything it held) in one rename."""
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = final.parent / f".staging-{final.name}-{uuid.uuid4().hex}"
    old = final.parent / f".replaced-{final.name}-{uuid.uuid4().hex}"
    stage.mkdir()
    try:
        result = fill(stage)
        for f in stage.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            os.replace(final, old)
        os.replace(stage, final)   # commit point: the folder's new files appear together
    finally:
        remove_tree(stage)
        remove_tree(old)
    return result


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks (files here reach gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (processes on one machine take turns; a second one waits)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
