"""kill -9 at seeded random moments, then a normal re-run: the lake must be what one clean run makes.

A moment is a progress line of the run's stderr (plan, each file's steps, aggregates, roaming — the clean
reference run counts them) plus a random delay after it, so kills land in every stage and in close, which
prints nothing until it is done. The runs audit the night the day's release window closes (`RUN_NIGHT`), so
each run releases the day too: a release is made once and recorded once, whatever run was killed after it.
docs/design.md §2 (every write staged and renamed into view) and §6 (the per-file steps leave fragments, close
merges them in one transaction) are what make this hold.
"""

from __future__ import annotations

import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.harness import (NIGHT, SCALE, SEED, WORKERS, Run, compare_lakes, dict_rows, run_cli,
                                       staged_leftovers, start_run, verify_chain)

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

KILLS = 10 * SCALE


@dataclass
class Kill:
    index: int
    seed: int
    after_line: int            # killed this long after the n-th progress line
    delay: float
    lake: Path
    killed: bool = False       # False: the run ended before the signal
    run_id: str | None = None
    last_line: str = ""
    rerun: Run | None = None

    def where(self) -> str:
        return (f"kill {self.index} (seed {self.seed}: {self.delay:.2f} s after progress line {self.after_line},"
                f" last line seen {self.last_line!r}; session CDR_AUDIT_RELIABILITY_SEED={SEED}; lake {self.lake})")


def kill_and_rerun(k: Kill, landing: Path) -> Kill:
    proc = start_run(landing, k.lake, quiet=False)
    seen = 0
    if k.after_line:
        for line in proc.stderr:
            seen += 1
            k.last_line = line.strip()
            if k.run_id is None and "; run " in line:
                k.run_id = line.rsplit("; run ", 1)[1].strip()
            if seen >= k.after_line:
                break
    time.sleep(k.delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        k.killed = True
    proc.communicate(timeout=600)
    k.rerun = run_cli(landing, k.lake)
    return k


def planned_kill(i: int, lines: int, root: Path) -> Kill:
    seed = SEED * 100 + i
    rng = random.Random(seed)
    # Line 0: during start-up and the plan; `lines`: after the last progress line, i.e. in close. The last
    # lines (roaming, then close) take well under a second on a small night: shorter delays there.
    line = rng.randint(0, lines)
    delay = rng.uniform(0.0, 0.4) if line >= lines - 3 else rng.uniform(0.0, 1.5)
    return Kill(i, seed, line, delay, root / f"k{i}" / "lake")


@pytest.fixture(scope="module")
def kills(small_night, reference, tmp_path_factory) -> list[Kill]:
    _, ref_run = reference
    lines = len(ref_run.stderr.splitlines())
    root = tmp_path_factory.mktemp("rel_kills")
    t = time.monotonic()
    done: list[Kill] = []
    with ThreadPoolExecutor(WORKERS) as pool:
        # A run may end before its signal lands: further seeded moments until KILLS have (at most 2 × KILLS).
        while sum(k.killed for k in done) < KILLS and len(done) < 2 * KILLS:
            missing = KILLS - sum(k.killed for k in done)
            batch = [planned_kill(len(done) + j, lines, root) for j in range(missing)]
            done += list(pool.map(lambda k: kill_and_rerun(k, small_night), batch))
    print(f"\n{sum(k.killed for k in done)} of {len(done)} runs killed, each re-run:"
          f" {time.monotonic() - t:.0f} s; moments (line/{lines}, delay): "
          + ", ".join(f"{k.after_line}+{k.delay:.1f}s" for k in done))
    return done


def test_the_reference_run_released_the_day(reference):
    ref_lake, _ = reference
    releases = dict_rows(ref_lake, "SELECT event_date, release_number, count(*) AS tables FROM aggregate_releases"
                                   " GROUP BY ALL ORDER BY ALL")
    assert (ref_lake / "aggregates" / f"event_date={NIGHT}" / "release=1" / "_release.json").is_file()
    assert any(str(r["event_date"]) == NIGHT and r["release_number"] == 1 for r in releases), releases


def test_enough_runs_were_killed(kills):
    assert sum(k.killed for k in kills) >= KILLS, [k.where() for k in kills if not k.killed]


def test_the_rerun_completes_and_the_lake_equals_a_clean_runs(kills, reference):
    ref_lake, _ = reference
    problems = []
    for k in kills:
        if k.rerun.returncode != 0 or "Traceback" in k.rerun.console:
            problems.append(f"re-run exit {k.rerun.returncode}: {k.rerun.console[-1500:]} — {k.where()}")
            continue
        problems += [f"{p} — {k.where()}" for p in compare_lakes(k.lake, ref_lake)]
        verify = verify_chain(k.lake)
        if verify.returncode != 0:
            problems.append(f"audit-log chain: {verify.console[-500:]} — {k.where()}")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:30])


# Recovery of a killed run (docs/design.md §10): the next run of the night marks a run it finds `running`
# without a live holder `abandoned`, with the reason and an audit-log event, and clears what it staged.
def test_the_killed_run_is_abandoned_and_nothing_staged_is_left(kills):
    problems = []
    for k in kills:
        if k.rerun.returncode != 0:
            continue            # the test above reports it
        left = staged_leftovers(k.lake)
        if left:
            problems.append(f"staged files left after the re-run: {left[:5]} — {k.where()}")
        runs = dict_rows(k.lake, "SELECT run_id, status FROM runs")
        stuck = [r["run_id"] for r in runs if r["status"] == "running"]
        if stuck:
            problems.append(f"run(s) {stuck} left `running` — {k.where()}")
        for r in runs:
            if r["status"] != "abandoned":
                continue
            events = dict_rows(k.lake, "SELECT action FROM audit_log WHERE target = ?", [r["run_id"]])
            if not any(e["action"] == "run_abandoned" for e in events):
                problems.append(f"run {r['run_id']} abandoned without an audit-log event — {k.where()}")
            row = dict_rows(k.lake, "SELECT * FROM runs WHERE run_id = ?", [r["run_id"]])[0]
            if not any("reason" in c and v for c, v in row.items()):
                problems.append(f"run {r['run_id']} abandoned with no reason recorded — {k.where()}")
        killed_during_run = k.killed and k.run_id and any(r["run_id"] == k.run_id for r in runs)
        if killed_during_run:
            status = next(r["status"] for r in runs if r["run_id"] == k.run_id)
            if status not in ("abandoned", "completed", "completed_with_errors"):
                problems.append(f"killed run {k.run_id} is {status!r}, not abandoned — {k.where()}")
    assert any(k.killed and k.run_id for k in kills), "no kill landed while a run was open"
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:30])
