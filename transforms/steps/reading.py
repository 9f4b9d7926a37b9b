"""Reading a delimited landing file: its line endings made plain, its records staged strictly, every
physical line accounted for.

Ingest and the payments step share this reader (docs/design.md §7). `fingerprint` (in the night's plan)
takes the sha256, the physical lines and the line endings in one pass. `stage_delimited` then reads the
file with DuckDB's strict CSV scan, every field as text and rejected records stored, and accounts for
each physical line: a staged record keeps the line it starts on as its `source_row`; a line DuckDB did
not turn into a record is either harmless (a blank or comment line, the header) or quarantined by line
with a reason — never with the line's content.

Faults stay with their line: a file whose line endings are mixed (CRLF, LF, lone CR) is read from a
copy with LF endings (line numbers unchanged); a byte that is not UTF-8 rejects a record only when it
sits in a column the format reads (the file is then read as Latin-1, every byte a character, and the
columns the format reads are decoded back to UTF-8, or flagged `invalid_encoding`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from transforms.formats.recognize import head_text, records
from transforms.lake.connection import execute

HEAD_BYTES = 1 << 16
MAX_LINE_BYTES = 2 << 20  # longer records are rejected, not read
# Technical columns of staged files only (never reach a zone): a whole-record fault for validate to
# quarantine, how many physical lines the record took, a digest of the whole source record (all its
# fields, read or not: duplicates are judged on it), and its first line when not implied by its position.
INGEST_FLAG = "_ingest_flag"
RECORD_LINES = "_record_lines"
RECORD_DIGEST = "_record_digest"
SOURCE_ROW = "_source_row"
STAGING_TECHNICAL = (INGEST_FLAG, RECORD_LINES, RECORD_DIGEST, SOURCE_ROW)
SPANS_LINES = "record_spans_lines"
INVALID_ENCODING = "invalid_encoding"
SWALLOWED = "unparseable: unterminated quote (line swallowed by the reader)"
LINE_ENDINGS = ("lf", "crlf", "cr", "mixed")


@dataclass(frozen=True)
class FileShape:
    """What one streaming pass over a landing file tells: its digest, physical lines and line endings."""

    sha256: str
    lines: int | None            # LF, CRLF and a lone CR each end a line; None for Parquet
    line_endings: str | None     # lf | crlf | cr | mixed; None for Parquet or a file without a line break


@dataclass(frozen=True)
class Layout:
    """How the records of a delimited file are written: a format's declared values or the sniffed ones."""

    n_columns: int
    header: bool
    delimiter: str = ","
    quote: str = '"'
    comment: str | None = None


@dataclass(frozen=True)
class DelimitedRead:
    """What reading one delimited file into a staged Parquet file gave; counts and paths, never content."""

    rows_staged: int
    rows_unparseable: int
    unparseable_by_reason: dict[str, int] = field(default_factory=dict)
    unparseable_path: str | None = None   # (source_row, reason) per line that is not a record
    line_offset: int = 0                  # a staged row without `_source_row` starts on row number + this
    encoding: str = "utf-8"               # latin-1 when some record held a byte that is not UTF-8


def fingerprint(path: Path) -> FileShape:
    """sha256, physical lines and line endings of a file, in one streaming pass."""
    h, lf, cr, crlf, first, last = hashlib.sha256(), 0, 0, 0, b"", b""
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            first = first or chunk[:4]
            h.update(chunk)
            lf, cr, crlf = lf + chunk.count(b"\n"), cr + chunk.count(b"\r"), crlf + chunk.count(b"\r\n")
            crlf += last == b"\r" and chunk[:1] == b"\n"     # a CRLF split between two chunks
            last = chunk[-1:]
    if first == b"PAR1":
        return FileShape(h.hexdigest(), None, None)
    kinds = [kind for kind, n in (("lf", lf - crlf), ("crlf", crlf), ("cr", cr - crlf)) if n]
    endings = kinds[0] if len(kinds) == 1 else ("mixed" if kinds else None)
    unterminated = bool(last) and last not in (b"\n", b"\r")
    return FileShape(h.hexdigest(), lf + cr - crlf + unterminated, endings)


