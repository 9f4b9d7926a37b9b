"""How long does one subscriber's export (`cdr-audit subject export`) take on a big lake, with and without the
subject index?

    .venv/bin/python -m benchmarks.subject_export --lake benchmarks/out/scratch-10000000/lake [--out DIR] [--keep]

Takes a lake the pipeline made (e.g. left by ``python -m benchmarks.run --rows 10000000 --keep``), links it into
a scratch folder (hard links: the lake is never changed; the index is new files beside the parts), and picks
three subscribers from its billing rows: the served number with the most days (and rows), a served number seen on
one day only, and the IMSI of the first. Then, timed from outside (wall seconds, peak RSS):

1. the DuckDB floor: a fresh process counting the billing rows that hold the subscriber's number, by the stored
   spellings themselves (no normalizing, no tokens: the least a search of the biggest zone can cost);
2. `subject export` of each subscriber on the lake as the pipeline left it, and the per-zone seconds of the same
   search in this process (`find_subject`, each zone's finder timed);
3. `subject index` (writes the index of every part that has none: a lake from before the index);
4. `subject export` of each subscriber again, with the index, and the per-zone seconds.

A lake the pipeline made with the index already in place skips 2 as "before" (its parts are indexed): pass a lake
from before the index, or the folder of `benchmarks.run --keep` from an older commit, to see both. No number is
printed: the subscribers are named by what they are. Writes ``OUT/subject-export-<rows>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from benchmarks.run import REPO, cli_path, measured

FLOOR = """
import sys, duckdb
con = duckdb.connect()
con.execute("SET threads = 2"); con.execute("SET memory_limit = '2GB'")
files, spellings = sys.argv[1], sys.argv[2].split(",")
n = con.execute("SELECT count(*) FROM read_parquet($f, hive_partitioning = true, union_by_name = true)"
                " WHERE origin_number IN (SELECT unnest($s)) OR destination_number IN (SELECT unnest($s))"
                " OR redirection_number IN (SELECT unnest($s))", {"f": files, "s": spellings}).fetchone()[0]
print(n)
"""


def pick_subjects(lake: Path) -> dict[str, dict]:
    """Three subscribers of the lake's billing rows (served numbers), as the export is asked for them."""
    import duckdb

    from transforms.retention.rows import SERVED_NUMBER

    con = duckdb.connect()
    billing = str(lake / "billing" / "*" / "*.parquet")
    con.execute(f"""CREATE TEMP TABLE served AS SELECT {SERVED_NUMBER} AS number, any_value(imsi) AS imsi,
                    count(DISTINCT event_date) AS days, count(*) AS rows
                    FROM read_parquet($f, hive_partitioning = true, union_by_name = true)
                    WHERE {SERVED_NUMBER} IS NOT NULL AND imsi IS NOT NULL GROUP BY 1""", {"f": billing})
    many = con.execute("SELECT number, imsi, days, rows FROM served ORDER BY days DESC, rows DESC, number LIMIT 1"
                       ).fetchone()
    one = con.execute("SELECT number, imsi, days, rows FROM served WHERE days = 1 ORDER BY rows, number LIMIT 1"
                      ).fetchone()
    con.close()
    return {"number, many days": {"kind": "msisdn", "value": many[0], "days": many[2], "served_rows": many[3]},
            "number, one day": {"kind": "msisdn", "value": one[0], "days": one[2], "served_rows": one[3]},
            "IMSI, many days": {"kind": "imsi", "value": many[1], "days": many[2], "served_rows": many[3]}}


def spellings_of(lake: Path, number: str) -> list[str]:
    """Every stored spelling of one number in billing (for the floor, which matches text as stored)."""
    import duckdb

    from transforms.policy import load_policy
    from transforms.privacy.numbers import normalize_sql, numbering_params

    policy = load_policy(None)
    con = duckdb.connect()
    target = con.execute(f"SELECT {normalize_sql('$n', 'msisdn')}",
                         {"n": number, **numbering_params(policy.operator)}).fetchone()[0]
    rows = con.execute(f"""SELECT DISTINCT raw FROM (SELECT unnest([origin_number, destination_number,
                           redirection_number]) AS raw FROM read_parquet($f)) WHERE raw IS NOT NULL
                           AND {normalize_sql('raw', 'msisdn')} = $t""",
                       {"f": str(lake / "billing" / "*" / "*.parquet"), "t": target,
                        **numbering_params(policy.operator)}).fetchall()
    con.close()
    return [r[0] for r in rows]


def zone_seconds(lake: Path, subject: dict) -> dict:
    """Seconds per zone of one search in this process (each finder timed; the rows stay in DuckDB)."""
    from transforms.lake import Lake
    from transforms.lake.connection import connect
    from transforms.policy import load_policy
    from transforms.privacy.keys import demo_keyring
    from transforms.subjects import find
    from transforms.subjects.subject import Subject

    policy, keyring = load_policy(None), demo_keyring()
    who = Subject.of(subject["value"], subject["kind"], keyring, policy)
    con = connect()
    try:
        search = find.Search(con, Lake.at(lake), policy, keyring, who)
        out = {}
        for zone in find.ZONES:
            t0 = time.monotonic()
            found = find.FINDERS[zone](search)
            out[zone] = {"seconds": round(time.monotonic() - t0, 2), "rows": found.rows,
                         "parts_scanned": search.parts_scanned.get(zone)}
        return out
    finally:
        con.close()


