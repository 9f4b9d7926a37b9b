"""Step 3 — validate: type the staged rows, run the GX suite, route each row.

The Great Expectations suite in ``expectations/billing_cdr.json`` is the one
statement of the row rules. GX validates the typed rows of a file and its
counts go to ``validation_results``; the same expectations are turned into
SQL predicates here so that every row failing one is routed to quarantine
with the rule's name as its reason. A row whose text does not cast to the
column's type, or whose whole source record (every field, read or not) repeats
an earlier record of the same file, is quarantined too. Nothing stops at the
first bad row. A row is named by `source_row`, the physical line its record
starts on.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from transforms.bundled import BILLING_SUITE
from transforms.lake.commit import remove_tree
from transforms.lake.connection import connect, execute, remove_database, sql_literal
from transforms.lake.partitions import PART_DICTIONARY_ENTRIES
from transforms.policy import Policy
from transforms.steps.gx_duckdb import build_data_docs, run_suite   # GX itself is imported when a run needs it
from transforms.steps.reading import INGEST_FLAG, RECORD_DIGEST, LineNumbering

DUPLICATE = "duplicate_row"
# The valid rows become the billing zone's parts: zstd level 1 took ~15% less of that COPY's CPU than the default
# level and gave a slightly smaller file on a 4.4M-row day (benchmarks/README.md, issue 17).
BILLING_ZSTD_LEVEL = 1

_SQL_TYPES = {"varchar": "VARCHAR", "timestamp": "TIMESTAMP", "bigint": "BIGINT", "double": "DOUBLE",
              "decimal(18,4)": "DECIMAL(18,4)", "decimal(18,6)": "DECIMAL(18,6)"}


@dataclass(frozen=True)
class RuleCheck:
    """One expectation's result on one file: counts only, never values."""

    rule: str
    expectation: str
    column: str | None
    clause: str
    success: bool
    element_count: int | None
    unexpected_count: int | None     # as GX counted it
    rows_quarantined: int            # rows routed to quarantine by this rule


@dataclass(frozen=True)
class ValidationResult:
    rows_in: int
    rows_valid: int
    rows_rejected: int
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    checks: tuple[RuleCheck, ...] = ()
    valid_dir: str | None = None        # typed canonical rows + lineage, in event_date=… folders
    rejected_path: str | None = None    # canonical text + lineage + reason


@dataclass(frozen=True)
class Rule:
    name: str
    expectation: str
    column: str
    clause: str
    predicate: str          # true when the row FAILS the rule
    params: dict


def load_rules(policy: Policy, suite_path: Path = BILLING_SUITE) -> list[Rule]:
    """Turn the suite's expectations into row-failure predicates over typed columns."""
    suite = json.loads(Path(suite_path).read_text())
    rules = []
    for i, exp in enumerate(suite["expectations"]):
        kind, kw = exp["type"], exp["kwargs"]
        col = kw["column"]
        if not policy.is_allowed(col):
            raise ValueError(f"suite expectation {i} names {col!r}, which is not an allowed column")
        p = f"r{i}"
        sql_type = _SQL_TYPES[policy.field(col).type]
        if kind == "expect_column_values_to_not_be_null":
            pred, params = f"{col} IS NULL", {}
        elif kind == "expect_column_values_to_match_regex":
            pred, params = f"{col} IS NOT NULL AND NOT regexp_matches({col}, ${p})", {p: kw["regex"]}
        elif kind == "expect_column_values_to_be_in_set":
            pred, params = f"{col} IS NOT NULL AND NOT list_contains(${p}, {col})", {p: list(kw["value_set"])}
        elif kind == "expect_column_values_to_be_between":
            pred = (f"{col} IS NOT NULL AND ({col} < CAST(${p}_lo AS {sql_type})"
                    f" OR {col} > CAST(${p}_hi AS {sql_type}))")
            params = {f"{p}_lo": str(kw["min_value"]), f"{p}_hi": str(kw["max_value"])}
        elif kind == "expect_column_value_lengths_to_be_between":
            pred = f"{col} IS NOT NULL AND length({col}) NOT BETWEEN ${p}_lo AND ${p}_hi"
            params = {f"{p}_lo": int(kw["min_value"]), f"{p}_hi": int(kw["max_value"])}
        else:
            raise ValueError(f"suite expectation {i}: {kind} has no row predicate")
        meta = exp.get("meta", {})
        rules.append(Rule(meta.get("rule", f"{col}_{kind}"), kind, col,
                          meta.get("clause", policy.field(col).clause), pred, params))
    return rules


