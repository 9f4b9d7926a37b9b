"""Two runs of one night at once: one runs, the other is refused (exit 6) or waits; nothing is doubled."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import BIN, NIGHT, audit_rows

pytestmark = pytest.mark.slow


def _start(landing, lake, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "cdr-audit"), "run", "--landing", str(landing), "--lake", str(lake),
                             "--date", NIGHT, "--quiet", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _finish(procs):
    return [(p.wait(timeout=600), *p.communicate()) for p in procs]


def test_a_second_run_of_the_night_is_refused_and_names_the_first(night, tmp_path):
    landing, _ = night
    lake = tmp_path / "lake"
    done = _finish([_start(landing, lake), _start(landing, lake)])
    assert sorted(code for code, _, _ in done) == [0, 6], [err[-500:] for _, _, err in done]
    refused = next(err for code, _, err in done if code == 6)
    assert "night 2026-11-22 is being worked on by run cli__2026-11-22__" in refused and "Traceback" not in refused
    assert audit_rows(lake, "SELECT count(*), min(status) FROM runs") == [(1, "completed")]


def test_runs_that_wait_find_the_night_audited_once(night, cli_run, tmp_path):
    landing, manifest = night
    lake = tmp_path / "lake"
    done = _finish([_start(landing, lake, "--wait", "600") for _ in range(2)])
    assert [code for code, _, _ in done] == [0, 0], [err[-500:] for _, _, err in done]
    # Each file audited by exactly one run; the other found its bytes known.
    audited = audit_rows(lake, "SELECT sha256, count(*) FROM source_files WHERE status NOT IN ('known', 'ignored', 'duplicate_file')"
                               " GROUP BY sha256 HAVING count(*) > 1")
    assert audited == []
    assert audit_rows(lake, "SELECT sum(rows_loaded) FROM source_files") == audit_rows(
        cli_run.lake, "SELECT sum(rows_loaded) FROM source_files WHERE run_id = (SELECT min(run_id) FROM runs)")