def export_round(label: str, lake: Path, subjects: dict, scratch: Path, logs: Path) -> dict:
    results = {}
    for name, subject in subjects.items():
        out = scratch / f"export-{label}-{name.replace(' ', '').replace(',', '-')}"
        shutil.rmtree(out, ignore_errors=True)
        tag = f"subject-{label}-{name.replace(' ', '').replace(',', '-')}"   # no number in a file name
        m = measured([cli_path(), "subject", "export", "--lake", str(lake), f"--{subject['kind']}", subject["value"],
                      "--out", str(out), "--demo"], stdout_path=logs / f"{tag}.out", stderr_path=logs / f"{tag}.log",
                     cwd=REPO)
        if m["exit_code"] != 0:
            sys.exit((logs / f"{tag}.log").read_text()[-3000:])
        summary = json.loads((out / "summary.json").read_text())
        shutil.rmtree(out, ignore_errors=True)       # the copy holds the subscriber's numbers
        zones = zone_seconds(lake, subject)
        results[name] = {"wall_s": m["wall_s"], "peak_rss_mb": m["peak_rss_mb"], "rows": summary["zones"],
                         "zones": zones}
        print(f"  {label:<9} {name:<18} {m['wall_s']:7.2f} s  {m['peak_rss_mb']:6.0f} MB  "
              + "  ".join(f"{z} {v['seconds']:.2f}s" for z, v in zones.items() if v["seconds"] >= 0.05), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.subject_export", description=__doc__.split("\n\n")[0])
    ap.add_argument("--lake", type=Path, required=True, help="a lake the pipeline made (linked, never changed)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    ap.add_argument("--keep", action="store_true", help="keep the scratch lake (with its index)")
    ap.add_argument("--no-before", action="store_true", help="skip the exports before the index is built")
    args = ap.parse_args(argv)
    os.environ["CDR_AUDIT_DEMO_MODE"] = "1"
    os.environ["PYTHONPATH"] = str(REPO)            # the cdr-audit script runs this checkout's code
    scratch = args.out / "subject-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    lake = scratch / "lake"
    # Part files are only ever replaced by a rename, never written in place: links are safe; the rest is copied.
    shutil.copytree(args.lake, lake, ignore=shutil.ignore_patterns("_work"),
                    copy_function=lambda s, d: os.link(s, d) if s.endswith(".parquet") else shutil.copy2(s, d))
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    import duckdb

    con = duckdb.connect()
    rows = con.execute("SELECT count(*) FROM read_parquet($f)", {"f": str(lake / "billing" / "*" / "*.parquet")}
                       ).fetchone()[0]
    con.close()
    subjects = pick_subjects(lake)
    result: dict = {"billing_rows": rows, "loadavg_start": os.getloadavg(),
                    "subjects": {k: {"kind": v["kind"], "days": v["days"], "served_rows": v["served_rows"]}
                                 for k, v in subjects.items()}}
    print(f"billing rows {rows:,}; subjects: " + "; ".join(f"{k} ({v['days']} day(s), {v['served_rows']} served rows)"
                                                           for k, v in subjects.items()), flush=True)
    floors = {}
    for name, subject in subjects.items():
        if subject["kind"] != "msisdn":
            continue
        spelled = spellings_of(lake, subject["value"])
        tag = f"subject-floor-{name.replace(' ', '').replace(',', '-')}"
        m = measured([sys.executable, "-c", FLOOR, str(lake / "billing" / "*" / "*.parquet"), ",".join(spelled)],
                     stdout_path=logs / f"{tag}.out", stderr_path=logs / f"{tag}.log", cwd=REPO)
        floors[name] = {"wall_s": m["wall_s"], "peak_rss_mb": m["peak_rss_mb"], "spellings": len(spelled)}
        print(f"  floor     {name:<18} {m['wall_s']:7.2f} s  {m['peak_rss_mb']:6.0f} MB", flush=True)
    floor_s = min(f["wall_s"] for f in floors.values())
    result["floor"] = floors
    result["floor_s"] = floor_s
    indexed = any(lake.rglob("*.tokens"))
    skip = indexed or args.no_before
    result["before"] = None if skip else export_round("no-index", lake, subjects, scratch, logs)
    m = measured([cli_path(), "subject", "index", "--lake", str(lake), "--demo"],
                 stdout_path=logs / "subject-index.out", stderr_path=logs / "subject-index.log", cwd=REPO)
    if m["exit_code"] != 0:
        sys.exit((logs / "subject-index.log").read_text()[-3000:])
    result["index_build"] = {"wall_s": m["wall_s"], "peak_rss_mb": m["peak_rss_mb"],
                             "printed": (logs / "subject-index.out").read_text().strip().splitlines()[-1]}
    index_bytes = sum(p.stat().st_size for p in lake.rglob("*.tokens"))
    result["index_bytes"] = index_bytes
    print(f"  index     built in {m['wall_s']:.1f} s, {m['peak_rss_mb']:.0f} MB peak; {index_bytes / 1e6:,.1f} MB of"
          " index in the lake", flush=True)
    result["after"] = export_round("index", lake, subjects, scratch, logs)
    result["loadavg_end"] = os.getloadavg()

    print(f"\nsubject export — {rows:,} billing rows; DuckDB floor (billing scan by stored spelling) {floor_s:.2f} s")
    print(f"{'subscriber':<20} {'no index s':>10} {'x floor':>8} {'index s':>8} {'x floor':>8} {'RSS MB':>7}")
    for name in subjects:
        before = result["before"][name]["wall_s"] if result["before"] else None
        after = result["after"][name]
        print(f"{name:<20} {before if before is not None else '—':>10} "
              f"{(f'{before / floor_s:.2f}' if before else '—'):>8} {after['wall_s']:>8.2f} "
              f"{after['wall_s'] / floor_s:>8.2f} {after['peak_rss_mb']:>7.0f}")
    path = args.out / f"subject-export-{rows}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"written {path}")
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