def typed_select(policy: Policy) -> str:
    """Typed canonical columns plus `_unparseable`: the columns whose text did not cast."""
    casts, checks = [], []
    for f in policy.fields:
        c, t = f.column, _SQL_TYPES[f.type]
        if t == "VARCHAR":
            casts.append(c)
            continue
        cast = f"TRY_CAST({c} AS {t})"
        if t == "DOUBLE":
            cast = f"CASE WHEN isfinite({cast}) THEN {cast} END"
        casts.append(f"{cast} AS {c}")
        checks.append(f"CASE WHEN {c} IS NOT NULL AND {cast} IS NULL THEN '{c}_unparseable' END")
    return ", ".join(casts) + ", concat_ws(',', " + ", ".join(checks) + ") AS _unparseable"


# Rules about what a value *is* (its shape or set): a value failing one is not the billing datum the column
# allows — it may be an e-mail where a number belongs — so quarantine keeps the row, not that value.
_SHAPE_RULES = ("expect_column_values_to_match_regex", "expect_column_values_to_be_in_set",
                "expect_column_value_lengths_to_be_between")


# A failing row's canonical text is kept beside its verdict under this prefix (the verdict's own pass over the
# rows), so its quarantine row is written from the verdict alone.
TEXT_PREFIX = "_text_"


def quarantine_select(policy: Policy, rules: list[Rule]) -> tuple[str, dict]:
    """Canonical text columns of a rejected row (the verdict `v`, its text under TEXT_PREFIX), with values that
    failed a shape rule blanked.

    Ranges (a 90 000 s call) stay readable for review; values that failed a
    shape rule or a type cast, or hold a line break (a record that swallowed
    the next line), become NULL. The reason names the rule either way.
    """
    exprs, params = [], {}
    for i, column in enumerate(policy.allowed_columns):
        names = [r.name for r in rules if r.column == column and r.expectation in _SHAPE_RULES]
        params[f"m{i}"] = [*names, f"{column}_unparseable"]
        text = f"v.{TEXT_PREFIX}{column}"
        exprs.append(f"CASE WHEN list_has_any(v.reasons, $m{i}) OR contains({text}, chr(10))"
                     f" OR contains({text}, chr(13)) THEN NULL ELSE {text} END AS {column}")
    return ", ".join(exprs), params


def run_name_of(source_sha256: str) -> str:
    """The GX run name of a file's validation: its sha256's head, never a string that reads as a date."""
    return f"file-{source_sha256[:16]}"


def build_night_docs(docs_dir: Path, source_sha256s: Collection[str], suite_path: Path = BILLING_SUITE) -> int:
    """The Data Docs pages of the files validated in a night (named by their sha256) and the site's index,
    built once for the night; returns the pages rendered."""
    return build_data_docs(docs_dir, suite_path, [run_name_of(sha) for sha in source_sha256s])


