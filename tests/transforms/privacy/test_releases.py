"""transforms/privacy/releases.py: a day released once, after its window; late rows released apart, only
once they pass k on their own; a released file never rewritten (docs/design.md §4, policy aggregate_release).

The attacks as tests: "version minus version" (every file of every release, snapshotted after each night,
never changes, and no analytics part is in two releases of a day) and "late release minus nothing" (every
released figure of a late release, recounted from the analytics rows its manifest names, describes at least
k subscribers). The mutation checks switch each protection off and show the same checks then fail.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.release_attacks import assert_released_once, recount, snapshot
from tests.transforms.privacy.conftest import row, write_rows
from transforms.lake import Lake
from transforms.lake.commit import AlreadyCommitted, commit_folder, commit_new_folder
from transforms.privacy import releases
from transforms.privacy.releases import (
    BELOW_K, DAY, LATE, MANIFEST, WINDOW_OPEN, ensure_released, manifests, release_folder, release_night,
)

D = "2026-11-10"


def night(offset: int, day: str = D) -> date:
    return date.fromisoformat(day) + timedelta(days=offset)


def add_part(lake: Lake, name: str, rows: list[tuple], day: str = D) -> Path:
    folder = lake.zone("analytics") / f"event_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    return write_rows(folder / f"part-{name}.parquet", rows)


def people(first: int, n: int, **kw) -> list[tuple]:
    """One row each of subscribers first … first+n-1, at 10:00 by default."""
    return [row(s, day=kw.pop("day", D), **{"hour": 10, **kw}) for s in range(first, first + n)]


@pytest.fixture()
def lake(tmp_path) -> Lake:
    return Lake.at(tmp_path / "lake")


# ---------------------------------------------------------------- the window, from the policy's words

def test_the_window_closes_on_the_night_window_days_after_the_day(policy):
    # policy aggregate_release: rows of D reaching the lake by the night of D + window_days (3) are on time,
    # and that night's run releases D. 10 Nov: the nights of 10, 11, 12, 13 Nov are on time; 13 Nov releases.
    rule = policy.aggregate_release
    assert rule.window_days == 3
    assert rule.window_closes_on(date(2026, 11, 10)) == date(2026, 11, 13)
    assert not rule.is_due(date(2026, 11, 10), date(2026, 11, 12))
    assert rule.is_due(date(2026, 11, 10), date(2026, 11, 13))
    assert rule.window_closes_on(date(2026, 2, 27)) == date(2026, 3, 2)       # across a month end
    assert rule.window_closes_on(date(2028, 2, 27)) == date(2028, 3, 1)       # a leap year's 29 Feb counts


def test_a_day_inside_its_window_waits_and_nothing_is_written(lake, policy):
    add_part(lake, "a", people(0, 12))
    for offset in (0, 1, 2):
        done = release_night(lake, policy, night(offset), run_id="r")
        assert done.released == ()
        assert [(w.event_date, w.reason, w.parts, w.rows, w.window_closes_on) for w in done.waiting] == [
            (D, WINDOW_OPEN, 1, 12, "2026-11-13")]
    assert snapshot(lake) == {}


def test_the_night_the_window_closes_releases_the_day_from_all_its_parts(lake, policy):
    add_part(lake, "a", people(0, 7))
    add_part(lake, "b", people(7, 5))           # another landing file of the same day, on time
    done = release_night(lake, policy, night(3), run_id="r")
    (made,) = done.released
    assert made.manifest == releases.ReleaseManifest(event_date=D, release=1, kind=DAY, parts=("part-a.parquet",
                                                     "part-b.parquet"), rows=12, k=10, window_closes_on="2026-11-13",
                                                     run_id="r", late_rows_pending=0, tables=made.result.tables)
    assert all(t.cells_released == 1 for t in made.result.tables) and made.late_rows_pending == 0 and done.waiting == ()
    folder = release_folder(lake, D, 1)
    assert folder == lake.zone("aggregates") / f"event_date={D}" / "release=1"
    assert json.loads((folder / MANIFEST).read_text())["parts"] == ["part-a.parquet", "part-b.parquet"]
    # The release's audit rows are kept with it, read back as they were made.
    assert manifests(lake, D) == [made.manifest] and len(made.manifest.tables) == len(policy.release_tables)
    assert any(folder.glob("*.parquet"))


def test_a_lake_whose_file_system_refuses_hard_links_releases_the_same_from_copies(tmp_path, policy, monkeypatch):
    # The snapshot links each part (a rewrite renames a new file in; the link keeps the rows the manifest
    # names). Where the file system refuses a hard link (EXDEV, FAT, some network mounts) it copies them.
    def refused(src, dst):
        raise OSError(18, "Invalid cross-device link")

    made = {}
    for kind in ("linked", "copied"):
        lake = Lake.at(tmp_path / kind)
        add_part(lake, "a", people(0, 7))
        add_part(lake, "b", people(7, 5))
        if kind == "copied":
            monkeypatch.setattr(releases.os, "link", refused)
        (made[kind],) = release_night(lake, policy, night(3), run_id="r").released
        assert not lake.release_snapshots.exists() or not any(lake.release_snapshots.iterdir())   # none left over
    assert made["copied"].manifest == made["linked"].manifest and made["copied"].manifest.rows == 12
    figures = [{f.name: f.read_bytes() for f in release_folder(Lake.at(tmp_path / kind), D, 1).glob("*.parquet")}
               for kind in ("linked", "copied")]
    assert figures[0] == figures[1] and figures[0]


def test_a_day_whose_window_closed_while_no_run_ran_is_released_by_the_next_run(lake, policy):
    add_part(lake, "a", people(0, 12))
    (made,) = release_night(lake, policy, night(30), run_id="r").released
    assert (made.manifest.release, made.manifest.kind) == (1, DAY)


# ---------------------------------------------------------------- released once: re-runs, kills

def test_a_re_run_of_the_night_changes_no_byte(lake, policy):
    add_part(lake, "a", people(0, 12))
    release_night(lake, policy, night(3), run_id="r1")
    before = snapshot(lake)
    again = release_night(lake, policy, night(3), run_id="r2")
    assert again.released == () and again.waiting == () and again.already_released == 1
    assert snapshot(lake) == before and before


def test_the_commit_refuses_to_replace_a_release(tmp_path):
    final = tmp_path / "aggregates" / "event_date=2026-11-10" / "release=1"
    commit_new_folder(final, lambda stage: (stage / "cells.parquet").write_bytes(b"first"))
    with pytest.raises(AlreadyCommitted):
        commit_new_folder(final, lambda stage: (stage / "cells.parquet").write_bytes(b"second"))
    assert (final / "cells.parquet").read_bytes() == b"first"
    assert [p.name for p in final.parent.iterdir()] == ["release=1"]          # no stage left behind


def test_the_commit_refuses_at_the_rename_too(tmp_path):
    # Another committer's folder appears while this one fills its stage: the rename itself refuses.
    final = tmp_path / "release=1"

    def fill(stage: Path) -> None:
        (stage / "cells.parquet").write_bytes(b"mine")
        final.mkdir()
        (final / "cells.parquet").write_bytes(b"theirs")

    with pytest.raises(AlreadyCommitted):
        commit_new_folder(final, fill)
    assert (final / "cells.parquet").read_bytes() == b"theirs"


def test_a_run_killed_between_staging_and_commit_re_run_gives_the_same_release(lake, tmp_path, policy,
                                                                              monkeypatch):
    add_part(lake, "a", people(0, 12) + people(20, 3, hour=11))
    clean = Lake.at(tmp_path / "clean")
    add_part(clean, "a", people(0, 12) + people(20, 3, hour=11))
    release_night(clean, policy, night(3), run_id="r")

    from transforms.lake import commit

    def killed(stage: Path, final: Path) -> None:
        # What a kill -9 here leaves: the filled stage under its staging name, nothing committed.
        stage.rename(final.parent / f".staging-{final.name}-dead")
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(commit, "_place_new", killed)
        with pytest.raises(KeyboardInterrupt):
            release_night(lake, policy, night(3), run_id="r")
    assert not release_folder(lake, D, 1).exists()
    assert any(p.name.startswith(".staging-") for p in (lake.zone("aggregates") / f"event_date={D}").iterdir())
    release_night(lake, policy, night(3), run_id="r")
    strip = {k.replace(str(clean.root), ""): v for k, v in snapshot(clean).items()}
    assert snapshot(lake) == strip                                             # and the stray stage is gone


def test_a_run_that_listed_before_another_committed_leaves_that_release_standing(lake, policy, monkeypatch):
    # Two nights' runs at once: the second listed the day as unreleased, then the first committed release 1.
    add_part(lake, "a", people(0, 12))
    release_night(lake, policy, night(3), run_id="first")
    before = snapshot(lake)
    monkeypatch.setattr(releases, "manifests", lambda _lake, _day: [])
    add_part(lake, "b", people(12, 12))          # more rows: its release 1 would differ
    second = release_night(lake, policy, night(4), run_id="second")
    assert second.released == () and second.already_released == 1
    assert snapshot(lake) == before


# ---------------------------------------------------------------- late rows

def test_late_rows_wait_until_they_pass_k_then_make_one_late_release(lake, policy):
    add_part(lake, "a", people(0, 12))
    release_night(lake, policy, night(3), run_id="n3")
    day_release = snapshot(lake)

    add_part(lake, "b", people(100, 4))        # 4 late subscribers: alone, below k
    done = release_night(lake, policy, night(4), run_id="n4")
    assert done.released == ()
    assert [(w.reason, w.parts, w.rows) for w in done.waiting] == [(BELOW_K, 1, 4)]
    assert snapshot(lake) == day_release and not release_folder(lake, D, 2).exists()

    add_part(lake, "c", people(104, 7))        # 4 + 7 = 11 late subscribers in one cell: passes k
    (late,) = release_night(lake, policy, night(5), run_id="n5").released
    assert (late.manifest.release, late.manifest.kind, late.manifest.parts, late.manifest.rows) == (
        2, LATE, ("part-b.parquet", "part-c.parquet"), 11)
    assert late.late_rows_pending == 0 and all(t.cells_released == 1 for t in late.result.tables)
    assert {k: v for k, v in snapshot(lake).items() if "release=1" in k} == day_release   # untouched

    add_part(lake, "d", people(200, 2))
    done = release_night(lake, policy, night(6), run_id="n6")
    assert done.released == () and [(w.reason, w.rows) for w in done.waiting] == [(BELOW_K, 2)]
    assert [m.release for m in manifests(lake, D)] == [1, 2]


def test_a_day_that_would_release_nothing_waits_whole(lake, policy):
    add_part(lake, "a", people(0, 4))                          # 4 subscribers: every figure suppressed
    done = release_night(lake, policy, night(3), run_id="r")
    assert done.released == () and [(w.reason, w.rows) for w in done.waiting] == [(BELOW_K, 4)]
    assert snapshot(lake) == {}
    add_part(lake, "b", people(4, 8))                          # nothing was released: no version to subtract
    (made,) = release_night(lake, policy, night(4), run_id="r").released
    assert (made.manifest.release, made.manifest.kind, made.manifest.rows) == (1, DAY, 12)


def test_the_sweep_releases_a_day_never_released_and_leaves_a_released_one(lake, policy):
    add_part(lake, "a", people(0, 12))
    made = ensure_released(lake, policy, D, run_id="retention-x")
    assert (made.manifest.release, made.manifest.kind) == (1, DAY)
    before = snapshot(lake)
    add_part(lake, "b", people(50, 12))
    assert ensure_released(lake, policy, D, run_id="retention-x") is None
    assert snapshot(lake) == before


def test_a_sweep_release_is_reported_to_the_next_night_after_its_day_left_the_analytics_zone(lake, policy):
    # The sweep releases a day and then deletes its analytics rows (category analytics_pseudonymized goes with
    # its source rows). The next night's run has no analytics part of the day left, and must still report the
    # release as standing, or no audit row would ever say it was made.
    part = add_part(lake, "a", people(0, 12))
    made = ensure_released(lake, policy, D, run_id="retention-x")
    part.unlink()
    later = release_night(lake, policy, night(400), run_id="n400")
    assert later.released == () and later.waiting == ()
    assert later.standing == (made.manifest,) and later.standing[0].run_id == "retention-x"


# ---------------------------------------------------------------- the attacks, over several nights

DAYS = ("2026-11-10", "2026-11-11")
NIGHTS = {   # night offset from D: parts landing that night, for D and the day after it
    0: [("a", D, people(0, 9) + people(0, 3, hour=11)), ("e", "2026-11-11", people(300, 12, day="2026-11-11"))],
    1: [("b", D, people(9, 4) + people(50, 2, hour=12))],
    3: [("c", D, people(13, 2, service="sms"))],
    4: [("f", D, people(60, 6) + people(60, 2, hour=11, service="sms"))],
    5: [("g", "2026-11-11", people(400, 5, day="2026-11-11"))],
    6: [("h", D, people(66, 6) + people(70, 9, hour=11, service="sms"))],
    7: [("i", "2026-11-11", people(405, 6, day="2026-11-11"))],
    9: [],
}


def run_nights(lake: Lake, policy) -> list[dict[str, str]]:
    """Every night of NIGHTS through release_night; the zone's snapshot after each."""
    snaps = []
    for offset, parts in NIGHTS.items():
        for name, day, rows in parts:
            add_part(lake, name, rows, day)
        release_night(lake, policy, night(offset), run_id=f"n{offset}")
        snaps.append(snapshot(lake))
    return snaps


