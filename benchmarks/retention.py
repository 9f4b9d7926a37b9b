"""How long does the retention sweep take on a big lake?

    .venv/bin/python -m benchmarks.retention [--lake DIR | --rows N] [--as-of DATE] [--keep]

Takes a lake the pipeline made (``--lake``, e.g. ``benchmarks/out/scratch-10000000/lake`` left by
``python -m benchmarks.run --rows 10000000 --keep``), or makes one (``--rows``: generate a night,
``cdr-audit run``), copies it to a scratch folder, places a legal hold on one subscriber, and times
``cdr-audit retention`` twice from outside (wall seconds, peak RSS):

1. ``--dry-run`` as of ``--as-of`` (default 2028-01-05, when a November 2026 night's CDRs are due):
   every row read and given its due date and holds, nothing written;
2. the real sweep: every billing, analytics and quarantine file rewritten without its due rows (the
   held subscriber's rows stay), emptied files removed, the proof pass over every rewritten file.

Prints rows in the lake, rows removed, seconds and rows/s; writes ``OUT/retention-<rows>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.run import REPO, cli_path, measured

# The sweep's progress lines (transforms/retention/sweep.py, plan.py) mark where each phase starts: the RSS
# sampler's label moves on with them, so each phase's peak is its own.
PHASES = (("reading ", "plan: every file's subject keys, due dates, holds"),
          ("anonymize: ", "anonymize: aggregates made before rows go"),
          ("[1/", "rewrite: each file without its due rows"),
          ("proving ", "proof: each rewritten file re-read"),
          ("proof: ", "record: audit store, exports, exit"))


def phase_labels(line: str, sampler) -> None:
    text = line.split("] ", 1)[-1] if line.startswith("[") and "s] " in line[:12] else line
    for start, label in PHASES:
        if text.startswith(start) and sampler.label != label and (start != "reading " or sampler.label is None):
            sampler.label = label


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.retention", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--lake", type=Path, help="an existing lake (copied, never changed)")
    src.add_argument("--rows", type=int, help="generate a night of N rows and run the pipeline first")
    ap.add_argument("--as-of", default="2028-01-05")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    ap.add_argument("--keep", action="store_true", help="keep the scratch lake")
    args = ap.parse_args(argv)
    env = {**os.environ, "CDR_AUDIT_DEMO_MODE": "1"}
    scratch = args.out / "retention-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    lake = scratch / "lake"
    if args.lake:
        print(f"copying {args.lake} …", flush=True)
        shutil.copytree(args.lake, lake, ignore=shutil.ignore_patterns("_work"))
    else:
        landing = scratch / "landing"
        subprocess.run([sys.executable, "-m", "sample_data.generate", "--rows", str(args.rows), "--out", str(landing),
                        "--seed", "7", "--quiet"], check=True, cwd=REPO)
        subprocess.run([cli_path(), "run", "--landing", str(landing), "--lake", str(lake), "--date", "2026-11-22",
                        "--demo", "--quiet"], check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    import duckdb

    billing = [str(p) for p in (lake / "billing").rglob("*.parquet")]
    con = duckdb.connect()
    rows = sum(con.execute("SELECT count(*) FROM read_parquet(?, union_by_name = true)",
                           [[str(p) for p in (lake / z).rglob("*.parquet")]]).fetchone()[0]
               for z in ("billing", "analytics", "quarantine") if list((lake / z).rglob("*.parquet")))
    held_number = con.execute("SELECT origin_number FROM read_parquet(?, union_by_name = true) WHERE direction ="
                              " 'outgoing' AND origin_number IS NOT NULL LIMIT 1", [billing]).fetchone()[0]
    con.close()
    subprocess.run([cli_path(), "hold", "place", "--lake", str(lake), "--reason", "benchmark hold", "--by", "bench",
                    "--subscriber", held_number, "--demo"], check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = {"rows_in_lake": rows, "as_of": args.as_of}
    for name, extra in (("dry_run", ["--dry-run"]), ("sweep", [])):
        m = measured([cli_path(), "retention", "--lake", str(lake), "--as-of", args.as_of, "--demo", *extra],
                     stdout_path=logs / f"retention-{name}.out", stderr_path=logs / f"retention-{name}.log", cwd=REPO,
                     on_line=phase_labels)
        if m["exit_code"] != 0:
            print((logs / f"retention-{name}.log").read_text()[-3000:], file=sys.stderr)
            return 1
        text = (logs / f"retention-{name}.out").read_text()
        removed = next((line for line in text.splitlines() if "removed" in line), "").strip()
        results[name] = {"wall_s": m["wall_s"], "peak_rss_mb": m["peak_rss_mb"], "summary": removed,
                         "rows_per_s": round(rows / m["wall_s"]) if m["wall_s"] else None,
                         "phase_sampled_peak_rss_mb": m["sampler_by_label"]}
        print(f"{name:<8} {m['wall_s']:7.1f} s  {m['peak_rss_mb']:7.0f} MB  {rows / m['wall_s']:>12,.0f} rows/s"
              f"  | {removed}", flush=True)
        for label, mb in m["sampler_by_label"].items():
            print(f"           {label:<52} peak RSS {mb:7,.0f} MB (sampled)", flush=True)
    out = args.out / f"retention-{rows}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"{rows:,} rows in billing + analytics + quarantine; results: {out}")
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
