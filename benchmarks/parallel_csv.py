"""Experiment: ingest's CSV read with `parallel = true` against the current `parallel = false`.

    python -m benchmarks.parallel_csv FILE [FILE ...] [--json OUT]

For each CSV, the staging COPY of transforms/steps/ingest.py `_stage` is rebuilt
here from the same helpers (format recognition, `staging_select`,
`staging_query`, the same read_csv options) — a copy of the SQL, nothing
in transforms/ is changed — and run twice in fresh connections with the
pipeline's limits, once per `parallel` value. Compared:

* wall seconds of the COPY (and of the reject query that follows it);
* staged rows, and an order-sensitive checksum of the staged file (row
  position + every column), so reordering or changed values show;
* reject_errors: the set of (line, error_type) pairs, and the distinct
  rejected lines (ingest counts a rejected record once, by its line);
* the line accounting ingest relies on: header + sum(_record_lines) +
  rejected lines, against the file's physical line count.

A third run, parallel with `SET disabled_optimizers = 'in_clause'`, checks
the workaround for the order loss found with the Asterisk format (an IN list
of 5+ constants becomes a MARK hash join that does not keep insertion order).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from transforms.formats import load_formats
from transforms.formats.expressions import Renderer
from transforms.formats.recognize import detect
from transforms.lake import connection as lake_mod
from transforms.policy import load_policy
from transforms.steps.ingest import staging_select
from transforms.steps.lines import fingerprint
from transforms.steps.reading import HEAD_BYTES, MAX_LINE_BYTES, RECORD_LINES, STAGED_COMPRESSION, staging_query

# DuckDB 2.0 turns `x IN (5+ constants)` (and list_contains over a constant list) into a MARK hash
# join, and that plan loses insertion order under a parallel scan (asterisk's `direction` mapping).
NO_IN_REWRITE = "SET disabled_optimizers = 'in_clause'"


def stage_sql(profile, n: int, select: str, parallel: bool) -> str:
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n)) + "}"
    source = (
        "read_csv($src, header = {h}, auto_detect = false, delim = ',', quote = '\"', escape = '\"',"
        " columns = {cols}, store_rejects = true, strict_mode = true, encoding = 'utf-8',"
        " max_line_size = {mls}, parallel = {par})"
    ).format(h="true" if profile.header else "false", cols=columns, mls=MAX_LINE_BYTES,
             par="true" if parallel else "false")
    return f"COPY ({staging_query(select, source, n)}) TO $dst (FORMAT parquet, COMPRESSION {STAGED_COMPRESSION})"


def run_once(path: Path, policy, parallel: bool, work: Path, settings: tuple[str, ...] = ()) -> dict:
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    det = detect(head, load_formats(policy), policy)
    if det.format is None:
        return {"error": f"no format: {det.reason}"}
    n = len(det.source_columns)
    dst = work / f"staged-{'par' if parallel else 'seq'}.parquet"
    renderer = Renderer(det.format, det.source_columns, policy.operator)
    params = {"src": str(path), "dst": str(dst), **renderer.params}
    sql = stage_sql(det.format, n, staging_select(renderer, policy), parallel)
    con = lake_mod.connect(work / "tmp")
    for setting in settings:
        con.execute(setting)
    try:
        t0 = time.perf_counter()
        try:
            staged = lake_mod.execute(con, sql, params).fetchone()[0]
        except Exception as exc:   # noqa: BLE001 — a read error is a result of the experiment
            return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                    "copy_s": round(time.perf_counter() - t0, 2)}
        copy_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        rejects = con.execute("SELECT line, lower(error_type) FROM reject_errors ORDER BY 1, 2").fetchall()
        reject_s = time.perf_counter() - t1
        cols = [d[0] for d in con.execute("SELECT * FROM read_parquet($p) LIMIT 0", {"p": str(dst)}).description]
        whole = "concat_ws(chr(31), file_row_number, " + ", ".join(f"coalesce(CAST({c} AS VARCHAR), chr(0))" for c in cols) + ")"
        checksum, record_lines = con.execute(
            f"SELECT bit_xor(md5_number({whole})), coalesce(sum({RECORD_LINES}), 0)"
            " FROM read_parquet($p, file_row_number = true)", {"p": str(dst)}).fetchone()
    finally:
        con.close()
    dst.unlink(missing_ok=True)
    lines = fingerprint(path).lines
    header = (1 + sum(c.count("\n") for c in det.source_columns)) if det.format.header else 0
    reject_lines = sorted({line for line, _ in rejects})
    return {"profile": det.format.name, "copy_s": round(copy_s, 2), "reject_query_s": round(reject_s, 3),
            "staged_rows": staged, "checksum": str(checksum), "record_lines": int(record_lines),
            "rejects": [list(r) for r in rejects], "reject_lines": reject_lines,
            "physical_lines": lines, "accounted_lines": header + int(record_lines) + len(reject_lines)}


def compare(path: Path, policy) -> dict:
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent / "out") as tmp:
        seq = run_once(path, policy, False, Path(tmp))
        par = run_once(path, policy, True, Path(tmp))
        fix = run_once(path, policy, True, Path(tmp), (NO_IN_REWRITE,))
    out = {"file": path.name, "bytes": path.stat().st_size, "sequential": seq, "parallel": par,
           "parallel_no_in_rewrite": fix}
    if "error" in seq or "error" in par or "error" in fix:
        out["same"] = False
        return out
    out["no_in_rewrite_same_checksum"] = seq["checksum"] == fix["checksum"]
    out["no_in_rewrite_same_rejects"] = seq["rejects"] == fix["rejects"]
    out["no_in_rewrite_copy_s"] = fix["copy_s"]
    s_rej, p_rej = set(map(tuple, seq["rejects"])), set(map(tuple, par["rejects"]))
    out.update(
        same_staged_rows=seq["staged_rows"] == par["staged_rows"],
        same_checksum=seq["checksum"] == par["checksum"],
        same_rejects=s_rej == p_rej,
        rejects_only_sequential=sorted(s_rej - p_rej)[:20],
        rejects_only_parallel=sorted(p_rej - s_rej)[:20],
        same_accounting=seq["accounted_lines"] == par["accounted_lines"],
        speedup=round(seq["copy_s"] / par["copy_s"], 2) if par["copy_s"] else None,
    )
    out["same"] = all(out[k] for k in ("same_staged_rows", "same_checksum", "same_rejects", "same_accounting"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.parallel_csv", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    (Path(__file__).resolve().parent / "out").mkdir(exist_ok=True)
    policy = load_policy(None)
    results = []
    for path in args.files:
        r = compare(path, policy)
        results.append(r)
        s, p = r["sequential"], r["parallel"]
        if "error" in s or "error" in p:
            print(f"{path.name}: sequential {s.get('error', 'ok')}; parallel {p.get('error', 'ok')}")
            continue
        print(f"{path.name} ({r['bytes'] / 2**20:,.1f} MB, {s['profile']}): COPY {s['copy_s']} s -> {p['copy_s']} s"
              f" (x{r['speedup']}); staged {s['staged_rows']:,} / {p['staged_rows']:,};"
              f" rejects {len(s['rejects'])} / {len(p['rejects'])} at lines {s['reject_lines'][:6]} / {p['reject_lines'][:6]};"
              f" lines accounted {s['accounted_lines']:,} / {p['accounted_lines']:,} of {s['physical_lines']:,};"
              f" identical: {r['same']}; parallel + {NO_IN_REWRITE!r}: {r['no_in_rewrite_copy_s']} s,"
              f" same order+content {r['no_in_rewrite_same_checksum']}, same rejects {r['no_in_rewrite_same_rejects']}")
        if not r["same"]:
            print(f"    only sequential: {r['rejects_only_sequential']}\n    only parallel:   {r['rejects_only_parallel']}"
                  f"\n    same rows {r['same_staged_rows']}, same checksum {r['same_checksum']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        for r in results:   # keep the JSON small: the reject lists can be long
            for k in ("sequential", "parallel", "parallel_no_in_rewrite"):
                r[k]["rejects"] = r[k].get("rejects", [])[:50]
                r[k]["reject_lines"] = r[k].get("reject_lines", [])[:50]
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
