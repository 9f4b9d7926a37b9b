"""Running the real CLI for the reliability suite, and reading what a run left behind.

No mocks: `python -m transforms.entry.cli run` in a subprocess (this checkout's code, whatever is installed),
the real DuckDB audit store and the real Parquet zones (docs/design.md §2, §6).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb

from benchmarks.run import releasing_night

REPO = Path(__file__).resolve().parents[2]
NIGHT = "2026-11-22"            # the generated night: the day the landing files' records are of

# The night the runs audit: the day's release window closes then (policy aggregate_release), so every run also
# releases the day, and a kill can land between the release and the close (docs/design.md §4).
RUN_NIGHT = releasing_night(NIGHT)
# The size: 1 in CI (`make test`), larger with `make reliability` (same code, more nights, files and kills).
SCALE = max(1, int(os.environ.get("CDR_AUDIT_RELIABILITY_SCALE", "1")))
# One seed for the whole session; every night, mutation and kill moment is derived from it.
SEED = int(os.environ.get("CDR_AUDIT_RELIABILITY_SEED", "14"))
WORKERS = max(1, min(2, os.cpu_count() or 1))

# The exit codes `cdr-audit run` documents (transforms/entry/commands.py, README "Exit codes").
EXIT_OK, EXIT_FILE_ERRORS, EXIT_NIGHT_LEASED = 0, 3, 6


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CDR_AUDIT_DEMO_MODE"] = "1"          # the built-in demo key (README "Keys")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def cli_argv(*args: str | os.PathLike) -> list[str]:
    return [sys.executable, "-m", "transforms.entry.cli", *map(str, args)]


@dataclass
class Run:
    args: tuple
    returncode: int
    stdout: str
    stderr: str
    seconds: float = 0.0

    @property
    def console(self) -> str:
        return self.stdout + self.stderr


def start_run(landing: Path, lake: Path, *extra: str, quiet: bool = True) -> subprocess.Popen:
    args = ["run", "--landing", landing, "--lake", lake, "--date", RUN_NIGHT, *extra] + (["--quiet"] if quiet else [])
    return subprocess.Popen(cli_argv(*args), cwd=REPO, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace")


def run_cli(landing: Path, lake: Path, *extra: str, timeout: int = 900, quiet: bool = True) -> Run:
    import time

    t = time.monotonic()
    proc = start_run(landing, lake, *extra, quiet=quiet)
    out, err = proc.communicate(timeout=timeout)
    return Run((landing, lake, *extra), proc.returncode, out, err, time.monotonic() - t)


def run_many(jobs: list[tuple[Path, Path]], timeout: int = 900) -> list[Run]:
    """Independent runs (each its own lake), WORKERS at a time: the machine's cores, not more."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(lambda j: run_cli(j[0], j[1], timeout=timeout), jobs))


def query(lake: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def dict_rows(lake: Path, sql: str, params: list | None = None) -> list[dict]:
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    try:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()


ZONES = ("billing", "invoices", "quarantine", "analytics", "aggregates", "roaming", "marketing", "consents")


def zone_files(lake: Path, zone: str) -> list[str]:
    return sorted(str(p) for p in (lake / zone).rglob("*.parquet") if "/_" not in str(p.relative_to(lake)))


def zone_count_by_sha(lake: Path, zone: str) -> Counter:
    files = zone_files(lake, zone)
    if not files:
        return Counter()
    rows = duckdb.execute("SELECT source_file_sha256, count(*) FROM read_parquet(?, union_by_name = true)"
                          " GROUP BY ALL", [files]).fetchall()
    return Counter(dict(rows))


# Columns that differ between two runs of the same bytes by design: the lineage run id (docs/audit_schema.md
# "the run that recorded the row") and wall-clock times. Everything else must be equal.
RUN_COLUMNS = {"run_id", "processed_at", "started_at", "finished_at", "logged_at", "checked_at", "placed_at",
               "released_at", "assessed_at", "created_at"}


def zone_multiset(lake: Path, zone: str) -> Counter:
    """A zone's rows as a multiset, per-run columns aside, hive partition columns included (a row in the wrong
    partition is a different row)."""
    files = zone_files(lake, zone)
    if not files:
        return Counter()
    con = duckdb.connect()
    try:
        rel = con.execute("SELECT * FROM read_parquet(?, hive_partitioning = true, union_by_name = true) LIMIT 0",
                          [files])
        cols = [d[0] for d in rel.description if d[0] not in RUN_COLUMNS]
        sql = ("SELECT " + ", ".join(f'"{c}"::VARCHAR' for c in cols)
               + " FROM read_parquet(?, hive_partitioning = true, union_by_name = true)")
        return Counter(con.execute(sql, [files]).fetchall())
    finally:
        con.close()


def table_multiset(lake: Path, table: str, where: str = "", params: list | None = None,
                   drop: frozenset = frozenset()) -> Counter:
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    try:
        cols = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?"
                                          " ORDER BY ordinal_position", [table]).fetchall()]
        keep = [c for c in cols if c not in RUN_COLUMNS and c not in drop]
        sql = f"SELECT {', '.join(chr(34) + c + chr(34) for c in keep)} FROM {table} {where}"
        return Counter(con.execute(sql, params or []).fetchall())
    finally:
        con.close()


