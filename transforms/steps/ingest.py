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
from transforms.lake.connection import connect
from transforms.lake.permissions import make_dirs
from transforms.policy import Policy
from transforms.privacy.redact import safe_error, safe_name
from transforms.steps.lines import FileShape, Layout, fingerprint, header_lines
from transforms.steps.reading import (HEAD_BYTES, DelimitedRead, LineNumbering, stage_delimited, staging_query,
                                      write_staged)


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
    rows_read: int = 0              # records seen = staged + unparseable + refused (never the header)
    rows_staged: int = 0
    rows_unparseable: int = 0
    rows_refused: int = 0           # a file refused whole: its lines less the header, none of them kept
    unparseable_by_reason: dict[str, int] = field(default_factory=dict)
    staged_path: str | None = None   # canonical columns, VARCHAR
    unparseable_path: str | None = None  # (source_row, reason) only
    numbering: LineNumbering = LineNumbering()   # a staged row's first physical line, from its row number
    line_endings: str | None = None  # lf | crlf | cr | mixed (read from an LF copy when cr or mixed)
    encoding: str | None = None     # utf-8, or latin-1 when a record held a byte that is not UTF-8


def ingest_file(path: Path, policy: Policy, formats: FormatCatalog, work_dir: Path, *, shape: FileShape | None = None,
                format_override: str | None = None, timezone: str | None = None) -> IngestResult:
    """Stage one landing file as canonical rows under `work_dir`.

    `shape` (sha256, physical lines, line endings) comes from the night's plan; it is taken here when not
    given. `format_override` forces a format by name; `timezone` overrides the format's for this file.
    """
    path = Path(path)
    shape = shape or fingerprint(path)
    size = path.stat().st_size
    base = dict(file_name=safe_name(path.name, 120), sha256=shape.sha256, bytes=size,
                line_endings=shape.line_endings)
    if size == 0:
        return IngestResult(**base, status="empty", reason="file is empty (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    if size <= len(head) and not head.strip():
        # Blank lines are not records (README "How a file is read"): a file of nothing else is empty like a
        # 0-byte one, not refused whole with its blank lines counted as rows read (docs/design.md §9).
        return IngestResult(**base, status="empty", reason="no data rows (blank lines only)")
    is_parquet = head[:4] == b"PAR1"
    make_dirs(work_dir)
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
                                source_columns=tuple(safe_name(c) for c in parquet_columns or ()),
                                **_records_refused(shape, head, detection, parquet_columns))
        return _stage(con, path, policy, work_dir, detection, base, safe_cols, shape, head, timezone)
    finally:
        con.close()


def _stage(con: duckdb.DuckDBPyConnection, path: Path, policy: Policy, work_dir: Path, detection: Detection,
           base: dict, safe_cols: tuple[str, ...], shape: FileShape, head: bytes,
           timezone: str | None) -> IngestResult:
    fmt = detection.format
    assert fmt is not None
    staged = work_dir / "staged.parquet"
    renderer = Renderer(fmt, detection.source_columns, policy.operator, timezone)
    select = staging_select(renderer, policy)
    n = len(detection.source_columns)
    layout = Layout(n, fmt.header, detection.delimiter, detection.quote, fmt.comment_prefix)
    try:
        if fmt.container == "parquet":
            read = _stage_parquet(con, path, n, select, renderer.params, staged)
        else:
            read = stage_delimited(con, path, shape, work_dir, layout, select, renderer.read_positions,
                                   renderer.params, staged, head)
    except duckdb.Error as exc:
        return IngestResult(**base, status="rejected_file", profile=fmt.name, source_columns=safe_cols,
                            reason=f"unreadable ({safe_error(exc)})", **_records_refused(shape, head, detection, None))
    total = read.rows_staged + read.rows_unparseable
    return IngestResult(
        **base,
        status="staged" if total else "empty",
        reason="" if total else "no data rows",
        profile=fmt.name,
        source_columns=safe_cols,
        rows_read=total,
        rows_staged=read.rows_staged,
        rows_unparseable=read.rows_unparseable,
        unparseable_by_reason=read.unparseable_by_reason,
        staged_path=str(staged),
        unparseable_path=read.unparseable_path,
        numbering=read.numbering,
        encoding=read.encoding,
    )


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path, n: int, select: str, params: dict,
                   staged: Path) -> DelimitedRead:
    """A Parquet source: its columns bound by position too (aliased c0, c1 … on read); a row's
    `source_row` is its row number, and its digest covers every column."""
    source = "read_parquet($src) AS t({})".format(", ".join(f"c{i}" for i in range(n)))
    rows = write_staged(con, staging_query(select, source, n), {**params, "src": str(path)}, staged)
    return DelimitedRead(rows_staged=rows, rows_unparseable=0)


def _records_refused(shape: FileShape, head: bytes, detection: Detection, parquet_columns) -> dict[str, int]:
    """rows_read and rows_refused of a file refused whole: its physical lines less the header, when it
    has one (a format's header, or a first line that reads as column names). Parquet: not counted."""
    if parquet_columns is not None or not shape.lines:
        return {}
    fmt = detection.format
    has_header = fmt.header if fmt is not None else detection.header_seen
    layout = Layout(len(detection.source_columns) or 1, has_header, detection.delimiter, detection.quote)
    n = max(shape.lines - header_lines(head, layout), 0)
    return {"rows_read": n, "rows_refused": n}


def staging_select(renderer: Renderer, policy: Policy) -> str:
    """SELECT list producing every allowed canonical column as VARCHAR, by the format's derivations.

    Source columns are bound by position (c0, c1 …): only names the format itself defines reach the SQL,
    never a name read from the file; values the format declares are bound parameters.
    """
    return ", ".join(renderer.canonical(column) for column in policy.allowed_columns)
