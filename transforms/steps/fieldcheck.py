"""Step 2 — field check: every source column against the allowed-data list.

For each (file, column): is it on the §3.2 billing-data list (through the
format's map), only read to derive an allowed value, or off the list; what
happened to it, and under which clause. Then it
proves the staged output holds nothing but allowed columns — if it ever did,
the file is stopped here, before anything reaches a zone.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.parquet as pq

from transforms.formats import FormatCatalog
from transforms.formats.model import deciding_columns, is_as_is, stored_columns
from transforms.policy import LINEAGE_COLUMNS, Policy
from transforms.steps.ingest import IngestResult
from transforms.steps.reading import STAGING_TECHNICAL


@dataclass(frozen=True)
class FieldFinding:
    """One source column of one file, classified."""

    column_index: int
    source_column: str        # sanitized name as in the file
    classification: str       # allowed | used_for_derivation | not_allowed | unknown
    action: str               # kept | derived | dropped (a column read for derivation is not kept)
    canonical_columns: str    # canonical column(s) it feeds or derives, comma-separated
    clause: str


@dataclass(frozen=True)
class FieldCheckResult:
    findings: tuple[FieldFinding, ...]
    allowed: int
    not_allowed: int
    unknown: int
    used_for_derivation: int
    staged_columns_verified: bool   # staged schema was read and holds only allowed columns


class StagedColumnViolation(RuntimeError):
    """A staged file carries a column that is not on the allowed list."""


def check_fields(ingest: IngestResult, policy: Policy, formats: FormatCatalog) -> FieldCheckResult:
    """Classify the file's columns and verify the staged file's schema."""
    fmt = formats.get(ingest.profile or "")
    stores: dict[str, list[str]] = {}       # source column -> canonical columns its value lands in
    decides: dict[str, list[str]] = {}      # source column -> canonical columns it is read to choose
    as_is: set[str] = set()
    not_allowed: set[str] = set()
    if fmt is not None:
        for canonical, d in fmt.map:
            if not policy.is_allowed(canonical):
                continue
            for s in stored_columns(d):
                stores.setdefault(s.lower(), []).append(canonical)
            for s in deciding_columns(d):
                decides.setdefault(s.lower(), []).append(canonical)
            if is_as_is(d):
                as_is.add(d.name.lower())
        if fmt.answered is not None and fmt.derivation("duration_s") is not None:
            decides.setdefault(fmt.answered.column.lower(), []).append("duration_s")
        not_allowed = {c.lower() for c in fmt.not_allowed}
    findings = []
    bound: set[str] = set()
    for i, name in enumerate(ingest.source_columns):
        key = name.strip().lower()
        # Staging reads the first column of a name (formats.expressions): a repeat feeds nothing, is
        # dropped, and is reported as a column the format does not know.
        repeat = key in bound and (key in stores or key in decides)
        bound.add(key)
        if repeat:
            findings.append(FieldFinding(i, name, "unknown", policy.not_allowed_action, "", policy.not_allowed_clause))
        elif key in stores:
            targets = sorted(set(stores[key] + decides.get(key, [])), key=policy.allowed_columns.index)
            # kept: its own value is stored as it is (it may feed derived columns too, such as a number's
            # calling code); derived: only values made from it are.
            action = "kept" if key in as_is else "derived"
            findings.append(FieldFinding(i, name, "allowed", action, ",".join(targets), _clauses(policy, targets)))
        elif key in decides:
            # Read to derive an allowed value (a record type, a disposition, a dial-plan context); its own
            # value is never kept.
            targets = sorted(set(decides[key]), key=policy.allowed_columns.index)
            findings.append(FieldFinding(i, name, "used_for_derivation", policy.not_allowed_action, ",".join(targets),
                                         _clauses(policy, targets)))
        elif key in not_allowed:
            findings.append(FieldFinding(i, name, "not_allowed", policy.not_allowed_action, "",
                                         policy.not_allowed_clause))
        else:
            findings.append(FieldFinding(i, name, "unknown", policy.not_allowed_action, "", policy.not_allowed_clause))
    if ingest.staged_path:
        staged_cols = pq.read_schema(ingest.staged_path).names
        bad = [c for c in staged_cols if not (policy.is_allowed(c) or c in LINEAGE_COLUMNS or c in STAGING_TECHNICAL)]
        if bad:
            raise StagedColumnViolation(f"staged file of {ingest.file_name} has {len(bad)} column(s) off the list")
    count = lambda cls: sum(f.classification == cls for f in findings)  # noqa: E731
    return FieldCheckResult(tuple(findings), count("allowed"), count("not_allowed"), count("unknown"),
                            count("used_for_derivation"), staged_columns_verified=ingest.staged_path is not None)


def _clauses(policy: Policy, columns: list[str]) -> str:
    return "; ".join(dict.fromkeys(policy.field(c).clause for c in columns))