def plain_line_endings(path: Path, shape: FileShape, work_dir: Path) -> Path:
    """The file itself when DuckDB reads its line endings as they are (LF or CRLF throughout); otherwise a
    copy under `work_dir` with every line ending as LF — the same lines, so the same line numbers."""
    if shape.line_endings not in ("cr", "mixed"):
        return path
    out = work_dir / "line_endings_lf.txt"
    with open(path, "rb") as src, open(out, "wb") as dst:
        carry = b""
        for chunk in iter(lambda: src.read(1 << 20), b""):
            chunk, carry = carry + chunk, b""
            if chunk.endswith(b"\r"):                 # maybe the first half of a CRLF
                chunk, carry = chunk[:-1], b"\r"
            dst.write(chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        dst.write(carry.replace(b"\r", b"\n"))
    return out


def header_lines(head: bytes, layout: Layout) -> int:
    """Physical lines the header (the first record of `head`) takes: a quoted name may hold line breaks."""
    if not layout.header:
        return 0
    first = next(iter(records(head_text(head), layout.delimiter, layout.quote, limit=1)), ())
    return 1 + sum(name.count("\n") for name in first)


def _char(c: str) -> str:
    """One character as a SQL literal (a format's declared delimiter, quote or comment prefix)."""
    if len(c) != 1:
        raise ValueError("a delimiter, a quote and a comment prefix are one character each")
    return "'" + c.replace("'", "''") + "'"


def csv_source(layout: Layout, *, encoding: str = "utf-8", rejects: str = "rejects") -> str:
    """`read_csv` over the file bound as `$src`: fields c0, c1 … all VARCHAR, strict, rejects stored in the
    table named `rejects` (a name this module chooses, one per read).

    Strict mode and the stored rejects are what let the line accounting below find every line.
    """
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(layout.n_columns)) + "}"
    comment = f", comment = {_char(layout.comment)}" if layout.comment else ""
    return (
        "read_csv($src, header = {h}, auto_detect = false, delim = {d}, quote = {q}, escape = {q},"
        " columns = {cols}, store_rejects = true, rejects_table = '{r}', rejects_scan = '{r}_scan',"
        " strict_mode = true, encoding = '{enc}', max_line_size = {mls}, parallel = true{comment})"
    ).format(h="true" if layout.header else "false", d=_char(layout.delimiter), q=_char(layout.quote),
             cols=columns, r=rejects, enc=encoding, mls=MAX_LINE_BYTES, comment=comment)


def staging_copy(select: str, source: str, n_columns: int, extra_flag: str = "NULL") -> str:
    """The COPY that stages `SELECT {select}` over `source` (fields c0 … c{n-1}) to `$dst`, with the
    technical columns computed over every source field:

    `_ingest_flag`: a line break inside a field means a quote was left open and swallowed the next line,
    which a CDR never legitimately does, so the record is flagged; `extra_flag` is an SQL expression for
    another whole-record fault (or NULL). `_record_lines`: the physical lines the record took.
    `_record_digest`: md5 of all fields, kept as two 64-bit halves (Parquet has no 128-bit integer).
    `_source_row` stays NULL: the line accounting fills it in only when a record's line is not its
    position plus the header.
    """
    whole = "concat_ws(chr(31), {})".format(", ".join(f"coalesce(CAST(c{i} AS VARCHAR), '')" for i in range(n_columns)))
    return (
        f"COPY (SELECT * EXCLUDE (_md5), {{'hi': CAST(_md5 >> 64 AS UBIGINT),"
        f" 'lo': CAST(_md5 & CAST(18446744073709551615 AS UHUGEINT) AS UBIGINT)}} AS {RECORD_DIGEST},"
        f" CAST(NULL AS BIGINT) AS {SOURCE_ROW}"
        f" FROM (SELECT {select},"
        f"   coalesce(CASE WHEN contains({whole}, chr(10)) OR contains({whole}, chr(13))"
        f"            THEN '{SPANS_LINES}' END, {extra_flag}) AS {INGEST_FLAG},"
        f"   1 + length({whole}) - length(replace({whole}, chr(10), '')) AS {RECORD_LINES},"
        f"   md5_number({whole}) AS _md5"
        f" FROM {source})) TO $dst (FORMAT parquet, COMPRESSION zstd)")