def test_over_several_nights_no_release_changes_and_no_late_figure_is_under_k(lake, policy):
    snaps = run_nights(lake, policy)
    kinds = [(m.event_date, m.release, m.kind) for d in ("2026-11-10", "2026-11-11") for m in manifests(lake, d)]
    assert ("2026-11-10", 2, LATE) in kinds and ("2026-11-11", 2, LATE) in kinds   # the scenario has late ones
    assert_released_once(lake, snaps, DAYS)
    assert recount(lake, policy, DAYS) == []


def test_mutation_rewriting_releases_is_caught(lake, policy, monkeypatch):
    # The no-replace rule switched off: every night re-releases each day from all its parts, over the old.
    monkeypatch.setattr(releases, "commit_new_folder", commit_folder)
    monkeypatch.setattr(releases, "manifests", lambda _lake, _day: [])
    snaps = run_nights(lake, policy)
    with pytest.raises(AssertionError, match="changed after it was released"):
        assert_released_once(lake, snaps, DAYS)


def test_mutation_a_late_release_without_its_own_suppression_is_caught(lake, policy, monkeypatch):
    # The late release's own k switched off (released at k=2, the least suppress() takes, as if the day's
    # release covered it).
    real = releases._release

    def unsuppressed(lake, policy, day, number, kind, *rest):
        return real(lake, dataclasses.replace(policy, k_anonymity=2) if kind == LATE else policy, day, number,
                    kind, *rest)

    monkeypatch.setattr(releases, "_release", unsuppressed)
    run_nights(lake, policy)
    assert recount(lake, policy, DAYS) != []


