"""The DuckDB floor: the cheapest possible "read every landing file, write Parquet".

    python -m benchmarks.floor LANDING OUTDIR --json FILE

For each landing file, in name order, in this one process:

* CSV:     COPY (SELECT * FROM read_csv(f, all_varchar = true, ignore_errors = true)) TO 'x.parquet' (FORMAT parquet)
* Parquet: COPY (SELECT * FROM read_parquet(f)) TO 'x.parquet' (FORMAT parquet)

with the pipeline's DuckDB limits (transforms/lake/connection.py: threads 2, memory_limit
768MB, preserve_insertion_order, a temp directory). CSVs are read with
`ignore_errors = true` from the start: the generator injects malformed rows,
the plain reader would stop at the first, and a refused attempt plus a retry
would make the floor slower than it is (and our ratio look better than it is).
Empty files are skipped. Per-file seconds go to the JSON
file; run.py measures the whole process (wall, peak RSS) from outside.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import duckdb

from transforms.lake.connection import DUCKDB_MEMORY, DUCKDB_THREADS


def floor_connection(temp_dir: Path) -> duckdb.DuckDBPyConnection:
    """A plain DuckDB connection with the pipeline's limits (threads, memory_limit, insertion order, UTC)."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {DUCKDB_THREADS}")
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET temp_directory = $d", {"d": str(temp_dir)})
    return con


def source_of(path: Path) -> tuple[str, str]:
    """The floor's reader of one landing file: (its name in the JSON, the SQL source over `$src`)."""
    with open(path, "rb") as fh:
        if fh.read(4) == b"PAR1":
            return "read_parquet", "read_parquet($src)"
    return "read_csv all_varchar ignore_errors", "read_csv($src, all_varchar = true, ignore_errors = true)"


def copy_to_parquet(con: duckdb.DuckDBPyConnection, path: Path, dst: Path) -> tuple[int, str]:
    """The floor of one file: its rows copied to the Parquet file `dst`; (rows, the reader's name)."""
    name, source = source_of(path)
    rows = con.execute(f"COPY (SELECT * FROM {source}) TO $dst (FORMAT parquet)",
                       {"src": str(path), "dst": str(dst)}).fetchone()[0]
    return rows, name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__.split("\n\n")[0])
    ap.add_argument("landing", type=Path)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--json", type=Path, required=True, help="write per-file timings here")
    args = ap.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    con = floor_connection(args.outdir / "tmp")
    files = []
    for i, path in enumerate(sorted(p for p in args.landing.iterdir() if p.is_file())):
        size = path.stat().st_size
        entry = {"file": path.name, "bytes": size, "variant": None, "rows": 0, "seconds": 0.0, "error": None}
        files.append(entry)
        if size == 0:
            entry["variant"] = "skipped (empty)"
            continue
        entry["failed_attempt_seconds"] = 0.0
        t0 = time.perf_counter()
        try:
            entry["rows"], entry["variant"] = copy_to_parquet(con, path, args.outdir / f"{i:02d}.parquet")
            entry["seconds"] = round(time.perf_counter() - t0, 3)
        except duckdb.Error as exc:
            entry["failed_attempt_seconds"] += round(time.perf_counter() - t0, 3)
            entry["variant"] = source_of(path)[0]
            entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    con.close()
    args.json.write_text(json.dumps(files, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
