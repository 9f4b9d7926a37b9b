"""Shared fixtures: a generated night, and the CLI run over it (once per session)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NIGHT = "2026-11-22"

# Airflow reads these at import; tests that start Airflow use their own AIRFLOW_HOME.
os.environ.setdefault("AIRFLOW_HOME", str(REPO / "airflow_home"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))


@pytest.fixture(autouse=True)
def _umask_restored():
    """The CLI's entry point makes its process owner-only (umask 077); a test that calls it in-process must not
    hand that umask to the tests after it, or a test passes in the suite and fails alone."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# Tests pseudonymize with the built-in demo key, which a run refuses unless told it is a demo.
os.environ.setdefault("CDR_AUDIT_DEMO_MODE", "1")


def pytest_sessionfinish(session, exitstatus):
    session.config._cdr_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End after pytest's summary, skipping teardown noise from DuckDB's binding (see transforms/cli.py)."""
    if hasattr(config, "_cdr_exitstatus") and os.environ.get("CDR_AUDIT_QUIET_EXIT", "1") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config._cdr_exitstatus)


@dataclass(frozen=True)
class CliRun:
    lake: Path
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, timeout: int = 600) -> CliRun:
    proc = subprocess.run([str(BIN / "cdr-audit"), *args], capture_output=True, text=True, timeout=timeout)
    lake = Path(args[args.index("--lake") + 1]) if "--lake" in args else Path()
    return CliRun(lake, proc.returncode, proc.stdout, proc.stderr)


def audit_rows(lake: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of a query against a lake's audit store, opened read-only."""
    import duckdb

    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def zone_rows(lake: Path, zone: str, sql: str) -> list[tuple]:
    """Rows of `sql` over every Parquet file of a lake zone, exposed as view `t` (hive columns included)."""
    import duckdb

    files = [str(p) for p in (lake / zone).rglob("*.parquet")]
    if not files:
        return []
    con = duckdb.connect()
    try:
        con.execute("CREATE VIEW t AS SELECT * FROM read_parquet(?, hive_partitioning = true, union_by_name = true)"
                    .replace("?", "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"))
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="session")
def night(tmp_path_factory):
    """A generated night with every defect kind: (landing folder, manifest)."""
    from sample_data.generate import generate_night

    landing = tmp_path_factory.mktemp("landing") / NIGHT
    manifest = generate_night(landing, rows=3000, seed=11, night=date.fromisoformat(NIGHT))
    return landing, manifest


@pytest.fixture(scope="session")
def cli_run(night, tmp_path_factory) -> CliRun:
    """The CLI pipeline run once over the generated night."""
    landing, _ = night
    lake = tmp_path_factory.mktemp("lake")
    run = run_cli("run", "--landing", str(landing), "--lake", str(lake), "--date", NIGHT)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.fixture(scope="session")
def released_run(cli_run, tmp_path_factory) -> CliRun:
    """A copy of `cli_run`'s lake, then the run of the night the generated days' release window closes
    (policy aggregate_release: 3 days after NIGHT), with nothing new landed: it releases them."""
    import shutil

    from transforms.policy import load_policy

    root = tmp_path_factory.mktemp("released")
    lake, empty = root / "lake", root / "landing"
    shutil.copytree(cli_run.lake, lake, symlinks=True)
    empty.mkdir()
    closes = load_policy().aggregate_release.window_closes_on(date.fromisoformat(NIGHT))
    run = run_cli("run", "--landing", str(empty), "--lake", str(lake), "--date", closes.isoformat())
    # The night completes and says that nothing landed (exit 8, docs/design.md §9); its releases are made all the same.
    assert run.returncode == 8 and "nothing landed for night" in run.stderr, run.stderr[-3000:]
    return run


# Five nights a month apart, same subscribers: enough history for a four-month roaming window.
HISTORY_NIGHTS = ("2026-07-10", "2026-08-10", "2026-09-10", "2026-10-10", "2026-11-22")


@dataclass(frozen=True)
class History:
    lake: Path
    landings: dict[str, Path]
    manifests: dict
    runs: dict[str, CliRun]


@pytest.fixture(scope="session")
def history(tmp_path_factory) -> History:
    """A lake the CLI filled night by night over five months (tests that change it work on a copy)."""
    from sample_data.generate import generate_night

    root = tmp_path_factory.mktemp("history")
    lake, landings, manifests, runs = root / "lake", {}, {}, {}
    for night in HISTORY_NIGHTS:
        landings[night] = root / night
        manifests[night] = generate_night(landings[night], rows=600, seed=21, night=date.fromisoformat(night))
        runs[night] = run_cli("run", "--landing", str(landings[night]), "--lake", str(lake), "--date", night)
        assert runs[night].returncode == 0, runs[night].stderr[-3000:]
    return History(lake, landings, manifests, runs)
