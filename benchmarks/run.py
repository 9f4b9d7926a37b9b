"""Benchmark one night end to end: pipeline (CLI) against the DuckDB floor.

    python -m benchmarks.run [--rows N] [--source KIND] [--seed S] [--repeat R] [--keep] [--out DIR]

In one run:

1. generate a night of N records with `python -m sample_data.generate` into
   OUT/scratch-N/landing; with --source mediation or ts32298_ps, a landing
   folder that holds that one export of N records (OUT/scratch-KIND-N);
2. run `cdr-audit run --landing … --lake … --date D` as a subprocess (with
   progress lines, stderr kept in OUT/pipeline-N.log) and measure its wall
   time and peak RSS (GNU `/usr/bin/time -f '%e %M'`, else a wrapper process
   reading getrusage(RUSAGE_CHILDREN)); the RSS of its process tree is also
   sampled from /proc to attribute the peak to a file;
3. run the DuckDB floor (`python -m benchmarks.floor`: a plain COPY of every
   landing file to Parquet, same DuckDB limits) the same way;
   (with --repeat R, steps 2-3 run R times in turn, each into a fresh lake, and
   issue 4's ratio — analytics + aggregates seconds over the floor of the same
   round — is the median of the rounds: this machine is shared and one round's
   timings move by ±10%);
4. print the table, the per-file breakdown parsed from the CLI's progress
   lines, the export file's own ratio (its pipeline seconds over its floor
   COPY seconds), and every OUT/results-*.json side by side (memory must stay
   flat as N grows); write OUT/results-N.json (results-KIND-N.json).

The scratch folder (landing, lake, floor output) is deleted at the end unless
--keep is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GNU_TIME = "/usr/bin/time"
MB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Progress lines of `cdr-audit run` (transforms/entry/commands.py `_progress`, `cmd_run`).
START_RE = re.compile(r"^\[\s*(?P<t>[\d.]+)s\] \[(?P<i>\d+)/(?P<n>\d+)\] (?P<file>.+?) \((?P<bytes>[\d,]+) bytes\) …$")
# A file's last line (transforms/entry/console.py `file_line`): "… name: loaded — 120 read = 116 valid + … ;
# 116 loaded, 4 quarantined", or for a file not read row by row "… name: refused whole — 40 read, nothing kept: …".
END_RE = re.compile(r"^\[\s*(?P<t>[\d.]+)s\] \[(?P<i>\d+)/(?P<n>\d+)\] (?P<file>.+?): (?P<status>[a-z ]+) — "
                    r"(?P<read>[\d,]+) read(?:.*?; (?P<loaded>[\d,]+) loaded, (?P<quar>[\d,]+) quarantined)?")
# Per-step lines (nightly.audit_file `on_step`): "[ 32.3s] [2/11]   ingested 3,500,000 rows as … (22.4 s)".
STEP_RE = re.compile(r"^\[\s*[\d.]+s\] \[(?P<i>\d+)/\d+\]   (?P<what>\w+)\b.*\((?P<s>[\d.]+) s\)$")
STEP_NAMES = {"ingested": "ingest_s", "validated": "validate_s", "committed": "billing_quarantine_s",
              "analytics": "analytics_s"}
# The per-file step that runs after each step line (a line is printed when its step ends): the sampler's
# label, so each step's peak RSS is its own. A fixed-header extract (payments, consents) is one step.
NEXT_STEP = {"ingested": "validate", "validated": "billing + quarantine", "committed": "analytics"}
EXTRACT_STEPS = ("payments", "consents")
FILE_STEPS = ("ingest", "validate", "billing + quarantine", "analytics", "extract")
# Night-level aggregate lines, one per release made:
# "[ 16.9s] aggregates 2026-11-22 release 1 (day, k=10, from 9 part(s), 1,234 rows): day_service 5 of 9 … (0.3 s)".
AGG_RE = re.compile(r"^\[\s*(?P<t>[\d.]+)s\] aggregates (?P<day>\S+)(?: release \d+ \(.*?\))?: .*"
                    r"\((?P<s>[\d.]+) s\)$")
PLAN_RE = re.compile(r"^\[\s*(?P<t>[\d.]+)s\] \d+ file\(s\) in landing")
# The night-wide steps' lines, each printed when its step ends (transforms/entry/commands.py `_run_night`): the
# sampler's label moves on to the next step, so each step's peak RSS is its own.
ROAMING_RE = re.compile(r"^\[\s*(?P<t>[\d.]+)s\] roaming: ")
MARKETING_RE = re.compile(r"^\[\s*(?P<t>[\d.]+)s\] marketing: ")
PLAN, AGGREGATES, ROAMING, MARKETING, CLOSE = ("(start-up, policy, plan: sha256 of every file)", "(aggregates)",
                                               "(roaming)", "(marketing)", "(close night: merge, export, exit)")

# What the landing folder holds (`python -m sample_data.generate --source`), and the export whose own
# pipeline/floor ratio is reported: the night's mediation file, or the one export.
SOURCES = ("night", "mediation", "ts32298_ps")
EXPORT_FILE = {"night": "mediation_{date}.csv", "mediation": "mediation_{date}.csv",
               "ts32298_ps": "ts32298_ps_{date}.csv"}


def run_label(source: str, rows: int) -> str:
    """Names a run's scratch folder, logs and results: N for the night (as before), KIND-N otherwise."""
    return str(rows) if source == "night" else f"{source}-{rows}"


