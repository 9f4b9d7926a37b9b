"""Step 1 — ingest: one landing file → staged canonical rows.

Recognises the file's source format (`transforms.formats`: data, not code), then streams the file through
DuckDB into a staged Parquet file holding only the canonical billing columns the policy allows (as text;
validate types them), each made by the format's derivation. Columns off the list are never read into
the output. Records that cannot be parsed (wrong column count, broken quoting, invalid UTF-8, over-long
lines) are counted and listed by line with a reason, never with their content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from transforms.formats import FormatCatalog
from transforms.formats.expressions import Renderer
from transforms.formats.recognize import Detection, detect
from transforms.lake.connection import connect, execute
from transforms.policy import Policy
from transforms.privacy.redact import safe_error, safe_name
from transforms.steps.reading import (HEAD_BYTES, INGEST_FLAG, RECORD_LINES, collect_unparseable, csv_source,
                                      fingerprint, header_lines, ingest_flag_select)


@dataclass(frozen=True)
class IngestResult:
    """What ingest did with one file."""

    file_name: str                  # sanitized display name
    sha256: str
    bytes: int
    status: str                     # staged | empty | rejected_file
    reason: str = ""
    profile: str | None = None      # the source format's name (source_files.profile)
    source_columns: tuple[str, ...] = ()   # sanitized, in file order
    rows_read: int = 0              # records seen = rows_staged + rows_unparseable
    rows_staged: int = 0
    rows_unparseable: int = 0
    unparseable_by_reason: dict[str, int] = field(default_factory=dict)
    staged_path: str | None = None   # canonical columns, VARCHAR
    unparseable_path: str | None = None  # (source_line, reason) only


def ingest_file(path: Path, policy: Policy, formats: FormatCatalog, work_dir: Path, *, sha256: str | None = None,
                lines: int | None = None, format_override: str | None = None,
                timezone: str | None = None) -> IngestResult:
    """Stage one landing file as canonical rows under `work_dir`.

    `sha256` and `lines` (physical lines) come from the night's plan; they are computed here when not
    given. `format_override` forces a format by name; `timezone` overrides the format's for this file.
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
    con = connect(work_dir / "tmp")
    # Row position is identity here (source_row, record_id). Under the parallel CSV scan DuckDB turns an
    # IN list of 5+ constants into a hash join that loses order.
    con.execute("SET disabled_optimizers = 'in_clause'")
    try:
        parquet_columns = None
        if is_parquet:
            try:
                parquet_columns = tuple(d[0] for d in con.execute(
                    "SELECT * FROM read_parquet($p) LIMIT 0", {"p": str(path)}).description)
            except duckdb.Error as exc:
                return IngestResult(**base, status="rejected_file", reason=f"unreadable Parquet ({safe_error(exc)})")
        detection = detect(head, formats, policy, override=format_override, parquet_columns=parquet_columns)
        safe_cols = tuple(safe_name(c) for c in detection.source_columns)
        if detection.format is None:
            return IngestResult(**base, status="rejected_file", reason=detection.reason,
                                source_columns=tuple(safe_name(c) for c in parquet_columns or ()))
        return _stage(con, path, policy, work_dir, detection, base, safe_cols, lines, head, timezone)
    finally:
        con.close()


def _stage(con: duckdb.DuckDBPyConnection, path: Path, policy: Policy, work_dir: Path, detection: Detection,
           base: dict, safe_cols: tuple[str, ...], lines: int | None, head: bytes,
           timezone: str | None) -> IngestResult:
    fmt = detection.format
    assert fmt is not None
    staged = work_dir / "staged.parquet"
    renderer = Renderer(fmt, detection.source_columns, policy.operator, timezone)
    select = staging_select(renderer, policy)
    params = {"src": str(path), "dst": str(staged), **renderer.params}
    n = len(detection.source_columns)
    is_parquet = fmt.container == "parquet"
    if is_parquet:
        # Parquet columns are bound by position too: alias them c0, c1 … on read.
        source = "read_parquet($src) AS t({})".format(", ".join(f"c{i}" for i in range(n)))
        technical = f"CAST(NULL AS VARCHAR) AS {INGEST_FLAG}, 1 AS {RECORD_LINES}"
    else:
        source = csv_source(n, fmt.header, detection.delimiter, fmt.quote)
        technical = ingest_flag_select(n)
    try:
        staged_rows = execute(
            con, f"COPY (SELECT {select}, {technical} FROM {source}) TO $dst (FORMAT parquet, COMPRESSION zstd)",
            params).fetchone()[0]
    except duckdb.Error as exc:
        return IngestResult(**base, status="rejected_file", profile=fmt.name, source_columns=safe_cols,
                            reason=f"unreadable ({safe_error(exc)})")
    unparseable_path = None
    by_reason: dict[str, int] = {}
    rejected = 0
    if not is_parquet:
        # From the file's own first record: detection strips a line break off the end of a name.
        rejected, by_reason, unparseable_path = collect_unparseable(con, path, str(staged), work_dir, lines,
                                                                    header_lines(head, detection.delimiter, fmt.quote) if fmt.header else 0)
    total = staged_rows + rejected
    return IngestResult(
        **base,
        status="staged" if total else "empty",
        reason="" if total else "no data rows",
        profile=fmt.name,
        source_columns=safe_cols,
        rows_read=total,
        rows_staged=staged_rows,
        rows_unparseable=rejected,
        unparseable_by_reason=by_reason,
        staged_path=str(staged),
        unparseable_path=unparseable_path,
    )


def staging_select(renderer: Renderer, policy: Policy) -> str:
    """SELECT list producing every allowed canonical column as VARCHAR, by the format's derivations.

    Source columns are bound by position (c0, c1 …): only names the format itself defines reach the SQL,
    never a name read from the file; values the format declares are bound parameters.
    """
    return ", ".join(renderer.canonical(column) for column in policy.allowed_columns)
