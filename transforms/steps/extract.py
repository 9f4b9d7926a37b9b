"""A fixed-header extract validated by set-based rules into one zone and quarantine (docs/design.md §9).

The payments extract (`steps/payments.py`) and the consent extract (`steps/consents.py`) are the same kind
of file: CSV with one exact header, from another system of the operator, not CDRs (no field check, no CDR
suite, no analytics). Each module declares what is its own (`Extract`: the header, the typed values, the
rules, the duplicate key, the zone and the row it writes there); this module does the rest:

* recognition: the header says so (renamed files still work), or the file's name does; a file named as
  an extract without its header is refused whole, never read as CDRs;
* reading: strictly, every field as text (ingest's reader, `stage_delimited`), so a line that does not
  parse is quarantined by line with a reason, never with its content;
* the verdict: every rule is a SQL predicate over the typed rows, each failure with its reason, nothing
  stops at the first; the first row of a duplicate key stays, later ones are duplicates;
* the commit: valid rows per partition of the zone, failing rows to `quarantine/night=…/` with their
  reasons and the failing values blanked; parts named by the file's sha256, so the same file loaded again
  replaces its rows. Every row read ends in exactly one of the two, and the counts prove it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from transforms.formats.recognize import head_text, looks_like_header, records
from transforms.lake import Lake
from transforms.lake.connection import connect, execute
from transforms.lake.partitions import write_partitioned
from transforms.lake.permissions import make_dirs
from transforms.policy import Policy
from transforms.privacy.numbers import numbering_params
from transforms.privacy.redact import safe_error, safe_name
from transforms.steps.lines import FileShape, Layout, fingerprint
from transforms.steps.reading import HEAD_BYTES, INGEST_FLAG, LineNumbering, stage_delimited

# reason, predicate over a typed row (true when the row FAILS), the source column whose value is blanked in
# quarantine (None: no one value is at fault). Constants only: values reach the SQL as bound parameters.
Rule = tuple[str, str, str | None]


def not_e164(typed_number: str) -> str:
    """The predicate of a number (already through `e164_sql`) that is no E.164 number: billing, payments and
    consents alike, so their numbers join."""
    return f"{typed_number} IS NULL OR NOT regexp_full_match({typed_number}, '[+][1-9][0-9]{{6,14}}')"


@dataclass(frozen=True)
class Extract:
    """What one kind of extract is; everything else about landing it is shared (this module)."""

    profile: str                        # `source_files.profile` of its files; also a `--format` override
    columns: tuple[str, ...]            # the header, exactly, in order; every field is read as text
    file_name: re.Pattern               # a file named so takes this step, whatever its header
    not_this: str                       # why a file so named without the header is refused whole
    zone: str                           # where valid rows go
    partition: str                      # the zone's partition column (the last column of `output`)
    typed: dict[str, str]               # name -> SQL typing the row's text columns (NULL: missing or malformed)
    rules: tuple[Rule, ...]
    duplicate: str                      # reason of a row repeating an earlier row's `duplicate_key`
    duplicate_key: tuple[str, ...]      # columns of `typed` rows; a key with a NULL part repeats nothing
    output: str                         # the zone's columns after record_id, over `typed` (binds $sha,
                                        # $night, $run_id and the parameters), ending in `partition`
    parameters: Callable[[Policy], dict] = lambda _policy: {}    # the rules' bound values, from the policy

    def is_header(self, head: bytes) -> bool:
        """True when the first record of `head` is exactly this extract's header."""
        first = next(iter(records(head_text(head), ",", limit=1)), None)
        return first is not None and tuple(n.strip() for n in first) == self.columns

    def claims(self, head: bytes, file_name: str) -> bool:
        """A file for this step: its header says so (renamed files still work), or its name does.

        A file so named without the header goes there too, and the step refuses it: an extract that says
        it is one but is not must not be read as CDRs.
        """
        return self.is_header(head) or bool(self.file_name.match(file_name))


