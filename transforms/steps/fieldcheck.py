"""Step 2 — field check: every source column against the allowed-data list.

For each (file, column): is it on the §3.2 billing-data list (through the
profile's mapping), what happened to it, and under which clause. Then it
proves the staged output holds nothing but allowed columns — if it ever did,
the file is stopped here, before anything reaches a zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow.parquet as pq

from transforms.policy import LINEAGE_COLUMNS, Policy
from transforms.steps.ingest import IngestResult
from transforms.steps.profiles import ALL_PROFILES
from transforms.steps.reading import STAGING_TECHNICAL


@dataclass(frozen=True)
class FieldFinding:
    """One source column of one file, classified."""

    column_index: int
    source_column: str        # sanitized name as in the file
    classification: str       # allowed | not_allowed | unknown
    action: str               # kept | derived | dropped
    canonical_columns: str    # canonical column(s) it feeds, comma-separated
    clause: str


@dataclass(frozen=True)
class FieldCheckResult:
    findings: tuple[FieldFinding, ...]
    allowed: int
    not_allowed: int
    unknown: int
    staged_columns_verified: bool   # staged schema was read and holds only allowed columns


class StagedColumnViolation(RuntimeError):
    """A staged file carries a column that is not on the allowed list."""


def check_fields(ingest: IngestResult, policy: Policy) -> FieldCheckResult:
    """Classify the file's columns and verify the staged file's schema."""
    profile = ALL_PROFILES.get(ingest.profile or "")
    feeds: dict[str, list[str]] = {}
    as_is: set[str] = set()
    if profile is not None:
        for canonical, template in profile.mapping.items():
            sources = re.findall(r"\{(\w+)\}", template)
            for s in sources:
                feeds.setdefault(s, []).append(canonical)
            if len(sources) == 1 and template == "{%s}" % sources[0]:
                as_is.add(sources[0])
    findings = []
    bound: set[str] = set()
    for i, name in enumerate(ingest.source_columns):
        key = name.strip()
        # Staging binds the first column of a name (ingest.staging_select): a repeat feeds nothing,
        # is dropped, and is reported as a column the profile does not know.
        repeat = key in bound and key in feeds
        bound.add(key)
        targets = [] if repeat else [c for c in feeds.get(key, []) if policy.is_allowed(c)]
        if targets:
            clause = "; ".join(dict.fromkeys(policy.field(c).clause for c in targets))
            action = "kept" if key in as_is and len(targets) == 1 else "derived"
            findings.append(FieldFinding(i, name, "allowed", action, ",".join(targets), clause))
        elif profile is not None and not repeat and (key in profile.known_not_allowed or key in feeds):
            findings.append(FieldFinding(i, name, "not_allowed", policy.not_allowed_action, "",
                                         policy.not_allowed_clause))
        else:
            findings.append(FieldFinding(i, name, "unknown", policy.not_allowed_action, "",
                                         policy.not_allowed_clause))
    if ingest.staged_path:
        staged_cols = pq.read_schema(ingest.staged_path).names
        bad = [c for c in staged_cols if not (policy.is_allowed(c) or c in LINEAGE_COLUMNS or c in STAGING_TECHNICAL)]
        if bad:
            raise StagedColumnViolation(f"staged file of {ingest.file_name} has {len(bad)} column(s) off the list")
    count = lambda cls: sum(f.classification == cls for f in findings)  # noqa: E731
    return FieldCheckResult(tuple(findings), count("allowed"), count("not_allowed"), count("unknown"),
                            staged_columns_verified=ingest.staged_path is not None)
