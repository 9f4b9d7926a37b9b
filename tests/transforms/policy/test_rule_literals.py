"""No rule outside the policy: periods, shares and thresholds live in policy/a1_slovenia.yaml only.

Code and its prose (comments, docstrings, SQL, DAG docs) in transforms/ and dags/ cite the policy key
(`retention[invoice].keep`, `roaming.observation_window_months`, …) instead of restating its number,
which drifts when the YAML changes. This test reads every such file and fails on a literal that looks
like a period, a share or a threshold, unless it is one of the few listed below with the reason it is
not a rule of the policy.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
_NUMBER = r"(?:[2-9]|\d{2,}|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirty|ninety|half a)"
PATTERNS = {
    "period": re.compile(r"\bP\d+[YMWD]\b"),
    "duration": re.compile(rf"\b{_NUMBER}[\s-]+(?:calendar[\s-]+)?(?:days?|weeks?|months?|years?)\b", re.I),
    "horizon": re.compile(r"_\d+d_"),
    "share": re.compile(r"[<>]=?\s*0?\.\d+|\bone half\b|\bmore than half\b", re.I),
    "threshold": re.compile(r"\bk\s*(?:[<>]=?|==)\s*\d+"),
    "interval": re.compile(r"INTERVAL\s+(?:[2-9]|\d{2,})\s+(?:DAY|MONTH|YEAR)|timedelta\((?:days|weeks)=(?:[2-9]|\d{2,})"
                           r"|to_(?:months|days|years)\(\d", re.I),
}
# (file, the literal as matched): why it is not a rule that belongs in the policy file.
ALLOWED = {
    ("transforms/policy/loader.py", "four months"): "the regulation's own floor, quoted; it checks the policy's value",
    ("transforms/policy/loader.py", "more than half"): "the meaning of 'outweighs'; the floor the policy's shares are checked against",
    ("transforms/policy/loader.py", "28 days"): "a calendar fact (the shortest month), not a rule",
    ("transforms/policy/period.py", "P6M"): "an example of the period syntax in an error message",
    ("transforms/policy/period.py", "P10Y"): "an example of the period syntax in an error message",
    ("transforms/policy/period.py", "half a year"): "an example of civil month arithmetic in a docstring",
    ("transforms/privacy/suppression.py", "k < 2"): "k-anonymity means nothing below 2: the loader's own minimum",
}


def _sources() -> list[Path]:
    return sorted([*(REPO / "transforms").rglob("*.py"), *(REPO / "transforms").rglob("*.sql"),
                   *(REPO / "dags").glob("*.py")])


def found() -> dict[tuple[str, str], list[int]]:
    hits: dict[tuple[str, str], list[int]] = {}
    for path in _sources():
        rel = str(path.relative_to(REPO))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for rx in PATTERNS.values():
                for m in rx.finditer(line):
                    hits.setdefault((rel, m.group(0)), []).append(n)
    return hits


def test_no_period_share_or_threshold_is_written_outside_the_policy():
    new = {f"{file}:{lines[0]}: {text!r}" for (file, text), lines in found().items() if (file, text) not in ALLOWED}
    assert not new, "literals that restate the policy (cite its key instead): " + "; ".join(sorted(new))


def test_every_allowance_is_still_needed():
    stale = set(ALLOWED) - set(found())
    assert not stale, f"allowed literals no longer in the code: {sorted(stale)}"


def test_the_scanner_sees_what_it_is_meant_to(tmp_path):
    lines = ["invoices kept 10 years", "six months after", "share > 0.5", "rows_due_30d_after_sweep",
             "INTERVAL 30 DAY", "timedelta(days=90)", "kept P6M", "k >= 10"]
    assert all(any(rx.search(line) for rx in PATTERNS.values()) for line in lines)
    assert not any(rx.search("a day with a home event; INTERVAL 1 DAY; timedelta(days=1); one month")
                   for rx in PATTERNS.values())
