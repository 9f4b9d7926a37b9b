"""Two or more nights of different sizes, stage by stage: does the time follow the rows, and does memory stay?

    .venv/bin/python -m benchmarks.side_by_side benchmarks/out/results-10000000.json benchmarks/out/results-30000000.json

Reads the results `python -m benchmarks.run` wrote (each with its own floor, measured in the same run) and
prints one Markdown table, a row per stage, per night: wall seconds, the ratio to that night's floor, the
stage's sampled peak RSS and its CPU seconds; then the night, the floor, and how the peak RSS grew from the
smallest night to each larger one. Flat memory (issue 17) means the peak does not follow the rows: the
largest night's peak within `--flat` (default 10 %) of the smallest's. Exit code 0 when it is, 1 when not,
2 on unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _rows_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n:,}"


def load(paths: list[Path]) -> list[dict]:
    """The results, smallest night first; each must carry per-stage figures (a run without --quiet-pipeline)."""
    results = []
    for path in paths:
        result = json.loads(Path(path).read_text())
        if not result.get("pipeline", {}).get("stages"):
            raise ValueError(f"{path}: no per-stage figures (was it run with --quiet-pipeline?)")
        results.append(result)
    return sorted(results, key=lambda r: r["rows"])


def rss_growth(results: list[dict]) -> list[float]:
    """Peak RSS of each night over the smallest night's, as a fraction (0.05 = 5 % more)."""
    base = results[0]["pipeline"]["peak_rss_mb"]
    return [r["pipeline"]["peak_rss_mb"] / base - 1 for r in results]


def table(results: list[dict]) -> str:
    head = "| stage |" + "".join(f" {_rows_label(r['rows'])} s | x floor | RSS MB | CPU s |" for r in results)
    lines = [head, "|---|" + "---:|" * (4 * len(results))]
    stages = [s["stage"] for s in results[0]["pipeline"]["stages"]]
    for name in stages:
        cells = []
        for r in results:
            s = next((x for x in r["pipeline"]["stages"] if x["stage"] == name), None)
            floor = r["floor"]["wall_s"]
            cells.append(" – | – | – | – |" if s is None else
                         f" {s['seconds']:,.1f} | {s['seconds'] / floor:.2f} | {s['peak_rss_mb']:,.0f} |"
                         f" {s.get('cpu_s') or 0:,.1f} |")
        lines.append(f"| {name} |" + "".join(cells))
    lines.append("| **night** |" + "".join(
        f" {r['pipeline']['wall_s']:,.1f} | **{r['pipeline']['wall_s'] / r['floor']['wall_s']:.2f}** |"
        f" **{r['pipeline']['peak_rss_mb']:,.0f}** | {r['pipeline'].get('cpu_s') or 0:,.1f} |" for r in results))
    lines.append("| floor (plain COPY) |" + "".join(
        f" {r['floor']['wall_s']:,.1f} | 1 | {r['floor']['peak_rss_mb']:,.0f} | {r['floor'].get('cpu_s') or 0:,.1f} |"
        for r in results))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.side_by_side", description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="results-N.json files written by benchmarks.run")
    ap.add_argument("--flat", type=float, default=0.10, metavar="F",
                    help="largest night's peak RSS may exceed the smallest's by this fraction (default 0.10)")
    args = ap.parse_args(argv)
    try:
        results = load(args.results)
    except (OSError, ValueError, KeyError) as exc:
        print(f"side_by_side: {exc}", file=sys.stderr)
        return 2
    print(table(results))
    growth = rss_growth(results)
    for r, g in zip(results[1:], growth[1:]):
        print(f"\npeak RSS {_rows_label(results[0]['rows'])} → {_rows_label(r['rows'])}:"
              f" {results[0]['pipeline']['peak_rss_mb']:,.0f} → {r['pipeline']['peak_rss_mb']:,.0f} MB ({g:+.0%}),"
              f" rows ×{r['rows'] / results[0]['rows']:g}")
    for r in results:
        la = (r.get("loadavg_start") or [0])[0], (r.get("loadavg_end") or [0, 0])[1]
        print(f"{_rows_label(r['rows'])}: ratio {r['pipeline']['wall_s'] / r['floor']['wall_s']:.2f}x wall,"
              f" load average {la[0]:.2f} at start, {la[1]:.2f} (5 min) at the end")
    flat = growth[-1] <= args.flat
    print(f"memory {'flat' if flat else 'NOT flat'}: {growth[-1]:+.0%} against the allowed {args.flat:+.0%}")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
