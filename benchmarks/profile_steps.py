"""Where one file's time goes: the per-file steps of `audit_file`, timed one by one.

    python -m benchmarks.profile_steps LANDING FILE [FILE ...] [--work DIR] [--json OUT] [--floor]

Calls the transforms functions directly, chained as `transforms.nightly.
audit_file._audit_ingested` chains them: fingerprint → ingest_file → check_fields →
validate_staged → load_billing → quarantine_rows → build_analytics (demo key), into a scratch lake under
--work. For every step: wall seconds, process CPU seconds (all threads) and
peak RSS of this process during the step (VmHWM, reset between steps through
/proc/self/clear_refs). Inside the steps, each DuckDB statement issued through
`transforms.lake.connection.connect` connections is timed (the connection is wrapped, not
changed), and so is GX's run (`_validate`: the expectation queries; the Data Docs pages are built once a
night, at its close, not per file), ingest's staging query streamed into Arrow's Parquet writer
(`write_parquet`), and ingest's Python passes (`lines.scan_lines`, the
walk over every line when the counts do not place them; `lines.plain_line_endings`, the LF copy of a mixed file). Nothing in transforms/ is edited; the wrappers are
installed on the imported modules of this process only.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import transforms.lake.connection as lake_mod
import transforms.steps.gx_duckdb as gx_mod
import transforms.steps.reading as reading_mod
from transforms.lake import Lake
from transforms.policy import load_policy
from transforms.steps.billing import load_billing
from transforms.steps.fieldcheck import check_fields
from transforms.steps.ingest import ingest_file
from transforms.steps.quarantine import quarantine_rows
from transforms.steps.lines import fingerprint

CURRENT: dict = {"step": None}
RECORDS: list[dict] = []        # sub-step records: step, what, seconds


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


@contextmanager
def step(name: str, out: list):
    reset = _reset_peak()
    rss0 = _status_kb("VmRSS")
    CURRENT["step"] = name
    t0, c0 = time.perf_counter(), time.process_time()
    rec = {"step": name}
    try:
        yield rec
    finally:
        rec.update(seconds=round(time.perf_counter() - t0, 2), cpu_s=round(time.process_time() - c0, 2),
                   rss_before_mb=round(rss0 / 1024), peak_rss_mb=round(_status_kb("VmHWM") / 1024) if reset else None)
        CURRENT["step"] = None
        out.append(rec)


def _label(sql: str) -> str:
    s = re.sub(r"\s+", " ", sql).strip()
    s = re.sub(r"SELECT (.{60}).*? FROM", r"SELECT \1… FROM", s)   # long select lists
    return s[:110]


class TimedCon:
    """A DuckDB connection whose execute() calls are timed; everything else passes through."""

    def __init__(self, con):
        self._con = con

    def execute(self, sql, *args, **kw):
        t0 = time.perf_counter()
        try:
            return self._con.execute(sql, *args, **kw)
        finally:
            RECORDS.append({"step": CURRENT["step"], "what": "sql: " + _label(sql),
                            "seconds": round(time.perf_counter() - t0, 3)})

    def __getattr__(self, name):
        return getattr(self._con, name)


def _timed(fn, what: str):
    def wrapper(*a, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            RECORDS.append({"step": CURRENT["step"], "what": what, "seconds": round(time.perf_counter() - t0, 3)})
    return wrapper


STAGING: dict = {}   # the last staging query ingest streamed into its staged file: (query, params)


def _kept_query(write):
    def wrapper(con, query, params, *a, **kw):
        STAGING["query"] = (query, dict(params))
        return write(con, query, params, *a, **kw)
    return wrapper


def floor_of(path: Path, work: Path) -> dict:
    """The file's own floor, and ingest's staging statement computed without its write.

    The floor is `benchmarks.floor`'s COPY of this one file. The staging statement (the strict parse, the format's
    derivations, the record digest and flags) is read to the end by an aggregate over every column, so DuckDB
    computes every value and writes nothing: what ingest costs when its rows go nowhere, the part of ingest no
    fused design could drop.
    """
    from benchmarks.floor import copy_to_parquet, floor_connection

    out = {}
    work.mkdir(parents=True, exist_ok=True)
    con = floor_connection(work / "tmp")
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        copy_to_parquet(con, path, work / "floor.parquet")
        out["floor"] = {"seconds": round(time.perf_counter() - t0, 2), "cpu_s": round(time.process_time() - c0, 2)}
    finally:
        con.close()
    if "query" in STAGING:
        query, params = STAGING.pop("query")
        con = lake_mod.connect(work / "tmp")
        con.execute("SET disabled_optimizers = 'in_clause'")    # as ingest's connection
        try:
            columns = con.sql(query, params=lake_mod.used_params(query, params)).columns
            every = ", ".join(f"max({c})" for c in columns)
            t0, c0 = time.perf_counter(), time.process_time()
            lake_mod.execute(con, f"SELECT count(*), {every} FROM ({query})", params).fetchone()
            out["staging_computed"] = {"seconds": round(time.perf_counter() - t0, 2),
                                       "cpu_s": round(time.process_time() - c0, 2)}
        finally:
            con.close()
    shutil.rmtree(work, ignore_errors=True)
    return out


def install_probes() -> None:
    real_connect = lake_mod.connect
    timed_connect = lambda *a, **kw: TimedCon(real_connect(*a, **kw))   # noqa: E731
    import transforms.steps.validate  # noqa: F401  (imported here so its `connect` is wrapped too)

    # Each step module holds its own name for `connect`: wrap it wherever it is bound.
    for module in [m for name, m in sys.modules.items() if name.startswith("transforms.")]:
        if getattr(module, "connect", None) is real_connect:
            module.connect = timed_connect
    gx_mod._validate = _timed(gx_mod._validate, "gx: _validate (context, datasource, expectation queries)")
    reading_mod.write_parquet = _timed(_kept_query(reading_mod.write_parquet),
                                       "arrow: write_parquet (the staging query streamed into the staged file)")
    reading_mod.scan_lines = _timed(reading_mod.scan_lines, "python: scan_lines (walk the lines as the reader does)")
    reading_mod.plain_line_endings = _timed(reading_mod.plain_line_endings,
                                            "python: plain_line_endings (LF copy of a cr/mixed file)")


def profile_file(path: Path, work_root: Path, policy, night: str, floor: bool = False) -> dict:
    from transforms.formats import load_formats

    formats = load_formats(policy)
    run_id = "bench_profile"
    lake = Lake.at(work_root / "lake")
    lake.ensure()
    work = work_root / "work" / path.name
    shutil.rmtree(work, ignore_errors=True)
    steps: list[dict] = []
    first = len(RECORDS)
    with step("fingerprint (sha256 + line count, in plan_night)", steps):
        shape = fingerprint(path)
        sha, lines = shape.sha256, shape.lines
    with step("ingest_file", steps) as rec:
        ing = ingest_file(path, policy, formats, work, shape=shape)
        rec.update(rows_staged=ing.rows_staged, rows_unparseable=ing.rows_unparseable)
    if ing.status != "staged":
        return {"file": path.name, "bytes": path.stat().st_size, "status": ing.status, "steps": steps}
    with step("check_fields", steps):
        check_fields(ing, policy, formats)
    from transforms.steps.validate import validate_staged
    with step("validate_staged", steps) as rec:
        val = validate_staged(ing.staged_path, policy, work, source_sha256=sha, run_id=run_id,
                              numbering=ing.numbering, docs_dir=lake.data_docs)
        rec.update(rows_valid=val.rows_valid, rows_rejected=val.rows_rejected)
    with step("load_billing", steps) as rec:
        valid = getattr(val, "valid_dir", None) or getattr(val, "valid_path", None)   # the API moved once already
        bill = load_billing(valid, lake, source_sha256=sha)
        rec.update(rows_written=bill.rows_written, partitions=len(bill.rows_by_partition))
    with step("quarantine_rows", steps) as rec:
        q = quarantine_rows(val.rejected_path, ing.unparseable_path, lake, work, policy,
                            source_sha256=sha, run_id=run_id, night=night)
        rec.update(rows_written=q.rows_written)
    if bill.rows_written:
        from transforms.privacy.analytics import build_analytics
        from transforms.privacy.keys import demo_keyring
        with step("build_analytics", steps) as rec:
            made = build_analytics([str(lake.root / f) for f in bill.files], lake, policy, demo_keyring(),
                                   work / "analytics", source_sha256=sha)
            rec.update(rows=made.rows)
    shutil.rmtree(work, ignore_errors=True)
    result = {"file": path.name, "bytes": path.stat().st_size, "lines": lines, "rows_read": ing.rows_read,
              "steps": steps, "total_s": round(sum(s["seconds"] for s in steps), 2),
              "substeps": [r for r in RECORDS[first:] if r["seconds"] >= 0.05]}
    if floor:
        result.update(floor_of(path, work_root / "floor" / path.name))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.profile_steps", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("landing", type=Path)
    ap.add_argument("files", nargs="+", help="file names inside LANDING")
    ap.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "out" / "profile-work",
                    help="scratch lake and work area (deleted afterwards; default benchmarks/out/profile-work)")
    ap.add_argument("--json", type=Path, help="write the measurements here")
    ap.add_argument("--night", default="2026-11-22")
    ap.add_argument("--memory-limit", metavar="SIZE",
                    help="experiment: DuckDB memory_limit for every connection instead of the pipeline's "
                         f"{lake_mod.DUCKDB_MEMORY} (sets transforms.lake.connection.DUCKDB_MEMORY in this process only)")
    ap.add_argument("--floor", action="store_true",
                    help="also time each file's own floor (benchmarks.floor's COPY of it) and ingest's staging "
                         "statement computed without its write (an aggregate over every column)")
    args = ap.parse_args(argv)
    if args.memory_limit:
        lake_mod.DUCKDB_MEMORY = args.memory_limit
    install_probes()
    policy = load_policy(None)
    t0 = time.perf_counter()
    import great_expectations  # noqa: F401  (import cost once, outside the first file's steps)
    gx_import_s = round(time.perf_counter() - t0, 2)
    shutil.rmtree(args.work, ignore_errors=True)
    results = []
    try:
        for name in args.files:
            r = profile_file(args.landing / name, args.work, policy, args.night, floor=args.floor)
            results.append(r)
            print(f"\n{r['file']}: {r['bytes'] / 2**20:,.0f} MB, {r.get('rows_read', 0):,} rows, {r.get('total_s')} s")
            for s in r["steps"]:
                extra = {k: v for k, v in s.items() if k not in ("step", "seconds", "cpu_s", "rss_before_mb", "peak_rss_mb")}
                print(f"  {s['step']:<52} {s['seconds']:>7.2f} s  cpu {s['cpu_s']:>7.2f} s  peak RSS {s['peak_rss_mb']:>6} MB"
                      f"  {extra if extra else ''}")
            for key, what in (("floor", "the file's floor (COPY to Parquet)"),
                              ("staging_computed", "ingest's staging statement, computed, not written")):
                if key in r:
                    print(f"  {what:<52} {r[key]['seconds']:>7.2f} s  cpu {r[key]['cpu_s']:>7.2f} s")
            print("  statements / phases >= 0.05 s:")
            for x in r["substeps"]:
                print(f"    {x['seconds']:>7.2f} s  [{x['step']}] {x['what']}")
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"gx_import_s": gx_import_s, "memory_limit": lake_mod.DUCKDB_MEMORY,
                                         "loadavg": Path("/proc/loadavg").read_text().split()[:3],
                                         "files": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
