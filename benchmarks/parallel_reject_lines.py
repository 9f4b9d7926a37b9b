"""Do reject line numbers stay right with `read_csv(parallel = true)`? A test with known answers.

    python -m benchmarks.parallel_reject_lines SOURCE_CSV [--records N] [--every K] [--json OUT]

Takes the first N records of a canonical billing CSV (one record per line,
header first), then every K records writes a defect whose physical line is
known: a record with a field missing, one with an extra field, one with a
quoted field holding a line break (a legal two-line record, which moves every
later line number by one), or a quoted field holding commas (legal). The defects are spread over many read buffers, so some fall near
buffer edges. The file is then staged with ingest's SQL (`benchmarks.
parallel_csv.run_once`) sequentially, in parallel, and in parallel with
`disabled_optimizers = 'in_clause'`. Reported per run: whether the rejected
lines are exactly the expected physical lines, or the expected record numbers
(1 + the record's ordinal, header = 1: they part after the first two-line
record), the staged row count, and whether the staged rows match the
sequential run in order and content. Source records that are already
malformed or quoted are copied unchanged and never altered; the source's own
malformed records are therefore extra rejects unless --records stops before
them (billing_D.csv of a 10M night has its first at line ~1.56M).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from benchmarks.parallel_csv import NO_IN_REWRITE, run_once
from transforms.policy import load_policy

KINDS = ("missing_field", "extra_field", "quoted_newline", "quoted_commas")


def build(source: Path, dst: Path, records: int, every: int, seed: int = 1) -> dict:
    rnd = random.Random(seed)
    expected_rejects: list[int] = []      # physical lines (what `sed -n Np` shows)
    expected_records: list[int] = []      # 1 + record ordinal: the header is 1, the first record 2
    by_kind = {k: 0 for k in KINDS}
    line_no = 2                       # physical line of the next record written (the header is line 1)
    written = 0
    with open(source, "rb") as src, open(dst, "wb") as out:
        out.write(src.readline())
        for i, rec in enumerate(src):
            if i >= records:
                break
            if not rec.endswith(b"\n"):
                break                     # the source's own truncated last record: left out
            body = rec.rstrip(b"\r\n")
            fields = body.split(b",")
            if b'"' in body or len(fields) != 29:   # only plain, well-formed records are altered
                out.write(rec)
                line_no += 1
                written += 1
                continue
            if i % every == every - 1:
                kind = KINDS[rnd.randrange(len(KINDS))]
                by_kind[kind] += 1
                if kind == "missing_field":
                    out.write(b",".join(fields[:-1]) + b"\n")
                    expected_rejects.append(line_no)
                    expected_records.append(written + 2)
                    line_no += 1
                elif kind == "extra_field":
                    out.write(body + b",x\n")
                    expected_rejects.append(line_no)
                    expected_records.append(written + 2)
                    line_no += 1
                elif kind == "quoted_newline":   # legal CSV: the record takes two physical lines
                    fields[1] = b'"first part\nsecond part"'
                    out.write(b",".join(fields) + b"\n")
                    line_no += 2
                else:                            # legal CSV: a quoted field holding commas
                    fields[1] = b'"Kos, Peter, dr."'
                    out.write(b",".join(fields) + b"\n")
                    line_no += 1
            else:
                out.write(rec)
                line_no += 1
            written += 1
    return {"records": written, "physical_lines": line_no - 1, "expected_reject_lines": expected_rejects,
            "expected_reject_records": expected_records, "defects": by_kind}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.parallel_reject_lines",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="a canonical billing CSV (billing_D.csv of a generated night)")
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--every", type=int, default=9_973, help="a defect every K records (default 9973)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    policy = load_policy(None)
    out_dir = Path(__file__).resolve().parent / "out"
    out_dir.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        path = Path(tmp) / "rejects_test.csv"
        truth = build(args.source, path, args.records, args.every)
        expected = truth["expected_reject_lines"]
        print(f"test file: {truth['records']:,} records, {truth['physical_lines']:,} lines,"
              f" {path.stat().st_size / 2**20:,.0f} MB; defects {truth['defects']}")
        runs = {"sequential": run_once(path, policy, False, Path(tmp)),
                "parallel": run_once(path, policy, True, Path(tmp)),
                "parallel_no_in_rewrite": run_once(path, policy, True, Path(tmp), (NO_IN_REWRITE,))}
    by_record = truth["expected_reject_records"]
    report = {"truth": {k: v for k, v in truth.items() if not k.startswith("expected_")},
              "expected_rejects": len(expected), "runs": {}}
    for name, r in runs.items():
        if "error" in r:
            print(f"  {name}: {r['error']}")
            report["runs"][name] = r
            continue
        got = r["reject_lines"]
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        summary = {"copy_s": r["copy_s"], "staged_rows": r["staged_rows"], "reject_lines": len(got),
                   "reject_lines_exact": got == expected, "missing": missing[:10], "unexpected": extra[:10],
                   "reject_lines_are_record_numbers": got == by_record,
                   "accounted_lines": r["accounted_lines"], "physical_lines": r["physical_lines"],
                   "same_as_sequential": r["checksum"] == runs["sequential"].get("checksum")}
        report["runs"][name] = summary
        print(f"  {name:<24} COPY {r['copy_s']:>6.2f} s; staged {r['staged_rows']:,};"
              f" rejected lines {len(got)} of {len(expected)} expected; = physical lines: {got == expected}"
              f"{'' if got == expected else f' (expected {missing[:3]}, got {extra[:3]})'};"
              f" = 1 + record number: {got == by_record};"
              f" lines accounted {r['accounted_lines']:,} of {r['physical_lines']:,};"
              f" staged rows same as sequential: {summary['same_as_sequential']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