def export_file_ratio(pipe: dict, floor: dict, name: str) -> dict:
    """One file's seconds in the pipeline (its start to end progress lines: ingest to analytics) over the
    floor's COPY of the same file."""
    p = next((f.get("seconds") for f in pipe.get("per_file", []) if f.get("file") == name), None)
    f = next((f.get("seconds") for f in floor.get("per_file", []) if f.get("file") == name), None)
    return {"file": name, "pipeline_s": p, "floor_s": f, "ratio": _ratio(p, f) if p is not None and f else None}


# Wrapper used when GNU time is missing: a fresh parent, so RUSAGE_CHILDREN holds only the command.
_RUSAGE_WRAPPER = (
    "import resource, subprocess, sys, time\n"
    "t = time.monotonic()\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "e = time.monotonic() - t\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "open(sys.argv[1], 'w').write('%.2f %d %.2f %.2f\\n' % (e, u.ru_maxrss, u.ru_utime, u.ru_stime))\n"
    "sys.exit(rc)\n"
)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__.split("\n\n")[0] + " Generates a night, runs `cdr-audit run` and a plain "
                    "DuckDB CSV->Parquet copy of the same files, and reports wall time, peak RSS and "
                    "their ratio, plus seconds per file.",
        epilog="Output: a table on stdout and OUT/results-N.json (see benchmarks/README.md for the fields). "
               "Example: python -m benchmarks.run --rows 10000000   (about 2.5 GB of scratch data)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, metavar="N",
                    help="records in the generated night (default 1,000,000; >= 200)")
    ap.add_argument("--source", choices=SOURCES, default="night",
                    help="night: the generator's sample night, N records over its five main files, the mediation"
                         " export the biggest (default); mediation or ts32298_ps: a landing folder holding that"
                         " one export of N records (3GPP TS 32.298 PS: formats/ts32298_ps.yaml)")
    ap.add_argument("--seed", type=int, default=7, metavar="S", help="generator seed (default 7)")
    ap.add_argument("--date", default="2026-11-22", metavar="YYYY-MM-DD",
                    help="night to generate and audit (default 2026-11-22)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out", metavar="DIR",
                    help="results folder; scratch data goes to DIR/scratch-N (default benchmarks/out)")
    ap.add_argument("--landing", type=Path, metavar="DIR",
                    help="audit this landing folder (made by `python -m sample_data.generate` with the same --rows,"
                         " --seed, --date and --source) instead of generating one; it is read, never changed or"
                         " deleted")
    ap.add_argument("--keep", action="store_true",
                    help="keep the scratch folder (landing files, lake, floor output) afterwards")
    ap.add_argument("--quiet-pipeline", action="store_true",
                    help="run the CLI with --quiet (no progress lines, so no per-file breakdown)")
    ap.add_argument("--repeat", type=int, default=1, metavar="R",
                    help="run pipeline and floor R times on the same generated night, each round into a fresh"
                         " lake; the analytics + aggregates ratio is the median of the rounds (default 1)")
    ap.add_argument("--restricted", type=int, default=0, metavar="K",
                    help="before each round, restrict the processing (policy §6.4: `cdr-audit subject request"
                         " --right restriction` and `subject fulfil`) of K subscribers served in the landing's"
                         " mediation export, so the night measures leaving them out (default 0)")
    ap.add_argument("--top", type=int, default=6, metavar="K",
                    help="per-file breakdown: show the K slowest files (default 6)")
    return ap


# ------------------------------------------------------------------ measuring

