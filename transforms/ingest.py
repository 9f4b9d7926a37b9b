"""Step 1 — ingest: one landing file → staged canonical rows.

Detects the source profile, then streams the file through DuckDB into a
staged Parquet file holding only the canonical billing columns the policy
allows (as text; validate types them). Columns off the list are never read
into the output. Records that cannot be parsed (wrong column count, broken
quoting, invalid UTF-8, over-long lines) are counted and listed by line with
a reason, never with their content.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from transforms import lake as lake_mod
from transforms.policy import Policy
from transforms.profiles import UTC_TEXT, Detection, Profile, detect
from transforms.redact import safe_error, safe_name

HEAD_BYTES = 1 << 16
MAX_LINE_BYTES = 2 << 20  # longer records are rejected, not read
# Technical columns of staged files only (never reach a zone): a whole-record fault for validate to
# quarantine, and how many physical lines the record took (for the line accounting below).
INGEST_FLAG = "_ingest_flag"
RECORD_LINES = "_record_lines"
STAGING_TECHNICAL = (INGEST_FLAG, RECORD_LINES)
SPANS_LINES = "record_spans_lines"
SWALLOWED = "unparseable: unterminated quote (line swallowed by the reader)"


@dataclass(frozen=True)
class IngestResult:
    """What ingest did with one file."""

    file_name: str                  # sanitized display name
    sha256: str
    bytes: int
    status: str                     # staged | empty | rejected_file
    reason: str = ""
    profile: str | None = None
    source_columns: tuple[str, ...] = ()   # sanitized, in file order
    rows_read: int = 0              # records seen = rows_staged + rows_unparseable
    rows_staged: int = 0
    rows_unparseable: int = 0
    unparseable_by_reason: dict[str, int] = field(default_factory=dict)
    staged_path: str | None = None   # canonical columns, VARCHAR
    unparseable_path: str | None = None  # (source_line, reason) only


def fingerprint(path: Path) -> tuple[str, int | None]:
    """sha256 and physical line count of a file, in one streaming pass (lines: None for Parquet)."""
    h, lines, first, last = hashlib.sha256(), 0, b"", b"\n"
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            first = first or chunk[:4]
            h.update(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return h.hexdigest(), (None if first == b"PAR1" else lines + (last != b"\n"))


def file_sha256(path: Path) -> str:
    return fingerprint(path)[0]


def ingest_file(path: Path, policy: Policy, work_dir: Path, *, sha256: str | None = None,
                lines: int | None = None, profile_override: str | None = None) -> IngestResult:
    """Stage one landing file as canonical rows under `work_dir`.

    `sha256` and `lines` (physical lines) come from the night's plan; they are
    computed here when not given.
    """
    path = Path(path)
    sha, lines = (sha256, lines) if sha256 else fingerprint(path)
    size = path.stat().st_size
    base = dict(file_name=safe_name(path.name, 120), sha256=sha, bytes=size)
    if size == 0:
        return IngestResult(**base, status="empty", reason="file is empty (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    is_parquet = head[:4] == b"PAR1"
    work_dir.mkdir(parents=True, exist_ok=True)
    con = lake_mod.connect(work_dir / "tmp")
    # Row position is identity here (source_row, record_id). Under the parallel CSV scan DuckDB turns an
    # IN list of 5+ constants (e.g. the Asterisk direction mapping) into a hash join that loses order.
    con.execute("SET disabled_optimizers = 'in_clause'")
    try:
        if is_parquet:
            try:
                cols = tuple(d[0] for d in con.execute(
                    "SELECT * FROM read_parquet($p) LIMIT 0", {"p": str(path)}).description)
            except duckdb.Error as exc:
                return IngestResult(**base, status="rejected_file", reason=f"unreadable Parquet ({safe_error(exc)})")
            detection = detect(b"", is_parquet_columns=cols, override=profile_override)
        else:
            detection = detect(head, override=profile_override)
        safe_cols = tuple(safe_name(c) for c in detection.source_columns)
        if detection.profile is None:
            return IngestResult(**base, status="rejected_file", reason=detection.reason,
                                source_columns=safe_cols if is_parquet else ())
        return _stage(con, path, policy, work_dir, detection, base, safe_cols, is_parquet, lines)
    finally:
        con.close()


def _stage(con: duckdb.DuckDBPyConnection, path: Path, policy: Policy, work_dir: Path,
           detection: Detection, base: dict, safe_cols: tuple[str, ...], is_parquet: bool,
           lines: int | None) -> IngestResult:
    profile = detection.profile
    assert profile is not None
    staged = work_dir / "staged.parquet"
    select = staging_select(profile, detection.source_columns, policy)
    params = {"src": str(path), "dst": str(staged), "local_tz": policy.operator.local_timezone,
              "home_plmns": list(policy.operator.home_plmns)}
    n = len(detection.source_columns)
    if is_parquet:
        # Parquet columns are bound by position too: alias them c0, c1 … on read.
        source = "read_parquet($src) AS t({})".format(", ".join(f"c{i}" for i in range(n)))
        technical = f"CAST(NULL AS VARCHAR) AS {INGEST_FLAG}, 1 AS {RECORD_LINES}"
    else:
        source = csv_source(n, profile.header)
        technical = ingest_flag_select(n)
    try:
        staged_rows = lake_mod.execute(
            con, f"COPY (SELECT {select}, {technical} FROM {source}) TO $dst (FORMAT parquet, COMPRESSION zstd)",
            params).fetchone()[0]
    except duckdb.Error as exc:
        return IngestResult(**base, status="rejected_file", profile=profile.name, source_columns=safe_cols,
                            reason=f"unreadable ({safe_error(exc)})")
    unparseable_path = None
    by_reason: dict[str, int] = {}
    rejected = 0
    if not is_parquet:
        header_lines = 1 + sum(c.count("\n") for c in detection.source_columns) if profile.header else 0
        rejected, by_reason, unparseable_path = collect_unparseable(con, path, str(staged), work_dir, lines,
                                                                    header_lines)
    total = staged_rows + rejected
    return IngestResult(
        **base,
        status="staged" if total else "empty",
        reason="" if total else "no data rows",
        profile=profile.name,
        source_columns=safe_cols,
        rows_read=total,
        rows_staged=staged_rows,
        rows_unparseable=rejected,
        unparseable_by_reason=by_reason,
        staged_path=str(staged),
        unparseable_path=unparseable_path,
    )


def csv_source(n_columns: int, header: bool) -> str:
    """`read_csv` over the file bound as `$src`: fields c0, c1 … all VARCHAR, strict, rejects stored.

    Strict mode and the stored rejects are what let `collect_unparseable` account for every line.
    """
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n_columns)) + "}"
    return (
        "read_csv($src, header = {h}, auto_detect = false, delim = ',', quote = '\"', escape = '\"',"
        " columns = {cols}, store_rejects = true, strict_mode = true, encoding = 'utf-8',"
        " max_line_size = {mls}, parallel = true)"
    ).format(h="true" if header else "false", cols=columns, mls=MAX_LINE_BYTES)


def collect_unparseable(con: duckdb.DuckDBPyConnection, path: Path, staged_path: str, work_dir: Path,
                        lines: int | None, header_lines: int) -> tuple[int, dict[str, int], str | None]:
    """Records of a `csv_source` read that did not parse: (count, count by reason, Parquet path or None).

    Call it on the connection that ran the read (its `reject_errors`); `staged_path` holds the parsed
    records with `_record_lines`. Lines the reader skipped without a reject are counted too.
    """
    # One rejected record may raise several errors; count it once, by its first line.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE unparseable AS SELECT line AS source_line,"
        " 'unparseable: ' || string_agg(DISTINCT lower(error_type), ', ' ORDER BY lower(error_type)) AS reason"
        " FROM reject_errors GROUP BY line"
    )
    if lines is None:   # the caller gave the sha256 but not the line count
        lines = fingerprint(path)[1]
    accounted = header_lines + con.execute(
        f"SELECT (SELECT coalesce(sum({RECORD_LINES}), 0) FROM read_parquet($dst))"
        " + (SELECT count(*) FROM unparseable)", {"dst": staged_path}).fetchone()[0]
    if accounted < lines:
        # The reader skipped lines without a reject: blank lines (harmless) or the tail after a
        # quote that never closed (data). Count them exactly, only when it happens.
        swallowed = _lines_after_open_quote(path, lines - accounted)
        if swallowed:
            con.execute("INSERT INTO unparseable SELECT range, $r FROM range($a, $b)",
                        {"r": SWALLOWED, "a": lines - swallowed + 1, "b": lines + 1})
    rejected = con.execute("SELECT count(*) FROM unparseable").fetchone()[0]
    by_reason = dict(con.execute("SELECT reason, count(*) FROM unparseable GROUP BY reason").fetchall())
    unparseable_path = None
    if rejected:
        unparseable_path = str(work_dir / "unparseable.parquet")
        con.execute("COPY (SELECT * FROM unparseable ORDER BY source_line) TO $dst (FORMAT parquet)",
                    {"dst": unparseable_path})
    return rejected, by_reason, unparseable_path


def _lines_after_open_quote(path: Path, missing: int) -> int:
    """Of `missing` lines the reader skipped silently, how many were data (not blank)."""
    blank = 0
    with open(path, "rb") as fh:
        for line in fh:
            blank += not line.strip()
    return max(missing - blank, 0)


def ingest_flag_select(n_columns: int) -> str:
    """`_ingest_flag` and `_record_lines`, computed over every source column, kept or not.

    Reading every column matters twice: DuckDB checks encoding only in the
    columns it parses, so a mis-encoded byte in a dropped column is rejected
    here rather than passing unseen; and a line break inside a field means a
    quote was left open and swallowed the next line, which a CDR never
    legitimately does.
    """
    whole = "concat_ws(chr(31), {})".format(", ".join(f"c{i}" for i in range(n_columns)))
    return (f"CASE WHEN contains({whole}, chr(10)) OR contains({whole}, chr(13))"
            f" THEN '{SPANS_LINES}' END AS {INGEST_FLAG},"
            f" 1 + length({whole}) - length(replace({whole}, chr(10), '')) AS {RECORD_LINES}")


def staging_select(profile: Profile, source_columns: tuple[str, ...], policy: Policy) -> str:
    """SELECT list producing every allowed canonical column as VARCHAR.

    Source columns are bound by position (c0, c1 …): only names the profile
    itself defines reach the SQL, never a name read from the file.
    """
    position = {}
    for i, name in enumerate(source_columns):
        position.setdefault(name.strip(), i)
    exprs = []
    for column in policy.allowed_columns:
        template = profile.mapping.get(column)
        if template is None:
            exprs.append(f"CAST(NULL AS VARCHAR) AS {column}")
            continue
        needed = _placeholders(template)
        if any(n not in position for n in needed):
            exprs.append(f"CAST(NULL AS VARCHAR) AS {column}")
            continue
        expr = template.format(**{n: f"NULLIF(trim(CAST(c{position[n]} AS VARCHAR)), '')" for n in needed})
        if column == "start_time":
            # Normalize to UTC text; keep the raw text when it does not parse so validate rejects the row.
            raw = expr
            expr = "COALESCE({utc}, {raw})".format(
                utc=UTC_TEXT.format(ts=profile.time_expr.format(v=raw)), raw=raw)
        exprs.append(f"CAST({expr} AS VARCHAR) AS {column}")
    return ", ".join(exprs)


def _placeholders(template: str) -> list[str]:
    return sorted(set(re.findall(r"\{(\w+)\}", template)))
