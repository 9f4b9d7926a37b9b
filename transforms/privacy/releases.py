"""Releases: a day's k-anonymous aggregates are released once, late rows apart (docs/design.md §4).

A day re-released from more rows would let anyone holding both versions subtract one from the other and
learn about the few subscribers of the added rows, below k. So (policy `aggregate_release`):

* A day is released once its window has closed: the run of the night `window_days` after it releases it,
  after that night's files, from every analytics part of the day then (release 1, kind `day`).
* A released folder is never rewritten: it is committed with `commit_new_folder`, which refuses an
  existing folder. A re-run finds the release made and changes nothing.
* Each release names the analytics parts it was made from (`_release.json`, committed in the same
  rename). Parts of a released day that no release names are its late rows: they wait until, together,
  they pass k on their own — a late release (kind `late`, release 2, 3, …) with its own suppression,
  made only when it releases something. No part is in two releases, so no two releases share a row.
* A release that would release nothing (every figure suppressed) is not made, day or late: its parts
  keep waiting, and are tried again, with whatever joins them, each night. Nothing of them was released,
  so there is no earlier version to subtract.

Layout: `aggregates/event_date=D/release=N/` holds the release's tables and `_release.json`; an analyst
reads `aggregates/*/*/<table>.parquet` with hive partitioning (columns `event_date`, `release`).
Analytics parts are one Parquet per landing file and day (`analytics/event_date=D/part-<hash>.parquet`),
rewritten in place under the same name by an erasure or the sweep: a manifest names parts, not bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from transforms.lake import Lake
from transforms.lake.commit import AlreadyCommitted, commit_new_folder, remove_tree
from transforms.lake.permissions import make_dirs
from transforms.lake.records import from_plain, to_plain, write_json
from transforms.policy import Policy
from transforms.privacy.aggregates import AggregateResult, aggregate_day
from transforms.privacy.suppression import TableRelease

DAY, LATE = "day", "late"
WINDOW_OPEN, BELOW_K = "window_open", "below_k"
MANIFEST = "_release.json"          # leading underscore: `*.parquet` globs and Parquet readers skip it
RETIRED = "_retired.json"           # in a day folder whose releases retention deleted: the day stays released
DAY_RELEASE = 1


@dataclass(frozen=True)
class ReleaseManifest:
    """What one release was made from: written inside its folder, committed with it."""

    event_date: str
    release: int
    kind: str                        # day | late
    parts: tuple[str, ...]           # analytics part file names, sorted
    rows: int                        # analytics rows aggregated
    k: int
    window_closes_on: str
    # What the release's audit rows say, kept with it: a run killed after the commit and before its close
    # leaves a release nobody recorded, and the next run records it from here (`ReleaseNight.standing`).
    run_id: str = ""                 # the run that made it
    late_rows_pending: int = 0       # rows of the day left waiting for a late release when it was made
    tables: tuple[TableRelease, ...] = ()


@dataclass(frozen=True)
class Release:
    """A release made by this run."""

    manifest: ReleaseManifest
    result: AggregateResult
    late_rows_pending: int           # rows of the day still waiting for a late release after this one


@dataclass(frozen=True)
class Waiting:
    """A day's rows not released tonight: its window is still open, or they do not pass k yet (nothing of
    them would be released)."""

    event_date: str
    reason: str                      # window_open | below_k
    parts: int
    rows: int
    window_closes_on: str


@dataclass(frozen=True)
class ReleaseNight:
    """What the run of a night released, and what waits."""

    night: str
    window_days: int
    clause: str
    released: tuple[Release, ...]
    waiting: tuple[Waiting, ...]
    already_released: int            # days released before tonight with nothing new to release
    # Releases of the days still open that were made before tonight (by any run), each to be recorded in the
    # audit store unless it is already: a run killed between a release and its close recorded nothing.
    standing: tuple[ReleaseManifest, ...] = ()


def day_folder(lake: Lake, day: str) -> Path:
    return lake.zone("aggregates") / f"event_date={day}"


def release_folder(lake: Lake, day: str, number: int) -> Path:
    return day_folder(lake, day) / f"release={number}"


def manifests(lake: Lake, day: str) -> list[ReleaseManifest]:
    """The releases of a day, by number."""
    found = []
    for path in day_folder(lake, day).glob(f"release=*/{MANIFEST}"):
        found.append(from_plain(ReleaseManifest, json.loads(path.read_text())))
    return sorted(found, key=lambda m: m.release)


def _closed(lake: Lake, day: str) -> bool:
    """A day never to be released again: its releases were deleted by retention (`retire`), or it was
    released before releases were numbered (its tables straight in `event_date=D/`, from parts nobody
    recorded, so none of its parts can be told late)."""
    folder = day_folder(lake, day)
    return (folder / RETIRED).exists() or any(folder.glob("*.parquet"))


def retire(lake: Lake, day: str) -> list[Path]:
    """Mark `day` as released for good before retention deletes its releases, and return their files
    (tables and manifests) for the sweep to delete: a released day, even once deleted, is never released
    again from what is left of its rows (docs/design.md §4)."""
    made = manifests(lake, day)
    folder = day_folder(lake, day)
    if not (folder / RETIRED).exists():
        write_json(folder / RETIRED, {"event_date": day, "releases": [m.release for m in made],
                                      "parts": sorted({p for m in made for p in m.parts})})
    return sorted(p for p in folder.glob("release=*/*") if p.is_file())


def analytics_days(lake: Lake) -> list[str]:
    """Every day the analytics zone holds rows of."""
    return sorted(p.name.split("=", 1)[1] for p in lake.zone("analytics").glob("event_date=*")
                  if any(p.glob("*.parquet")))


def released_days(lake: Lake) -> list[str]:
    """Every day the aggregates zone holds a release of."""
    return sorted(p.name.split("=", 1)[1] for p in lake.zone("aggregates").glob("event_date=*")
                  if any(p.glob(f"release=*/{MANIFEST}")))


def _parts(lake: Lake, day: str) -> dict[str, Path]:
    return {p.name: p for p in sorted((lake.zone("analytics") / f"event_date={day}").glob("*.parquet"))}


def _rows(paths) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)   # footers only


def release_night(lake: Lake, policy: Policy, night: date, *, run_id: str) -> ReleaseNight:
    """Release every day whose window closed by `night` and has no release yet, and the late rows of
    released days once they pass k; count what waits. See the module docstring."""
    rule = policy.aggregate_release
    released, waiting, standing, done = [], [], [], 0
    # The released days too: the retention sweep releases a day (`ensure_released`) and then deletes its analytics
    # rows, and that release is recorded only if a night reports it standing.
    for day in sorted({*analytics_days(lake), *released_days(lake)}):
        closes = rule.window_closes_on(date.fromisoformat(day)).isoformat()
        parts = _parts(lake, day)
        if _closed(lake, day):
            done += 1
            continue
        made = manifests(lake, day)
        # A release from before its audit rows were kept with it (no `tables`) was recorded by the run that made it.
        standing += [m for m in made if m.tables]
        if not made:
            if not rule.is_due(date.fromisoformat(day), night):
                waiting.append(Waiting(day, WINDOW_OPEN, len(parts), _rows(parts.values()), closes))
                continue
            number, kind, todo = DAY_RELEASE, DAY, parts
        else:
            covered = {p for m in made for p in m.parts}
            number, kind, todo = made[-1].release + 1, LATE, {n: p for n, p in parts.items() if n not in covered}
            if not todo:
                done += 1
                continue
        try:
            release = _release(lake, policy, day, number, kind, todo, closes, run_id)
        except AlreadyCommitted:
            done += 1               # another run (another night's) made this release first: it stands
            continue
        if release is None:
            waiting.append(Waiting(day, BELOW_K, len(todo), _rows(todo.values()), closes))
        else:
            released.append(release)
    return ReleaseNight(night.isoformat(), rule.window_days, rule.clause, tuple(released), tuple(waiting), done,
                        tuple(standing))


def ensure_released(lake: Lake, policy: Policy, day: str, *, run_id: str) -> Release | None:
    """Make sure `day` has been released (the retention sweep, before analytics rows of the day go): its
    day release from every part there is now, unless it has a release already. None when it had one,
    or has no analytics rows."""
    parts = _parts(lake, day)
    if _closed(lake, day) or manifests(lake, day) or not parts:
        return None
    closes = policy.aggregate_release.window_closes_on(date.fromisoformat(day)).isoformat()
    try:
        return _release(lake, policy, day, DAY_RELEASE, DAY, parts, closes, run_id)
    except AlreadyCommitted:
        return None                 # a night's run released it meanwhile


def _release(lake: Lake, policy: Policy, day: str, number: int, kind: str, parts: dict[str, Path],
             closes: str, run_id: str) -> Release | None:
    """Aggregate exactly `parts`, suppress, and commit release `number` of `day` — never over an existing
    one (AlreadyCommitted: another run made it first). A release that would release nothing is not made
    (None)."""
    work = lake.work_dir(run_id) / f"release-{day}-{number}"
    snapshot = lake.release_snapshot_dir(run_id) / f"release-{day}-{number}"
    remove_tree(work)
    remove_tree(snapshot)
    try:
        # The parts as they are now, linked (a rewrite for a subject's rights renames a new file in;
        # the link keeps what the manifest names): the release is made from exactly these rows. The links
        # stay in the analytics zone: a link shares its part's mode, which the owner-only work zone refuses.
        src = snapshot / f"event_date={day}"
        make_dirs(src)
        for name, path in parts.items():
            _link(path, src / name)
        rows = _rows(src.glob("*.parquet"))
        out = work / "out"
        result = aggregate_day(str(src / "*.parquet"), policy, work / "aggregate", out)
        tables = sorted((out / f"event_date={day}").glob("*.parquet"))
        if not _rows(tables):
            return None     # releases nothing: nothing of these rows was ever released, so they wait whole
        now = _parts(lake, day)
        pending = set(now) - set(parts) - {p for m in manifests(lake, day) for p in m.parts}
        manifest = ReleaseManifest(event_date=day, release=number, kind=kind, parts=tuple(sorted(parts)),
                                   rows=rows, k=result.k, window_closes_on=closes, run_id=run_id,
                                   late_rows_pending=_rows(now[p] for p in pending), tables=result.tables)

        def fill(stage: Path) -> None:
            for f in tables:
                shutil.copyfile(f, stage / f.name)
            (stage / MANIFEST).write_text(json.dumps(to_plain(manifest), sort_keys=True, indent=1) + "\n")

        commit_new_folder(release_folder(lake, day, number), fill)
        return Release(manifest, result, manifest.late_rows_pending)
    finally:
        remove_tree(work)
        remove_tree(snapshot)
        with contextlib.suppress(OSError):     # the run's folder, once it holds no release's links
            snapshot.parent.rmdir()


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