# Latin-1 text back to the UTF-8 it was (NULL when those bytes are not UTF-8); ASCII passes as it is.
_UTF8_OF_LATIN1 = """
    CREATE OR REPLACE TEMP MACRO utf8_of_latin1(s) AS
    CASE WHEN s IS NULL OR length(s) = strlen(s) THEN s
         ELSE try(decode(from_hex(list_reduce(list_transform(string_split(s, ''),
                                                             lambda x: printf('%02x', ord(x))),
                                              lambda a, b: a || b)))) END"""


def stage_delimited(con: duckdb.DuckDBPyConnection, path: Path, shape: FileShape, work_dir: Path, layout: Layout,
                    select: str, read_columns: Collection[int], params: dict, staged: Path,
                    head: bytes) -> DelimitedRead:
    """Stage the records of a delimited file as `SELECT {select}` over its fields c0 … into `staged`, with
    the technical columns, and account for every physical line. `read_columns` are the positions the
    select reads (a byte that is not UTF-8 elsewhere does not reject a record).

    Raises duckdb.Error when the file cannot be read at all.
    """
    source = plain_line_endings(path, shape, work_dir)
    params = {**params, "src": str(source), "dst": str(staged)}
    n = layout.n_columns
    rows = execute(con, staging_copy(select, csv_source(layout), n), params).fetchone()[0]
    rejects, encoding = "rejects", "utf-8"
    if con.execute("SELECT count(*) FROM rejects WHERE error_type = 'INVALID ENCODING'").fetchone()[0]:
        # Read again as Latin-1 (never invalid): records whose odd bytes lie in columns the format does not
        # read load; a column it reads is decoded back to UTF-8, and a record with one that is not UTF-8
        # is flagged for quarantine (validate) instead of being lost as unparseable.
        con.execute(_UTF8_OF_LATIN1)
        used = sorted(set(read_columns))
        decoded = ", ".join(f"utf8_of_latin1(c{i}) AS c{i}" if i in used else f"c{i}" for i in range(n))
        fault = " OR ".join(f"(c{i} IS NOT NULL AND utf8_of_latin1(c{i}) IS NULL)" for i in used) or "false"
        rejects, encoding = "rejects_latin1", "latin-1"
        latin1 = (f"(SELECT {decoded}, CASE WHEN {fault} THEN '{INVALID_ENCODING}' END AS _encoding_fault"
                  f" FROM {csv_source(layout, encoding='latin-1', rejects=rejects)})")
        rows = execute(con, staging_copy(select, latin1, n, "_encoding_fault"), params).fetchone()[0]
    lines = shape.lines if shape.lines is not None else fingerprint(source).lines
    unparseable, by_reason, unparseable_path = _account_lines(
        con, source, rejects, staged, work_dir, lines or 0, header_lines(head, layout), layout)
    return DelimitedRead(rows_staged=rows, rows_unparseable=unparseable, unparseable_by_reason=by_reason,
                         unparseable_path=unparseable_path, line_offset=header_lines(head, layout), encoding=encoding)