@dataclass(frozen=True)
class ExtractResult:
    """What an extract step did with one file."""

    file_name: str                  # sanitized display name
    sha256: str
    status: str                     # loaded | empty | rejected_file
    reason: str = ""
    rows_read: int = 0              # = rows_loaded + rows_quarantined
    rows_loaded: int = 0            # rows committed to the extract's zone
    rows_quarantined: int = 0
    # rows_quarantined by why, each row once: a line the reader could not parse, a row repeating an earlier
    # one's key (whatever else is wrong with it), or else a failed check (docs/design.md §9)
    rows_unparseable: int = 0
    rows_duplicate: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)  # a row with two faults counts twice
    rows_by_partition: dict[str, int] = field(default_factory=dict)
    zone_files: tuple[str, ...] = ()         # relative to the lake root
    quarantine_files: tuple[str, ...] = ()


def load_extract(extract: Extract, path: Path, policy: Policy, lake: Lake, work_dir: Path, *, night: str,
                 run_id: str, shape: FileShape | None = None, result: type[ExtractResult] = ExtractResult):
    """Validate one extract file; commit its valid rows to the extract's zone, its failing rows to quarantine.

    `shape` (sha256, physical lines, line endings) comes from the night's plan; it is taken when not given.
    `result` is the type returned (an `ExtractResult`, or a step's own subclass of it).
    """
    path = Path(path)
    shape = shape or fingerprint(path)
    lines = shape.lines
    base = dict(file_name=safe_name(path.name, 120), sha256=shape.sha256)
    if path.stat().st_size == 0:
        return result(**base, status="empty", reason="file is empty (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    if path.stat().st_size <= len(head) and not head.strip():
        # Blank lines are not records (README "How a file is read"): empty, as steps/ingest.py says of CDR files.
        return result(**base, status="empty", reason="no data rows (blank lines only)")
    if not extract.is_header(head):
        first = next(iter(records(head_text(head), ",", limit=1)), [])
        return _refused(result, base, extract.not_this, lines, header_lines=int(looks_like_header(first)))
    make_dirs(work_dir)
    staged = work_dir / f"{extract.profile}_staged.parquet"
    con = connect(work_dir / "tmp")
    con.execute("SET disabled_optimizers = 'in_clause'")   # row position is identity (see ingest)
    try:
        names = ", ".join(f"c{i} AS {c}" for i, c in enumerate(extract.columns))
        layout = Layout(len(extract.columns), header=True)
        try:
            read = stage_delimited(con, path, shape, work_dir, layout, names, range(len(extract.columns)), {},
                                   staged, head)
        except duckdb.Error as exc:
            return _refused(result, base, f"unreadable ({safe_error(exc)})", lines, header_lines=1)
    finally:
        con.close()
    if read.rows_staged + read.rows_unparseable == 0:
        return result(**base, status="empty", reason="no data rows")
    return _route(extract, result, staged, read.unparseable_path, policy, lake, work_dir, base, night=night,
                  run_id=run_id, rows_read=read.rows_staged + read.rows_unparseable,
                  rows_unparseable=read.rows_unparseable, by_reason=dict(read.unparseable_by_reason),
                  numbering=read.numbering)


def _refused(result: type[ExtractResult], base: dict, reason: str, lines: int | None, header_lines: int = 0):
    """A whole file refused: its records (lines less the header) count as read and refused; no zone
    holds any of it."""
    n = max((lines or 0) - header_lines, 0)
    return result(**base, status="rejected_file", reason=reason, rows_read=n, rows_quarantined=n,
                  quarantined_by_reason={reason: n} if n else {})


def _route(extract: Extract, result: type[ExtractResult], staged: Path, unparseable_path: str | None,
           policy: Policy, lake: Lake, work_dir: Path, base: dict, *, night: str, run_id: str, rows_read: int,
           rows_unparseable: int, by_reason: dict[str, int], numbering: LineNumbering):
    sha = base["sha256"]
    columns = extract.columns
    params = {"staged": str(staged), "sha": sha, "night": night, "run_id": run_id,
              **numbering_params(policy.operator), **extract.parameters(policy), "unparseable": unparseable_path}
    text = ", ".join(f"NULLIF(trim({c}), '') AS {c}" for c in columns)
    typed = ", ".join(f"{expr} AS {name}" for name, expr in extract.typed.items())
    reasons = ", ".join(f"CASE WHEN {pred} THEN '{reason}' END" for reason, pred, _ in extract.rules)
    key = ", ".join(extract.duplicate_key)
    key_present = " AND ".join(f"{k} IS NOT NULL" for k in extract.duplicate_key)
    con = connect(work_dir / "tmp")
    try:
        execute(con, f"""
            CREATE TEMP TABLE candidate AS
            SELECT {numbering.source_row()} AS source_row, {text}, {INGEST_FLAG}
            FROM read_parquet($staged, file_row_number = true)""", params)
        execute(con, f"CREATE TEMP TABLE typed AS SELECT *, {typed} FROM candidate", params)
        # The first row of a key stays; later rows with the same key are duplicates.
        execute(con, f"""
            CREATE TEMP TABLE verdict AS
            SELECT source_row, reasons FROM (
                SELECT source_row, list_filter([{INGEST_FLAG}, {reasons},
                    CASE WHEN {key_present} AND row_number() OVER (
                        PARTITION BY {key} ORDER BY source_row) > 1 THEN '{extract.duplicate}' END],
                    lambda x: x IS NOT NULL) AS reasons
                FROM typed)
            WHERE len(reasons) > 0""", params)
        by_rule = dict(con.execute("SELECT reason, count(*) FROM (SELECT unnest(reasons) AS reason FROM verdict)"
                                   " GROUP BY reason").fetchall())
        for reason, n in by_rule.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
        # Straight into the zone's partitions: written once (a file of its own first cost a second write).
        kept = write_partitioned(con, f"""
                SELECT md5($sha || ':' || source_row) AS record_id, {extract.output}
                FROM typed ANTI JOIN verdict USING (source_row)
                ORDER BY source_row""", params, lake, extract.zone, extract.partition, work_dir, sha)
        blank_params = {f"b{i}": [r for r, _, col in extract.rules if col == c] for i, c in enumerate(columns)}
        # Values that failed their rule, or hold a line break (a record that swallowed the next line), go blank.
        blanked = ", ".join(
            f"CASE WHEN list_has_any(v.reasons, $b{i}) OR contains(c.{c}, chr(10)) OR contains(c.{c}, chr(13))"
            f" THEN NULL ELSE c.{c} END AS {c}" for i, c in enumerate(columns))
        parts = [f"""
            SELECT c.source_row, array_to_string(v.reasons, '; ') AS reason,
                   md5($sha || ':' || c.source_row) AS record_id, {blanked}
            FROM candidate c JOIN verdict v USING (source_row)"""]
        if unparseable_path:
            nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in columns)
            parts.append(f"""
                SELECT source_row, reason, md5($sha || ':' || source_row), {nulls}
                FROM read_parquet($unparseable)""")
        quarantine = write_partitioned(con, f"""
                SELECT CAST($night AS DATE) AS night, record_id, $sha AS source_file_sha256, source_row,
                       $run_id AS run_id, reason, '{extract.zone}' AS dataset, {', '.join(columns)}
                FROM ({' UNION ALL '.join(parts)})
                ORDER BY source_row""", {**params, **blank_params}, lake, "quarantine", "night", work_dir, sha)
    finally:
        con.close()
    quarantined = quarantine.rows_written
    if rows_read != kept.rows_written + quarantined:
        raise AssertionError(f"{extract.profile} row conservation broken")  # never expected; the file is recorded failed
    return result(**base, status="loaded", rows_read=rows_read, rows_loaded=kept.rows_written,
                  rows_quarantined=quarantined, rows_unparseable=rows_unparseable,
                  rows_duplicate=by_rule.get(extract.duplicate, 0), quarantined_by_reason=by_reason,
                  rows_by_partition=kept.rows_by_partition, zone_files=kept.files, quarantine_files=quarantine.files)
