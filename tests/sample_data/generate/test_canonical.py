"""The canonical CSV: every record obeys the expectation suite except the injected ones."""

from __future__ import annotations

import json
import re

from sample_data.generate.formats import CANONICAL_COLUMNS

from .common import SUITE, T, _records


def _rule_checks() -> list[tuple[str, callable]]:
    """Row predicates (True = row fails) from the GX suite, written independently of the pipeline."""
    checks = []
    for exp in json.loads(SUITE.read_text())["expectations"]:
        kind, kw, rule = exp["type"], exp["kwargs"], exp["meta"]["rule"]
        col = kw["column"]
        if kind == "expect_column_values_to_not_be_null":
            checks.append((rule, lambda r, c=col: not r[c]))
        elif kind == "expect_column_values_to_match_regex":
            rx = re.compile(kw["regex"])
            checks.append((rule, lambda r, c=col, rx=rx: bool(r[c]) and not rx.search(r[c])))
        elif kind == "expect_column_values_to_be_in_set":
            checks.append((rule, lambda r, c=col, s=set(kw["value_set"]): bool(r[c]) and r[c] not in s))
        elif col == "start_time":
            lo, hi = kw["min_value"], kw["max_value"]
            checks.append((rule, lambda r, lo=lo, hi=hi: bool(r["start_time"]) and not (
                lo <= r["start_time"].replace("T", " ").rstrip("Z") <= hi)))
        else:
            lo, hi = float(kw["min_value"]), float(kw["max_value"])
            checks.append((rule, lambda r, c=col, lo=lo, hi=hi: bool(r[c]) and not lo <= float(r[c]) <= hi))
    return checks


def test_canonical_csv_rows_valid_except_injected(night):
    out, manifest = night
    f = manifest.files[f"billing_{T}.csv"]
    records = _records(out / f.name)
    header, rows = records[0], records[1:]
    assert set(CANONICAL_COLUMNS) <= set(header) and {"caller_name", "email", "ip_address"} <= set(header)
    shaped = [dict(zip(header, r)) for r in rows if len(r) == len(header)]
    malformed = len(rows) - len(shaped)
    assert malformed == f.defects["too_few_fields"] + f.defects["too_many_fields"] + f.defects["unterminated_quote"]
    checks = _rule_checks()
    failing = sum(1 for r in shaped if any(fails(r) for _, fails in checks))
    rule_kinds = ("email_as_origin", "negative_duration", "unknown_service_type", "bad_imsi", "overlong_field")
    assert failing == sum(f.defects[k] for k in rule_kinds)
    canon = [tuple(r[c] for c in CANONICAL_COLUMNS) for r in shaped]
    assert len(canon) - len(set(canon)) == f.defects["duplicate_row"]