def _account_lines(con: duckdb.DuckDBPyConnection, path: Path, rejects: str, staged: Path, work_dir: Path,
                   lines: int, header: int, layout: Layout) -> tuple[int, dict[str, int], str | None]:
    """Every physical line of the file is the header, a staged record's, a rejected record's, or a silent
    (blank or comment) line; rejected and swallowed lines are listed by line and reason. When a staged
    record's line is not its position plus the header, `_source_row` is written into the staged file.

    Returns (count, count by reason, Parquet path or None) of the lines that are not records.
    """
    # One rejected record may raise several errors; count it once, by its first line. A rejected record can
    # run over line breaks inside quotes: count the lines it took (from its text, which is read here and
    # never kept), unless a quote in it never closes — then the lines after its first were swallowed by the
    # reader and are counted one by one below. `first_byte` is where the record starts: DuckDB's csv_line
    # starts at the 0-based byte line_byte_position - 1, with any blank lines before the record.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE rejected AS SELECT line AS source_row,"
        " min(line_byte_position) - 1 + max(lead_bytes) AS first_byte, max(spans) AS spans,"
        " 'unparseable: ' || string_agg(DISTINCT lower(error_type), ', ' ORDER BY lower(error_type)) AS reason"
        " FROM (SELECT line, line_byte_position, error_type,"
        "   strlen(t) - strlen(ltrim(t, chr(13) || chr(10))) AS lead_bytes,"
        "   1 + CASE WHEN (strlen(body) - strlen(replace(body, '\"', ''))) % 2 = 1 THEN 0"
        "            ELSE strlen(body) - strlen(replace(body, chr(10), '')) END AS spans"
        "   FROM (SELECT *, coalesce(csv_line, '') AS t, trim(coalesce(csv_line, ''), chr(13) || chr(10)) AS body"
        f"         FROM {rejects}))"
        " GROUP BY line")
    # DuckDB numbers records, not lines (a blank line or a line break inside quotes puts its numbers behind
    # the file's): number each rejected record by the lines before its first byte.
    starts = [b for (b,) in con.execute("SELECT first_byte FROM rejected WHERE first_byte IS NOT NULL").fetchall()]
    if starts:
        found = _line_numbers(path, starts)
        con.execute("UPDATE rejected SET source_row = m.n FROM (SELECT unnest($b) AS b, unnest($n) AS n) m"
                    " WHERE rejected.first_byte = m.b", {"b": list(found), "n": list(found.values())})
    staged_lines, staged_spans = con.execute(
        f"SELECT coalesce(sum({RECORD_LINES}), 0), coalesce(max({RECORD_LINES}), 1) > 1 FROM read_parquet($dst)",
        {"dst": str(staged)}).fetchone()
    rejected_lines = con.execute("SELECT coalesce(sum(spans), 0) FROM rejected").fetchone()[0]
    con.execute("CREATE OR REPLACE TEMP TABLE unparseable AS SELECT source_row, reason, spans AS n FROM rejected")
    silent: list[int] = []
    missing = lines - (header + staged_lines + rejected_lines)
    if missing > 0:
        # Lines the reader skipped without a reject: blank and comment lines (not records), or the tail
        # after a quote that never closed (data, quarantined line by line). Blank lines only at the very
        # end need no scan.
        trailing = _trailing_blank_lines(path)
        silent = (list(range(lines - missing + 1, lines + 1)) if missing <= trailing
                  else _silent_lines(path, layout.quote, layout.comment))
        swallowed = missing - len(silent)
        if swallowed > 0:
            con.execute("INSERT INTO unparseable SELECT range, $r, 1 FROM range($a, $b)",
                        {"r": SWALLOWED, "a": lines - swallowed + 1, "b": lines + 1})
    _number_staged_rows(con, staged, work_dir, header, staged_lines, staged_spans, silent)
    rejected = con.execute("SELECT count(*) FROM unparseable").fetchone()[0]
    by_reason = dict(con.execute("SELECT reason, count(*) FROM unparseable GROUP BY reason").fetchall())
    unparseable_path = None
    if rejected:
        unparseable_path = str(work_dir / "unparseable.parquet")
        con.execute("COPY (SELECT source_row, reason FROM unparseable ORDER BY source_row) TO $dst (FORMAT parquet)",
                    {"dst": unparseable_path})
    return rejected, by_reason, unparseable_path