def diff(a: Counter, b: Counter, limit: int = 3) -> str:
    only_a, only_b = a - b, b - a
    return (f"{sum(only_a.values())} row(s) only in the first, {sum(only_b.values())} only in the second;"
            f" e.g. {list(only_a)[:limit]} / {list(only_b)[:limit]}")


# Audit tables with one row per file fact (docs/audit_schema.md): across the completed runs of a lake they must
# equal a clean run's, whichever run recorded them. Per-run tables are compared as sets.
FILE_TABLES = ("field_findings", "validation_results", "rejection_reasons", "pseudonymization_log",
               "analytics_findings")
RUN_TABLES = ("aggregate_releases", "aggregate_waiting", "roaming_runs", "marketing_profiles")
COMPLETED = "WHERE run_id IN (SELECT run_id FROM runs WHERE status = 'completed')"


def compare_lakes(lake: Path, reference: Path) -> list[str]:
    """Every zone as a multiset of rows and every audit table of the completed runs, against a clean run's lake.

    source_files: the rows of the files audited (not `known`: a later run's note that it found them done).
    """
    problems = []
    for zone in ZONES:
        a, b = zone_multiset(lake, zone), zone_multiset(reference, zone)
        if a != b:
            problems.append(f"zone {zone}: {diff(a, b)}")
    sf = COMPLETED + " AND status <> 'known'"
    a, b = table_multiset(lake, "source_files", sf), table_multiset(reference, "source_files", sf)
    if a != b:
        problems.append(f"source_files: {diff(a, b)}")
    for table in FILE_TABLES:
        a, b = table_multiset(lake, table, COMPLETED), table_multiset(reference, table, COMPLETED)
        if a != b:
            problems.append(f"{table}: {diff(a, b)}")
    for table in RUN_TABLES:
        a, b = set(table_multiset(lake, table, COMPLETED)), set(table_multiset(reference, table, COMPLETED))
        if a != b:
            problems.append(f"{table}: {diff(Counter(a), Counter(b))}")
    return problems


def staged_leftovers(lake: Path) -> list[str]:
    """Anything staged and never committed or cleaned: LAKE/_work/, LAKE/audit/_pending/ and a release's links
    (LAKE/analytics/.releasing/) must be empty once a run has closed (docs/design.md §2: staged beside the
    target, renamed into view)."""
    out = []
    for d in (lake / "_work", lake / "audit" / "_pending", lake / "analytics" / ".releasing"):
        if d.exists():
            out += [str(p.relative_to(lake)) for p in d.rglob("*")]
    # A folder commit stages beside its target (transforms/lake/commit.py: .staging-…, .replaced-…).
    out += [str(p.relative_to(lake)) for p in lake.rglob(".staging-*")]
    out += [str(p.relative_to(lake)) for p in lake.rglob(".replaced-*")]
    return out


def verify_chain(lake: Path) -> Run:
    proc = subprocess.run(cli_argv("verify", "--lake", lake), cwd=REPO, env=cli_env(), capture_output=True,
                          text=True, timeout=300)
    return Run(("verify", lake), proc.returncode, proc.stdout, proc.stderr)
