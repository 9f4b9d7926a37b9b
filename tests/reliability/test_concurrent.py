"""Two and three `cdr-audit run` processes of the same night, landing and lake started at once.

Issue 14 item 2 (docs/design.md §10): a run holds a lease on (lake, night); a second run of the night exits
6 naming the holder ("night N is being worked on by run X (pid P on host H) since T"), or with `--wait SECONDS` waits for the lease and then runs, finding every file
already audited (`known`). Run ids are unique per process. Either way the lake ends as one clean run leaves
it: no row lost or doubled, each file audited exactly once.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.reliability.harness import (EXIT_NIGHT_LEASED, EXIT_OK, compare_lakes, dict_rows, start_run,
                                       staged_leftovers)

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

LEASED = re.compile(r"night \d{4}-\d\d-\d\d is being worked on by run \S+ \(pid \d+ on host \S+\) since \S+")


def run_at_once(landing: Path, lake: Path, n: int, *extra: str) -> list[tuple[int, str]]:
    procs = [start_run(landing, lake, *extra) for _ in range(n)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=900)
        out.append((p.returncode, stdout + stderr))
    return out


def audited_once(lake: Path) -> list[str]:
    """Each file has exactly one row not `known` across all runs, and that run completed."""
    rows = dict_rows(lake, "SELECT s.file_name, s.status, r.status AS run_status FROM source_files s"
                           " JOIN runs r USING (run_id)")
    per_file = Counter(r["file_name"] for r in rows if r["status"] != "known")
    problems = [f"{name}: audited {n} times" for name, n in per_file.items() if n != 1]
    problems += [f"{r['file_name']}: recorded by a run that is {r['run_status']}" for r in rows
                 if r["status"] != "known" and r["run_status"] != "completed"]
    return problems


@pytest.mark.parametrize("n", [2, 3])
def test_runs_of_a_leased_night_exit_6_naming_the_holder(n, small_night, reference, tmp_path):
    ref_lake, _ = reference
    t = time.monotonic()
    results = run_at_once(small_night, tmp_path / "lake", n)
    print(f"\n{n} runs at once, no --wait: {time.monotonic() - t:.0f} s, exits {[c for c, _ in results]}")
    codes = Counter(c for c, _ in results)
    assert codes == {EXIT_OK: 1, EXIT_NIGHT_LEASED: n - 1}, results
    for code, console in results:
        assert "Traceback" not in console, console
        if code == EXIT_NIGHT_LEASED:
            assert LEASED.search(console), console
    assert compare_lakes(tmp_path / "lake", ref_lake) == []
    assert audited_once(tmp_path / "lake") == []
    assert staged_leftovers(tmp_path / "lake") == []


@pytest.mark.parametrize("n", [2, 3])
def test_runs_that_wait_for_the_lease_all_complete_and_audit_each_file_once(n, small_night, reference, tmp_path):
    ref_lake, _ = reference
    t = time.monotonic()
    results = run_at_once(small_night, tmp_path / "lake", n, "--wait", "600")
    print(f"\n{n} runs at once, --wait 600: {time.monotonic() - t:.0f} s, exits {[c for c, _ in results]}")
    assert [c for c, _ in results] == [EXIT_OK] * n, results
    assert not any("Traceback" in console for _, console in results)
    runs = dict_rows(tmp_path / "lake", "SELECT run_id, status FROM runs")
    assert len({r["run_id"] for r in runs}) == n and {r["status"] for r in runs} == {"completed"}, runs
    assert compare_lakes(tmp_path / "lake", ref_lake) == []
    assert audited_once(tmp_path / "lake") == []
    assert staged_leftovers(tmp_path / "lake") == []