def test_a_run_killed_while_making_a_release_leaves_nothing_open_and_the_next_run_releases_the_same(tmp_path,
                                                                                                   policy):
    # kill -9 while the day is aggregated: the parts' links are left behind. A link shares its part's mode (the
    # analytics zone's, group-readable), so they are left in the analytics zone, never in the owner-only work
    # zone, where the next run's permission check would refuse the lake. Recovery removes them.
    import os
    import subprocess
    import sys

    from transforms.lake.permissions import apply_lake, check_lake, prepare_lake
    from transforms.runs.recovery import recover

    lakes = {}
    for name in ("killed", "clean"):
        lakes[name] = Lake.at(tmp_path / name)
        prepare_lake(lakes[name], policy.access)
        add_part(lakes[name], "a", people(0, 12))
        apply_lake(lakes[name], policy.access)
    release_night(lakes["clean"], policy, night(3), run_id="r")
    killer = ("import os, signal, sys; from datetime import date; from transforms.lake import Lake;"
              " from transforms.policy import load_policy; from transforms.privacy import releases;"
              " releases.aggregate_day = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL);"
              " releases.release_night(Lake.at(sys.argv[1]), load_policy(), date(2026, 11, 13), run_id='dead')")
    repo = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", killer, str(lakes["killed"].root)], cwd=repo,
                          env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True)
    assert done.returncode == -9, done.stderr[-2000:]
    killed = lakes["killed"]
    assert [p.name for p in killed.release_snapshot_dir("dead").rglob("*.parquet")] == ["part-a.parquet"]
    assert check_lake(killed, policy.access).ok
    recover(killed, actor="test")
    assert not any(killed.release_snapshots.iterdir())
    release_night(killed, policy, night(3), run_id="r")
    assert snapshot(killed) == {k.replace("/clean/", "/killed/"): v for k, v in snapshot(lakes["clean"]).items()}