def _number_staged_rows(con: duckdb.DuckDBPyConnection, staged: Path, work_dir: Path, header: int,
                        staged_lines: int, staged_spans: bool, silent: list[int]) -> None:
    """Write each staged record's first physical line into `_source_row`, when it is not simply the
    header plus its position: some line before it was not a one-line staged record.

    A staged record at position p (its position counted in staged lines) moves down by the lines of
    every excluded run (rejected, swallowed, blank, comment) that lies before it; an ASOF join finds the
    last such run for each record.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE excluded AS SELECT source_row AS first_line, n FROM unparseable"
                " UNION ALL SELECT unnest($s), 1", {"s": silent})
    con.execute(
        "CREATE OR REPLACE TEMP TABLE shifts AS SELECT from_position, max(shift) AS shift FROM ("
        "  SELECT first_line - $h - coalesce(sum(n) OVER (ORDER BY first_line ROWS BETWEEN UNBOUNDED PRECEDING"
        "         AND 1 PRECEDING), 0) AS from_position, sum(n) OVER (ORDER BY first_line ROWS UNBOUNDED PRECEDING)"
        "         AS shift FROM excluded) GROUP BY from_position", {"h": header})
    moved = con.execute("SELECT count(*) FROM shifts WHERE from_position <= $p", {"p": staged_lines}).fetchone()[0]
    if not moved and not staged_spans:
        return
    numbered = work_dir / "staged_numbered.parquet"
    execute(con, f"""
        COPY (
            SELECT s.* EXCLUDE ({SOURCE_ROW}, file_row_number, p),
                   $h + s.p + coalesce(x.shift, 0) AS {SOURCE_ROW}
            FROM (SELECT *, file_row_number + 1 + coalesce(sum({RECORD_LINES} - 1) OVER (
                          ORDER BY file_row_number ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS p
                  FROM read_parquet($staged, file_row_number = true)) s
            ASOF LEFT JOIN shifts x ON s.p >= x.from_position
            ORDER BY s.p
        ) TO $dst (FORMAT parquet, COMPRESSION zstd)""", {"h": header, "staged": str(staged), "dst": str(numbered)})
    numbered.replace(staged)


def staged_source_row(line_offset: int) -> str:
    """SQL for a staged row's `source_row` (its first physical line) over `read_parquet(…,
    file_row_number = true)`. The offset is an integer the reader computed, written as a literal: the
    views that use it cannot hold parameters."""
    return f"coalesce({SOURCE_ROW}, file_row_number + 1 + {int(line_offset)})"


def _line_numbers(path: Path, offsets: list[int]) -> dict[int, int]:
    """The 1-based line of the file each byte offset lies on, in one streaming pass."""
    wanted, found, breaks, done = sorted(set(offsets)), {}, 0, 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            while len(found) < len(wanted) and wanted[len(found)] < done + len(chunk):
                offset = wanted[len(found)]
                found[offset] = 1 + breaks + chunk.count(b"\n", 0, offset - done)
            if len(found) == len(wanted):
                break
            breaks += chunk.count(b"\n")
            done += len(chunk)
    return {**found, **{offset: 1 + breaks for offset in wanted[len(found):]}}


def _trailing_blank_lines(path: Path) -> int:
    """How many blank lines end the file (read from its last bytes only)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(size - (1 << 16), 0))
        tail = fh.read()
    body = tail.rstrip(b"\r\n")
    if not body and size > len(tail):
        return 0          # more than 64 KiB of line breaks: let the scan count them
    ends = tail[len(body):].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    # The first line break ends the last line with content; every further one ends a blank line.
    return max(len(ends) - (1 if body else 0), 0)


def _silent_lines(path: Path, quote: str, comment: str | None) -> list[int]:
    """The lines a strict reader skips without a reject: blank lines and comment lines, outside quotes."""
    q, c = quote.encode(), comment.encode() if comment else None
    silent, open_quote = [], False
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, start=1):
            if not open_quote and (not line.rstrip(b"\r\n") or (c is not None and line.startswith(c))):
                silent.append(n)
                continue
            open_quote ^= line.count(q) % 2 == 1
    return silent