class TreeRssSampler:
    """Samples the summed VmRSS of a process and its descendants from /proc."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval = pid, interval
        self.peak_kb = 0
        self.label: str | None = None           # set by the stderr reader: the file being audited
        self.peak_by_label: dict[str, int] = {}
        self.cpu_by_label: dict[str, int] = {}      # CPU clock ticks of the tree (all threads) under each label
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "TreeRssSampler":
        if Path(f"/proc/{self.pid}").exists():
            self._thread.start()
        return self

    def relabel(self, old: str, new: str) -> None:
        """What was sampled under `old` was `new` all along (a step known only when its line came)."""
        self.label = new
        if old in self.peak_by_label:
            self.peak_by_label[new] = max(self.peak_by_label.pop(old), self.peak_by_label.get(new, 0))
        if old in self.cpu_by_label:
            self.cpu_by_label[new] = self.cpu_by_label.pop(old) + self.cpu_by_label.get(new, 0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _tree(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            pids.append(p)
            try:
                for task in os.listdir(f"/proc/{p}/task"):
                    with open(f"/proc/{p}/task/{task}/children") as fh:
                        todo.extend(int(c) for c in fh.read().split())
            except OSError:
                pass
        return pids

    def _run(self) -> None:
        last_ticks = None
        while not self._stop.is_set():
            total = ticks = 0
            for p in self._tree():
                try:
                    with open(f"/proc/{p}/status") as fh:
                        for line in fh:
                            if line.startswith("VmRSS:"):
                                total += int(line.split()[1])
                                break
                    with open(f"/proc/{p}/stat") as fh:      # utime, stime: fields 14, 15 (after the name)
                        ticks += sum(int(x) for x in fh.read().rsplit(")", 1)[1].split()[11:13])
                except (OSError, ValueError, IndexError):
                    pass
            self.peak_kb = max(self.peak_kb, total)
            if self.label is not None:
                self.peak_by_label[self.label] = max(self.peak_by_label.get(self.label, 0), total)
                if last_ticks is not None and ticks > last_ticks:
                    self.cpu_by_label[self.label] = self.cpu_by_label.get(self.label, 0) + ticks - last_ticks
            last_ticks = ticks
            self._stop.wait(self.interval)


def measured(cmd: list[str], *, stdout_path: Path, stderr_path: Path, cwd: Path,
             on_line=None, label_sampler: bool = False) -> dict:
    """Run `cmd`; return wall seconds and peak RSS (MB) as measured outside it."""
    time_file = stderr_path.with_suffix(".time")
    if os.access(GNU_TIME, os.X_OK):
        full, method = [GNU_TIME, "-o", str(time_file), "-f", "%e %M %U %S", *cmd], "GNU time -f '%e %M %U %S'"
    else:
        full, method = [sys.executable, "-c", _RUSAGE_WRAPPER, str(time_file), *cmd], "getrusage(RUSAGE_CHILDREN)"
    t0 = time.monotonic()
    with open(stdout_path, "wb") as out, open(stderr_path, "w", encoding="utf-8", errors="replace") as err:
        proc = subprocess.Popen(full, cwd=cwd, stdout=out, stderr=subprocess.PIPE, text=True,
                                encoding="utf-8", errors="replace")
        sampler = TreeRssSampler(proc.pid).start()
        for line in proc.stderr:      # streamed, so the sampler knows which file is being audited
            err.write(line)
            err.flush()
            if on_line is not None:
                on_line(line.rstrip("\n"), sampler)
        rc = proc.wait()
        sampler.stop()
    outer_wall = time.monotonic() - t0
    wall_s, maxrss_kb, user_s, sys_s = (float(x) for x in time_file.read_text().split()[-4:])
    time_file.unlink()
    return {"cmd": cmd, "exit_code": rc, "wall_s": wall_s, "peak_rss_mb": round(maxrss_kb / 1024, 1),
            "cpu_s": round(user_s + sys_s, 1),
            "sampled_tree_peak_rss_mb": round(sampler.peak_kb / 1024, 1), "outer_wall_s": round(outer_wall, 2),
            "method": method, "sampler_by_label": {k: round(v / 1024, 1) for k, v in sampler.peak_by_label.items()},
            "cpu_s_by_label": {k: round(v / CLOCK_TICKS, 1) for k, v in sampler.cpu_by_label.items()}}


def cli_path() -> str:
    for cand in (Path(sys.executable).parent / "cdr-audit", REPO / ".venv" / "bin" / "cdr-audit"):
        if cand.exists():
            return str(cand)
    found = shutil.which("cdr-audit")
    if not found:
        sys.exit("benchmarks.run: cannot find the cdr-audit script (install the package: make install)")
    return found


# ------------------------------------------------------------------ progress lines

def progress_tracker():
    """Stderr line callback for the CLI, plus the per-file table it fills."""
    state: dict = {"files": {}, "by_index": {}, "plan_done_s": None, "last_end_s": None, "aggregates_s": {},
                   "night_steps_end_s": {}}

    def on_line(line: str, sampler: TreeRssSampler) -> None:
        if sampler.label is None:
            sampler.label = PLAN
        if m := PLAN_RE.match(line):
            state["plan_done_s"] = float(m["t"])
        elif m := START_RE.match(line):
            state["files"][m["file"]] = {"file": m["file"], "bytes": int(m["bytes"].replace(",", "")),
                                         "start_s": float(m["t"])}
            state["by_index"][m["i"]] = m["file"]
            sampler.label = f"{m['file']}\tingest"
        elif (m := STEP_RE.match(line)) and m["i"] in state["by_index"]:
            name = state["by_index"][m["i"]]
            f = state["files"][name]
            f.setdefault("steps", {})[STEP_NAMES.get(m["what"], m["what"] + "_s")] = float(m["s"])
            if m["what"] in EXTRACT_STEPS:     # it was no ingest: the extract's own step, start to end
                sampler.relabel(f"{name}\tingest", f"{name}\textract")
            elif m["what"] in NEXT_STEP:
                sampler.label = f"{name}\t{NEXT_STEP[m['what']]}"
        elif m := AGG_RE.match(line):
            state["aggregates_s"][m["day"]] = float(m["s"])
            state["night_steps_end_s"]["aggregates"] = float(m["t"])
            sampler.label = ROAMING
        elif m := ROAMING_RE.match(line):
            state["night_steps_end_s"]["roaming"] = float(m["t"])
            sampler.label = MARKETING
        elif m := MARKETING_RE.match(line):
            state["night_steps_end_s"]["marketing"] = float(m["t"])
            sampler.label = CLOSE
        elif m := END_RE.match(line):
            f = state["files"].setdefault(m["file"], {"file": m["file"]})
            f.update(end_s=float(m["t"]), status=m["status"], rows_read=int(m["read"].replace(",", "")),
                     rows_loaded=int((m["loaded"] or "0").replace(",", "")),
                     rows_quarantined=int((m["quar"] or "0").replace(",", "")))
            if "start_s" in f:
                f["seconds"] = round(f["end_s"] - f["start_s"], 1)
            state["last_end_s"] = float(m["t"])
            sampler.label = AGGREGATES
    return state, on_line


def night_stages(pipe: dict, state: dict, per_label_rss: dict, per_label_cpu: dict | None = None) -> list[dict]:
    """The night stage by stage, in the order they run: seconds (a per-file step summed over the files), the
    sampled peak RSS (a per-file step's highest over the files) and the CPU seconds of every thread, sampled
    from /proc (what other work on the machine does not change: the throughput per core)."""
    per_label_cpu = per_label_cpu or {}
    per_file = list(state["files"].values())

    def step_s(*keys: str) -> float:
        return round(sum(f.get("steps", {}).get(k, 0.0) for f in per_file for k in keys), 1)

    def peak(label: str) -> float | None:
        return max((v for k, v in per_label_rss.items() if k == label or k.endswith(f"\t{label}")), default=None)

    def cpu(label: str) -> float | None:
        spent = [v for k, v in per_label_cpu.items() if k == label or k.endswith(f"\t{label}")]
        return round(sum(spent), 1) if spent else None

    ends = state["night_steps_end_s"]
    last_file = state["last_end_s"]
    marks = [last_file, ends.get("aggregates"), ends.get("roaming"), ends.get("marketing"), pipe["wall_s"]]
    gaps = [round(b - a, 1) if a is not None and b is not None else None for a, b in zip(marks, marks[1:])]
    stages = [
        {"stage": "start-up + plan", "seconds": state["plan_done_s"], "peak_rss_mb": peak(PLAN)},
        {"stage": "ingest", "seconds": step_s("ingest_s"), "peak_rss_mb": peak("ingest")},
        {"stage": "validate", "seconds": step_s("validate_s"), "peak_rss_mb": peak("validate")},
        {"stage": "billing + quarantine", "seconds": step_s("billing_quarantine_s"),
         "peak_rss_mb": peak("billing + quarantine")},
        {"stage": "analytics", "seconds": step_s("analytics_s"), "peak_rss_mb": peak("analytics")},
        {"stage": "extract", "seconds": step_s(*(f"{e}_s" for e in EXTRACT_STEPS)), "peak_rss_mb": peak("extract")},
    ]
    for (name, label), seconds in zip((("aggregates", AGGREGATES), ("roaming", ROAMING), ("marketing", MARKETING),
                                       ("close + exit", CLOSE)), gaps):
        stages.append({"stage": name, "seconds": seconds, "peak_rss_mb": per_label_rss.get(label), "label": label})
    for st, label in zip(stages, (PLAN, "ingest", "validate", "billing + quarantine", "analytics", "extract")):
        st["label"] = label
    for st in stages:
        st["cpu_s"] = cpu(st.pop("label"))
    return stages


# ------------------------------------------------------------------ run

def machine() -> dict:
    import duckdb
    mem = ""
    try:
        mem = next(l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "mem_total": mem, "python": platform.python_version(),
            "duckdb": duckdb.__version__, "platform": platform.platform()}


def code_fingerprint() -> dict:
    """sha256 (12 hex) of every file of transforms/: which code a result measured (the tree changes between commits)."""
    import hashlib
    root = REPO / "transforms"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()[:12]
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix in (".py", ".sql", ".j2")}


def loadavg() -> list[float] | None:
    """1, 5 and 15 min load averages: other work on the machine makes timings noisy."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def _median(values) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def releasing_night(day: str) -> str:
    """The night the pipeline runs as: the landing's day plus the policy's release window, so that night releases
    the very day it loads (policy aggregate_release, docs/design.md §4) and the aggregates' work is measured. Run
    as the landing's own night, the day would only wait, and the night would look cheaper than a real one."""
    from transforms.policy import load_policy
    closes = load_policy().aggregate_release.window_closes_on(date.fromisoformat(day))
    return closes.isoformat()


def served_numbers(landing: Path, day: str, k: int) -> list[str]:
    """The first `k` distinct served numbers (servedMSISDN) of the landing's mediation export; never printed."""
    import csv

    path = landing / f"mediation_{day}.csv"
    if not path.exists():
        sys.exit(f"benchmarks.run: --restricted needs {path.name} in the landing folder")
    numbers: list[str] = []
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        for row in csv.DictReader(fh):
            number = (row.get("servedMSISDN") or "").strip()
            if number and number not in numbers:
                numbers.append(number)
                if len(numbers) == k:
                    break
    return numbers


def restrict(args, landing: Path, lake: Path, scratch: Path) -> None:
    """Record and fulfil a restriction of `args.restricted` subscribers in `lake`, received on the landing's day."""
    for i, number in enumerate(served_numbers(landing, args.date, args.restricted)):
        common = ["--lake", str(lake), "--demo", "--today", args.date]
        asked = subprocess.run([cli_path(), "subject", "request", "--right", "restriction", "--msisdn", number,
                                "--received", args.date, *common], cwd=REPO, check=True, capture_output=True,
                               text=True)
        request_id = asked.stdout.strip().splitlines()[-1]
        shutil.rmtree(scratch / f"restriction-{i}", ignore_errors=True)
        subprocess.run([cli_path(), "subject", "fulfil", request_id, "--out", str(scratch / f"restriction-{i}"),
                        *common], cwd=REPO, check=True, capture_output=True)


def measure_round(args, landing: Path, lake: Path, floor_dir: Path, scratch: Path, logs: Path, result: dict,
                  tag: str) -> tuple[dict, dict]:
    """One pipeline run into `lake`, then the floor on the same landing files; both measured from outside."""
    label = run_label(args.source, args.rows)
    if args.restricted:
        say(f"{tag}restricting {args.restricted} subscriber(s) …")
        restrict(args, landing, lake, scratch)
        result["restricted"] = args.restricted
    say(f"{tag}pipeline: cdr-audit run …")
    # A benchmark pseudonymizes with the demo key: it measures the work, not a key set-up.
    cmd = [cli_path(), "run", "--landing", str(landing), "--lake", str(lake), "--date", releasing_night(args.date),
           "--demo"]
    if args.quiet_pipeline:
        cmd.append("--quiet")
    result["code"] = code_fingerprint()      # taken as the pipeline starts: the tree may change meanwhile
    state, on_line = progress_tracker()
    pipe = measured(cmd, stdout_path=logs / f"pipeline-{label}.out", cwd=REPO,
                    stderr_path=logs / f"pipeline-{label}.log", on_line=on_line)
    per_label_rss = pipe.pop("sampler_by_label")
    per_label_cpu = pipe.pop("cpu_s_by_label")
    per_file = list(state["files"].values())
    for f in per_file:
        f["sampled_peak_rss_mb"] = max((v for k, v in per_label_rss.items() if k.split("\t")[0] == f["file"]),
                                       default=None)
    pipe["per_file"] = per_file
    # Issue 4's budget: pseudonymize + generalize (per file) and aggregates (per day) against the floor.
    pipe["analytics_s"] = round(sum(f.get("steps", {}).get("analytics_s", 0.0) for f in per_file), 1)
    pipe["aggregates_s"] = round(sum(state["aggregates_s"].values()), 1)
    pipe["plan_s"] = state["plan_done_s"]
    if state["last_end_s"] is not None:
        pipe["files_s"] = round(state["last_end_s"] - (state["plan_done_s"] or 0), 1)
        pipe["startup_close_exit_s"] = round(pipe["wall_s"] - state["last_end_s"], 1)
    pipe["phase_sampled_peak_rss_mb"] = {k: v for k, v in per_label_rss.items() if k.startswith("(")}
    pipe["stages"] = night_stages(pipe, state, per_label_rss, per_label_cpu)
    pipe["summary"] = (logs / f"pipeline-{label}.out").read_text(errors="replace").strip().splitlines()
    m = re.search(r"rows:\s+([\d,]+) read = ([\d,]+) loaded \+ ([\d,]+) quarantined", "\n".join(pipe["summary"]))
    if m:
        pipe["rows_read"], pipe["rows_loaded"], pipe["rows_quarantined"] = (int(g.replace(",", "")) for g in m.groups())
    if pipe["exit_code"] not in (0, 3):
        say(f"  pipeline exited {pipe['exit_code']}; see {logs / f'pipeline-{label}.log'}")
    say(f"  {pipe['wall_s']} s, peak RSS {pipe['peak_rss_mb']:,} MB (exit {pipe['exit_code']});"
        f" analytics + aggregates {pipe['analytics_s']} + {pipe['aggregates_s']} s")

    say(f"{tag}floor: plain DuckDB COPY of every landing file to Parquet …")
    floor_json = scratch / "floor.json"
    floor = measured([sys.executable, "-m", "benchmarks.floor", str(landing), str(floor_dir), "--json", str(floor_json)],
                     stdout_path=logs / f"floor-{label}.out", stderr_path=logs / f"floor-{label}.log",
                     cwd=REPO)
    floor.pop("sampler_by_label")
    floor.pop("cpu_s_by_label")
    floor["per_file"] = json.loads(floor_json.read_text()) if floor_json.exists() else []
    floor["copy_statements_s"] = round(sum(f.get("seconds", 0) for f in floor["per_file"]), 2)
    floor["failed_attempts_s"] = round(sum(f.get("failed_attempt_seconds", 0) for f in floor["per_file"]), 2)
    say(f"  {floor['wall_s']} s, peak RSS {floor['peak_rss_mb']:,} MB (exit {floor['exit_code']})")
    return pipe, floor


def run(args) -> dict:
    out = args.out.resolve()
    label = run_label(args.source, args.rows)
    scratch = out / f"scratch-{label}"
    landing, lake, floor_dir = args.landing or scratch / "landing", scratch / "lake", scratch / "floor"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env_py = sys.executable
    export_name = EXPORT_FILE[args.source].format(date=args.date)
    result: dict = {"rows": args.rows, "source": args.source, "seed": args.seed, "night": args.date,
                    "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(), "loadavg_start": loadavg()}
    try:
        t0 = time.monotonic()
        if args.landing:
            say(f"auditing the landing folder {landing} (given; not generated)")
            result["landing_given"] = str(landing)
        else:
            say(f"generating {args.rows:,} rows ({args.source}, seed {args.seed}) into {landing} …")
            subprocess.run([env_py, "-m", "sample_data.generate", "--rows", str(args.rows), "--out", str(landing),
                            "--seed", str(args.seed), "--date", args.date, "--source", args.source, "--quiet"],
                           cwd=REPO, check=True)
        files = sorted(p for p in landing.iterdir() if p.is_file())
        result["generate_wall_s"] = round(time.monotonic() - t0, 2)
        result["input_bytes"] = sum(p.stat().st_size for p in files)
        result["input_files"] = {p.name: p.stat().st_size for p in files}
        say(f"  {len(files)} files, {result['input_bytes'] / MB:,.1f} MB in {result['generate_wall_s']} s")

        rounds = []
        for n in range(1, args.repeat + 1):
            if n > 1:   # a fresh lake and floor folder: every round does the whole night's work again
                shutil.rmtree(lake, ignore_errors=True)
                shutil.rmtree(floor_dir, ignore_errors=True)
            tag = f"round {n}/{args.repeat}: " if args.repeat > 1 else ""
            pipe, floor = measure_round(args, landing, lake, floor_dir, scratch, logs, result, tag)
            rounds.append({"pipeline_wall_s": pipe["wall_s"], "analytics_s": pipe["analytics_s"],
                           "aggregates_s": pipe["aggregates_s"], "floor_wall_s": floor["wall_s"],
                           "ratio_analytics_aggregates": _ratio(pipe["analytics_s"] + pipe["aggregates_s"],
                                                                floor["wall_s"]),
                           "ratio_wall": _ratio(pipe["wall_s"], floor["wall_s"]),
                           # CPU seconds (every thread): what other work on a shared machine changes least
                           "ratio_cpu": _ratio(pipe.get("cpu_s", 0), floor.get("cpu_s", 0)),
                           "export_file": export_file_ratio(pipe, floor, export_name)})
            if n == 1:     # the first round's details (per file, RSS) are the ones reported
                result["pipeline"], result["floor"] = pipe, floor
        pipe, floor = result["pipeline"], result["floor"]
        result["rounds"] = rounds
        result["ratio_wall"] = _ratio(pipe["wall_s"], floor["wall_s"])
        # Issue 4's budget, from every round: the floor is measured in the same round as the steps.
        result["ratio_analytics_aggregates"] = statistics.median(
            r["ratio_analytics_aggregates"] for r in rounds if r["ratio_analytics_aggregates"] is not None)
        result["ratio_wall_median"] = _median(r["ratio_wall"] for r in rounds)
        result["ratio_cpu_median"] = _median(r["ratio_cpu"] for r in rounds)
        # The export file's own ratio, the night's start-up, plan and close left out: one source's file
        # against another's (the night's mediation file, a TS 32.298 PS export) at the same N.
        result["export_file"] = {**rounds[0]["export_file"],
                                 "ratio_median": _median(r["export_file"]["ratio"] for r in rounds)}
        result["ratio_rss"] = _ratio(pipe["peak_rss_mb"], floor["peak_rss_mb"])
        result["pipeline_rows_per_s"] = round(args.rows / pipe["wall_s"]) if pipe["wall_s"] else None
        result["floor_rows_per_s"] = round(args.rows / floor["wall_s"]) if floor["wall_s"] else None
    finally:
        result["loadavg_end"] = loadavg()
        if args.keep:
            result["scratch"] = str(scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    path = out / f"results-{label}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    result["_path"] = str(path)
    return result


# ------------------------------------------------------------------ report

def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fmt_rows(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n:,}"


def report(result: dict, out: Path, top: int) -> None:
    p, f = result["pipeline"], result["floor"]
    source = result.get("source", "night")
    print(f"\ncdr-audit benchmark — {_fmt_rows(result['rows'])} rows ({source}), seed {result['seed']}, "
          f"{result['machine']['cpus']} CPUs, DuckDB {result['machine']['duckdb']} ({p['method']})")
    la0, la1 = result.get("loadavg_start"), result.get("loadavg_end")
    if la0 and la1 and max(la0[0], la1[1]) > 0.5:
        print(f"  note: load average {la0[0]:.2f} at start, {la1[1]:.2f} (5 min) at the end: other processes"
              f" shared the {result['machine']['cpus']} CPUs, timings are noisy")
    rows = [
        ("rows (generated)", f"{result['rows']:,}" + ("  (5 main files)" if source == "night" else
                                                       f"  (one {source} export)")),
        ("rows read by the pipeline", f"{p.get('rows_read', 0):,}"
                                      + ("  (incl. the duplicate-delivery copy)" if source == "night" else "")),
        ("subscribers restricted", f"{result.get('restricted', 0)}  (§6.4: left out of analytics, marketing, roaming)"),
        ("input bytes", f"{result['input_bytes']:,}  ({result['input_bytes'] / MB:,.0f} MB)"),
        ("pipeline wall s", f"{p['wall_s']:.1f}"),
        ("pipeline peak RSS MB", f"{p['peak_rss_mb']:,.0f}"),
        ("floor wall s", f"{f['wall_s']:.1f}  (COPY statements {f['copy_statements_s']:.1f}, "
                         f"refused plain reads {f['failed_attempts_s']:.1f})"),
        ("floor peak RSS MB", f"{f['peak_rss_mb']:,.0f}"),
        ("ratio pipeline/floor wall", f"{result['ratio_wall']}x" + _rounds_note(result, "ratio_wall")),
        ("ratio pipeline/floor RSS", f"{result['ratio_rss']}x"),
        ("ratio pipeline/floor CPU", f"{p.get('cpu_s')} / {f.get('cpu_s')} CPU s = "
                                     f"{result['rounds'][0].get('ratio_cpu')}x"
                                     + ("" if len(result["rounds"]) < 2 else
                                        f"; rounds {', '.join(str(r.get('ratio_cpu')) + 'x' for r in result['rounds'])}"
                                        f", median {result.get('ratio_cpu_median')}x")),
        ("pipeline rows/s", f"{result['pipeline_rows_per_s']:,}"),
        ("analytics + aggregates s", f"{p.get('analytics_s', 0):.1f} + {p.get('aggregates_s', 0):.1f}"
                                     f" = {result['rounds'][0]['ratio_analytics_aggregates']}x the floor"
                                     + ("" if len(result["rounds"]) < 2 else
                                        f"; rounds {', '.join(str(r['ratio_analytics_aggregates']) + 'x' for r in result['rounds'])}"
                                        f", median {result['ratio_analytics_aggregates']}x")
                                     + " (budget: 1x)"),
        ("floor rows/s", f"{result['floor_rows_per_s']:,}"),
    ]
    ef = result.get("export_file")
    if ef:
        rows.append(("export file pipeline/floor", f"{ef['ratio']}x  ({ef['file']}: {ef['pipeline_s']} s"
                                                   f" / COPY {ef['floor_s']} s)"
                                                   + _rounds_note(result, "export_file")))
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{w}}  {v}")

    per_file = [x for x in p.get("per_file", []) if "seconds" in x]
    if per_file:
        floor_s = {x["file"]: x.get("seconds") for x in f["per_file"]}
        print(f"\npipeline per file (from the CLI progress lines; top {top} by seconds):")
        print(f"  {'file':<32} {'MB':>7} {'rows read':>10} {'s':>6} {'ingest':>7} {'valid.':>7} {'commit':>7}"
              f" {'rows/s':>8} {'peak RSS MB':>11} {'floor s':>7}")
        for x in sorted(per_file, key=lambda x: -x["seconds"])[:top]:
            rps = f"{x['rows_read'] / x['seconds']:,.0f}" if x["seconds"] else "-"
            rss = x.get("sampled_peak_rss_mb")
            fl = floor_s.get(x["file"])
            st = x.get("steps", {})
            steps = " ".join(f"{st[k]:>7.1f}" if k in st else f"{'-':>7}"
                             for k in ("ingest_s", "validate_s", "billing_quarantine_s"))
            print(f"  {x['file'][:32]:<32} {x.get('bytes', 0) / MB:>7,.1f} {x['rows_read']:>10,} {x['seconds']:>6.1f}"
                  f" {steps} {rps:>8} {rss if rss is not None else '-':>11} {fl if fl is not None else '-':>7}")
        rest = sorted(per_file, key=lambda x: -x["seconds"])[top:]
        if rest:
            print(f"  … {len(rest)} more file(s): {sum(x['seconds'] for x in rest):.1f} s together")
        print(f"  plan (policy + sha256/line count of every file): {p.get('plan_s')} s;"
              f" files: {p.get('files_s')} s; start-up + close night (merge, export) + exit: "
              f"{p.get('startup_close_exit_s')} s")
        stages = p.get("stages")
        if stages:
            print(f"\npipeline per stage (seconds: the files' summed; x floor: over the floor's {f['wall_s']:.1f} s;"
                  " peak RSS: sampled, the stage's highest):")
            print(f"  {'stage':<22} {'s':>7} {'x floor':>8} {'peak RSS MB':>12} {'CPU s':>7}")
            for st in stages:
                sec, rss, cpu_s = st["seconds"], st["peak_rss_mb"], st.get("cpu_s")
                print(f"  {st['stage']:<22} {sec if sec is not None else '-':>7} "
                      f"{_ratio(sec, f['wall_s']) if sec is not None else '-':>8} "
                      f"{f'{rss:,.0f}' if rss is not None else '-':>12} {cpu_s if cpu_s is not None else '-':>7}")

    scaling = []
    for path in sorted(out.glob("results-*.json")):
        try:
            r = json.loads(path.read_text())
            scaling.append(r)
        except (OSError, ValueError):
            continue
    scaling = [r for r in scaling if "pipeline" in r and "floor" in r]
    if len(scaling) > 1:
        scaling.sort(key=lambda r: (r.get("source", "night"), r["rows"]))
        print(f"\nside by side (every {out}/results-*.json; 'wall x' and 'file x', the export file's own ratio,"
              f" are medians of the rounds):")
        print(f"  {'source':<10} {'rows':>6} {'input MB':>9} {'pipe s':>8} {'pipe RSS MB':>12} {'floor s':>8}"
              f" {'floor RSS MB':>13} {'wall x':>7} {'RSS x':>6} {'file x':>7} {'pipe rows/s':>12}")
        for r in scaling:
            pr, fr = r["pipeline"], r["floor"]
            fx = (r.get("export_file") or {}).get("ratio_median")
            wx = r.get("ratio_wall_median", r["ratio_wall"])      # results written before medians: the one round
            print(f"  {r.get('source', 'night'):<10} {_fmt_rows(r['rows']):>6} {r['input_bytes'] / MB:>9,.0f}"
                  f" {pr['wall_s']:>8.1f} {pr['peak_rss_mb']:>12,.0f} {fr['wall_s']:>8.1f}"
                  f" {fr['peak_rss_mb']:>13,.0f}"
                  f" {wx:>7} {r['ratio_rss']:>6} {fx if fx is not None else '-':>7}"
                  f" {r['pipeline_rows_per_s']:>12,}")
    print(f"\nresults: {result['_path']}")


def _rounds_note(result: dict, key: str) -> str:
    """With --repeat: every round's value of a ratio and their median."""
    rounds = result.get("rounds", [])
    if len(rounds) < 2:
        return ""
    values = [r.get(key) if key != "export_file" else (r.get(key) or {}).get("ratio") for r in rounds]
    median = result.get("ratio_wall_median") if key == "ratio_wall" else (result.get(key) or {}).get("ratio_median")
    return f"; rounds {', '.join(f'{v}x' for v in values)}, median {median}x"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rows < 200:
        build_parser().error("--rows must be at least 200 (the generator's minimum)")
    if args.repeat < 1:
        build_parser().error("--repeat must be at least 1")
    result = run(args)
    report(result, args.out.resolve(), args.top)
    return 0 if result["pipeline"]["exit_code"] in (0, 3) and result["floor"]["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
