"""Step 6 — analytics zone: a file's billing rows, pseudonymized and generalized (policy §3.3).

Further use of traffic data is allowed only pseudonymized or aggregated. For
each file whose rows reached billing: generalize (`generalize.py`: hour, TAC,
area, drops), then replace direct identifiers with keyed tokens
(`pseudonymize.py`), then commit to `analytics/event_date=…/part-<sha>.parquet`.
Every file there carries the HMAC key id it was made with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transforms import lake as lake_mod
from transforms.billing import ZoneWrite, commit_partitions
from transforms.generalize import ColumnTreatment, define_generalized, treatments
from transforms.lake import Lake
from transforms.policy import Policy
from transforms.pseudonymize import KeyRing, derive_tokens, plan_tokens


@dataclass(frozen=True)
class AnalyticsResult:
    """What the analytics step did with one file's billing rows."""

    rows: int
    key_id: str
    tokenized: dict[str, int]              # column -> distinct values tokenized
    treatments: tuple[ColumnTreatment, ...]
    zone: ZoneWrite


def build_analytics(billing_files: list[str], lake: Lake, policy: Policy, keyring: KeyRing, work_dir: Path, *,
                    source_sha256: str, cell_regions: str | None = None) -> AnalyticsResult:
    """Pseudonymize and generalize one file's billing rows into the analytics zone.

    One pass: generalization is a view, tokens are looked up for its distinct identifiers, and
    each event date's rows are written once, straight into the zone's layout.
    """
    out = work_dir / "analytics_out"
    lake_mod.remove_tree(out)
    out.mkdir(parents=True)
    by_day: dict[str, list[str]] = {}
    for f in billing_files:   # billing/event_date=D/part-….parquet: the folder is the day
        by_day.setdefault(Path(f).parent.name, []).append(f)
    con = lake_mod.connect(work_dir / "tmp")
    # Row order means nothing in analytics; keeping it through the token joins only costs memory.
    con.execute("SET preserve_insertion_order = false")
    try:
        define_generalized(con, billing_files, policy, cell_regions=cell_regions)
        # The identifiers are read from the billing rows themselves (no area join on the way): one lookup
        # serves all of the file's days.
        tokens = plan_tokens(con, "generalized_billing", policy, keyring)
        rows = 0
        for i, (folder, files) in enumerate(sorted(by_day.items())):
            # Each day reads its own files: a filter on event_date instead makes DuckDB expect ~1 row
            # and hash-build the joins on the big side (out of memory at 4.5M rows).
            define_generalized(con, files, policy, cell_regions=cell_regions, view=f"day_{i}")
            dst = out / folder / "part.parquet"
            # LZ4 and v2 pages: the tokens do not compress, and zstd spent ~15% more time failing to.
            dst.parent.mkdir()
            rows += lake_mod.execute(con, f"""
                COPY (SELECT {tokens.select(exclude=("event_date",))} FROM day_{i} t{tokens.joins})
                TO $dst (FORMAT parquet, COMPRESSION lz4_raw, PARQUET_VERSION V2)""", {**tokens.params, "dst": str(dst)}).fetchone()[0]
    finally:
        con.close()
    zone = commit_partitions(out, lake, "analytics", source_sha256)
    lake_mod.remove_tree(out)
    return AnalyticsResult(rows, tokens.key_id, dict(tokens.distinct_by_column), treatments(policy), zone)


@dataclass(frozen=True)
class SubjectHit:
    """Analytics rows of one subject under one key id, day and column (counts, no values)."""

    key_id: str
    event_date: str
    column: str
    rows: int


def find_subject(lake: Lake, policy: Policy, keyring: KeyRing, value: str, kind: str) -> list[SubjectHit]:
    """Where a subject (a number or IMSI) appears in analytics, across key rotations.

    The token is derived with every key still held and matched only in partitions
    made with that key, so a subject-access request finds rows from before and
    after a rotation.
    """
    columns = [f.column for f in policy.fields if f.analytics == "tokenize" and f.identifier == kind]
    files = sorted(str(p) for p in lake.zone("analytics").rglob("*.parquet"))
    if not columns or not files:
        return []
    tokens = derive_tokens(value, kind, keyring, policy.operator.country_calling_code)
    con = lake_mod.connect()
    try:
        # Column names come from the policy and paths are the lake's own; key id and token are bound.
        source = ("read_parquet([" + ", ".join(lake_mod.sql_literal(f) for f in files) + "],"
                  " hive_partitioning = true, union_by_name = true)")
        union = " UNION ALL ".join(
            f"SELECT hmac_key_id, CAST(event_date AS VARCHAR) AS event_date, '{c}' AS column_name FROM {source}"
            f" WHERE hmac_key_id = $key AND {c} = unhex($token)" for c in columns)
        hits = []
        for key_id, tok in tokens.items():
            for k, day, column, n in lake_mod.execute(
                    con, f"SELECT hmac_key_id, event_date, column_name, count(*) FROM ({union}) GROUP BY ALL"
                         " ORDER BY 2, 3", {"key": key_id, "token": tok}).fetchall():
                hits.append(SubjectHit(k, day, column, n))
        return hits
    finally:
        con.close()
