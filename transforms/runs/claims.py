"""A file's content is audited once, however runs race: a run claims each file it is about to audit, by the
sha256 of its content (decompressed, line endings LF: `steps.lines.FileShape.content`).

The night's lease keeps two runs of one night apart; a claim keeps runs of different nights from auditing
the same bytes at once (one landing folder read for two nights). A claim is a file `audit/_claims/<sha256>`
naming its run, created exclusively under the leases lock. A claim of a dead run is taken over; the
nightly close removes its run's claims in the transaction's shadow, once `source_files` says the bytes
were audited (docs/design.md §10).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from transforms.lake import Lake
from transforms.runs.lease import leases_lock, live_holders


def claim(lake: Lake, run_id: str, sha256s: Iterable[str]) -> dict[str, str]:
    """Claim every file (by sha256) for `run_id`; returns the files another live run holds, with its run id."""
    folder = claims_dir(lake)
    folder.mkdir(parents=True, exist_ok=True)
    held_elsewhere: dict[str, str] = {}
    with leases_lock(lake):
        live = {h.run_id for h in live_holders(lake)}
        for sha in sha256s:
            path = folder / sha
            owner = _owner(path)
            if owner is not None and owner != run_id and owner in live:
                held_elsewhere[sha] = owner
                continue
            _write(path, run_id)     # new, ours again (a retried plan), or a dead run's taken over
    return held_elsewhere


def release_claims(lake: Lake, run_id: str) -> int:
    """Remove the claims of `run_id` (its files are in `source_files` now); returns how many."""
    folder = claims_dir(lake)
    if not folder.is_dir():
        return 0
    removed = 0
    with leases_lock(lake):
        for path in folder.iterdir():
            if _owner(path) == run_id:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def drop_dead_claims(lake: Lake, live_runs: set[str]) -> int:
    """Remove claims whose run is not live (the caller holds the leases lock); returns how many."""
    folder = claims_dir(lake)
    if not folder.is_dir():
        return 0
    dead = [p for p in folder.iterdir() if _owner(p) not in live_runs]
    for path in dead:
        path.unlink(missing_ok=True)
    return len(dead)


def claims_dir(lake: Lake) -> Path:
    return lake.zone("audit") / "_claims"


def _owner(path: Path) -> str | None:
    try:
        return path.read_text() or None
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _write(path: Path, run_id: str) -> None:
    """The claim appears whole or not at all (an exclusive temp file renamed over it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)        # left by a killed process that had this pid
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(run_id)
    os.replace(tmp, path)