def validate_staged(staged_path: str, policy: Policy, work_dir: Path, *, source_sha256: str, run_id: str,
                    numbering: LineNumbering = LineNumbering(), suite_path: Path = BILLING_SUITE,
                    docs_dir: Path | None = None) -> ValidationResult:
    """Validate one staged file; write its valid and rejected rows under `work_dir`.

    `numbering` is ingest's: how a staged row's first physical line follows from its row number.
    """
    rules = load_rules(policy, suite_path)
    db = work_dir / "validate.duckdb"
    remove_database(db)
    params = {"staged": staged_path, "sha": source_sha256, "run_id": run_id}
    con = connect(work_dir / "tmp", str(db))
    try:
        # Views, not tables: GX and the routing below read the staged Parquet directly instead of a
        # copy of it inside DuckDB (saves ~6 s per 4.5M rows).
        con.execute(f"""
            CREATE VIEW staged AS
            SELECT {numbering.source_row()} AS source_row, *
            FROM read_parquet({sql_literal(staged_path)}, file_row_number = true)""")
        con.execute(f"CREATE VIEW candidate AS SELECT source_row, {typed_select(policy)}, {INGEST_FLAG} FROM staged")
        # The same rows with their text too: the verdict keeps a failing row's text, so its quarantine row needs
        # no second pass over the staged file (a full read at 4.5M rows, for a few dozen rows).
        text = ", ".join(f"s.{c} AS {TEXT_PREFIX}{c}" for c in policy.allowed_columns)
        con.execute(f"CREATE VIEW checked AS SELECT s.source_row, {typed_select(policy)}, s.{INGEST_FLAG}, {text}"
                    " FROM staged s")
        rows_in = con.execute("SELECT count(*) FROM candidate").fetchone()[0]
    finally:
        con.close()
    # "file-" first: GX's Data Docs read a run name of digits only (1 sha256 in ~1,850 starts with 16 of them)
    # as a date, and fail on it.
    outcomes = run_suite(db, "candidate", suite_path, docs_dir=docs_dir, run_name=run_name_of(source_sha256))

    con = connect(work_dir / "tmp", str(db))
    try:
        # Repeats of a whole source record inside one file (judged on every field, so two ring legs that
        # differ only in a column the format does not keep are not repeats): the first copy stays.
        con.execute(f"""
            CREATE TEMP TABLE repeats AS
            SELECT source_row FROM staged
            QUALIFY row_number() OVER (PARTITION BY {RECORD_DIGEST} ORDER BY source_row) > 1""")
        rule_params = {k: v for r in rules for k, v in r.params.items()}
        reasons = ", ".join(f"CASE WHEN {r.predicate} THEN '{r.name}' END" for r in rules)
        # The reasons list is built only for rows failing something (the WHERE: a reason of the list is set
        # exactly when its condition holds); building it for every row cost ~10% of this statement's CPU.
        fails = " OR ".join(["_unparseable <> ''", f"{INGEST_FLAG} IS NOT NULL", *(f"({r.predicate})" for r in rules),
                             "r.source_row IS NOT NULL"])
        execute(con, f"""
            CREATE TEMP TABLE verdict AS
            SELECT c.source_row, {", ".join(f"c.{TEXT_PREFIX}{col}" for col in policy.allowed_columns)},
                   list_filter(list_concat(
                       CASE WHEN _unparseable = '' THEN [] ELSE string_split(_unparseable, ',') END,
                       [{INGEST_FLAG}],
                       [{reasons}],
                       [CASE WHEN r.source_row IS NOT NULL THEN '{DUPLICATE}' END]), lambda x: x IS NOT NULL) AS reasons
            FROM checked c LEFT JOIN repeats r USING (source_row)
            WHERE {fails}""", rule_params)
        by_reason = dict(con.execute(
            "SELECT reason, count(*) FROM (SELECT unnest(reasons) AS reason FROM verdict) GROUP BY reason"
        ).fetchall())
        rows_rejected = con.execute("SELECT count(*) FROM verdict").fetchone()[0]
        valid_dir, rejected_path = work_dir / "valid", work_dir / "rejected.parquet"
        canon = ", ".join(policy.allowed_columns)
        masked, mask_params = quarantine_select(policy, rules)
        # Valid rows, laid out as the billing zone is (event_date=…/part.parquet, the date in the path):
        # one plain COPY per day is about twice as fast as PARTITION_BY here. Rows are named by source_row
        # and record_id; their order inside a part file is not part of the contract.
        remove_tree(valid_dir)
        valid_dir.mkdir(parents=True)
        days = con.execute("SELECT DISTINCT CAST(start_time AS DATE) FROM candidate"
                           " ANTI JOIN verdict USING (source_row) ORDER BY 1").fetchall()
        for (day,) in days:
            out = valid_dir / f"event_date={day.isoformat()}" / "part.parquet"
            out.parent.mkdir()
            execute(con, f"""
                COPY (
                    SELECT md5($sha || ':' || source_row) AS record_id,
                           $sha AS source_file_sha256, source_row, $run_id AS run_id, {canon}
                    FROM candidate c ANTI JOIN verdict v USING (source_row)
                    WHERE CAST(c.start_time AS DATE) = $day
                ) TO $dst (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {BILLING_ZSTD_LEVEL},
                           DICTIONARY_SIZE_LIMIT {PART_DICTIONARY_ENTRIES})""",
                    {**params, "day": day, "dst": str(out)})
        execute(con, f"""
            COPY (
                SELECT md5($sha || ':' || v.source_row) AS record_id,
                       $sha AS source_file_sha256, v.source_row, $run_id AS run_id, array_to_string(v.reasons, '; ') AS reason, {masked}
                FROM verdict v
                ORDER BY v.source_row
            ) TO $dst (FORMAT parquet, COMPRESSION zstd)""", {**params, **mask_params, "dst": str(rejected_path)})
    finally:
        con.close()
    remove_database(db)

    by_rule = {o_rule: by_reason.get(o_rule, 0) for o_rule in (r.name for r in rules)}
    checks = tuple(
        RuleCheck(rule=r.name, expectation=r.expectation, column=r.column, clause=r.clause,
                  success=o.success, element_count=o.element_count, unexpected_count=o.unexpected_count,
                  rows_quarantined=by_rule[r.name])
        for r, o in zip(rules, outcomes, strict=True)
    )
    return ValidationResult(
        rows_in=rows_in, rows_valid=rows_in - rows_rejected, rows_rejected=rows_rejected,
        rejected_by_reason=by_reason, checks=checks,
        valid_dir=str(valid_dir), rejected_path=str(rejected_path) if rows_rejected else None,
    )
