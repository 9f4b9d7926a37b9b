"""Reading a delimited landing file: its line endings made plain, its records staged strictly, every
physical line accounted for.

Ingest and the payments step share this reader (docs/design.md §7); where lines are, and the copies it
reads from, come from `steps.lines`. `stage_delimited` reads the file with DuckDB's strict CSV scan, every field as text and rejected records stored, and accounts for
each physical line: a staged record keeps the line it starts on as its `source_row`; a line DuckDB did
not turn into a record is either harmless (a blank or comment line, the header) or quarantined by line
with a reason — never with the line's content.

Faults stay with their line: a file whose line endings are mixed (CRLF, LF, lone CR) is read from a
copy with LF endings (line numbers unchanged); a byte that is not UTF-8 rejects a record only when it
sits in a column the format reads (the file is then read as Latin-1, every byte a character, and the
columns the format reads are decoded back to UTF-8, or flagged `invalid_encoding`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from transforms.lake.connection import connect, execute
from transforms.lake.parquet_writer import write_parquet
from transforms.steps.lines import (FileShape, Layout, copy_lines, fingerprint, header_lines, latin1_as_utf8,
                                    line_numbers, plain_line_endings, record_extents, scan_lines,
                                    trailing_blank_lines)

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
SWALLOWED = "unparseable: inside a record whose quote never closed"
MAX_STEPS_IN_SQL = 256     # more steps in the line numbering: each row's line is written into the staged file
MAX_REREADS = 16            # broken records inside broken records: deeper, their lines are quarantined as they are
_TEXT_KEPT_BY_READER = 9_000  # DuckDB keeps the first 10 000 bytes of a rejected record's text
# The staged file is a work file, written once and read by every pass of validate, then deleted: LZ4 costs
# ~15% less of the staging write's CPU than zstd and reads faster, for a larger file on the work disk
# (benchmarks/README.md, issue 17).
STAGED_COMPRESSION = "lz4"


@dataclass(frozen=True)
class LineNumbering:
    """How a staged row's first physical line follows from its row number k (1-based): the header's
    lines, plus the lines before it that were no staged record (rejected, blank, comment) — a step
    function of k, kept as (from k, lines) steps. A row that carries `_source_row` keeps it."""

    header: int = 0
    steps: tuple[tuple[int, int], ...] = ()

    def source_row(self, alias: str = "") -> str:
        """SQL for the row's line over `read_parquet(…, file_row_number = true)` (named `alias`, if given).
        Every number in it is one the reader counted, written as a literal: views cannot hold parameters."""
        t = f"{alias}." if alias else ""
        k = f"{t}file_row_number + 1"
        shift = "".join(f" WHEN {k} >= {int(start)} THEN {int(lines)}" for start, lines in reversed(self.steps))
        return f"coalesce({t}{SOURCE_ROW}, {k} + {int(self.header)}" + (f" + CASE{shift} ELSE 0 END)" if shift else ")")


@dataclass(frozen=True)
class DelimitedRead:
    """What reading one delimited file into a staged Parquet file gave; counts and paths, never content."""

    rows_staged: int
    rows_unparseable: int
    unparseable_by_reason: dict[str, int] = field(default_factory=dict)
    unparseable_path: str | None = None   # (source_row, reason) per line that is not a record
    numbering: LineNumbering = LineNumbering()   # a staged row's line from its row number
    encoding: str = "utf-8"               # latin-1 when some record held a byte that is not UTF-8


def _char(c: str) -> str:
    """One character as a SQL literal (a format's declared delimiter, quote or comment prefix)."""
    if len(c) != 1:
        raise ValueError("a delimiter, a quote and a comment prefix are one character each")
    return "'" + c.replace("'", "''") + "'"


def csv_source(layout: Layout, *, rejects: str = "rejects") -> str:
    """`read_csv` over the file bound as `$src`: fields c0, c1 … all VARCHAR, strict, rejects stored in the
    table named `rejects` (a name this module chooses, one per read).

    Strict mode and the stored rejects are what let the line accounting below find every line.
    """
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(layout.n_columns)) + "}"
    comment = f", comment = {_char(layout.comment)}" if layout.comment else ""
    return (
        "read_csv($src, header = {h}, auto_detect = false, delim = {d}, quote = {q}, escape = {q},"
        " columns = {cols}, store_rejects = true, rejects_table = '{r}', rejects_scan = '{r}_scan',"
        " strict_mode = true, encoding = 'utf-8', max_line_size = {mls}, parallel = true{comment})"
    ).format(h="true" if layout.header else "false", d=_char(layout.delimiter), q=_char(layout.quote),
             cols=columns, r=rejects, mls=MAX_LINE_BYTES, comment=comment)


def staging_query(select: str, source: str, n_columns: int, extra_flag: str = "NULL") -> str:
    """The rows to stage: `SELECT {select}` over `source` (fields c0 … c{n-1}), with the technical columns
    computed over every source field:

    `_ingest_flag`: a line break inside a field means a quote was left open and swallowed the next line,
    which a CDR never legitimately does, so the record is flagged; `extra_flag` is an SQL expression for
    another whole-record fault (or NULL). `_record_lines`: the physical lines the record took.
    `_record_digest`: md5 of all fields, kept as two 64-bit halves (Parquet has no 128-bit integer).
    `_source_row` stays NULL: the line accounting fills it in only when a record's line is not its
    position plus the header.
    """
    # Every field, unit separators between them, a NULL field as an empty one (concat skips NULLs): the same text
    # as concat_ws over coalesced fields, for 0.6 of its 4.9 CPU s with the md5 at 4.5M rows (benchmarks/README.md).
    whole = "concat({})".format(", chr(31), ".join(f"CAST(c{i} AS VARCHAR)" for i in range(n_columns)))
    return (
        f"SELECT * EXCLUDE (_md5), {{'hi': CAST(_md5 >> 64 AS UBIGINT),"
        f" 'lo': CAST(_md5 & CAST(18446744073709551615 AS UHUGEINT) AS UBIGINT)}} AS {RECORD_DIGEST},"
        f" CAST(NULL AS BIGINT) AS {SOURCE_ROW}"
        f" FROM (SELECT {select},"
        f"   coalesce(CASE WHEN contains({whole}, chr(10)) OR contains({whole}, chr(13))"
        f"            THEN '{SPANS_LINES}' END, {extra_flag}) AS {INGEST_FLAG},"
        # Bytes, not characters (an LF is one byte), and only for the rare record holding one: counting every
        # record's characters cost 0.5 of the statement's ~19 CPU s at 4.5M rows (benchmarks/README.md, issue 17).
        f"   CASE WHEN contains({whole}, chr(10))"
        f"        THEN 1 + strlen({whole}) - strlen(replace({whole}, chr(10), '')) ELSE 1 END AS {RECORD_LINES},"
        f"   md5_number({whole}) AS _md5"
        f" FROM {source})")


def write_staged(con: duckdb.DuckDBPyConnection, query: str, params: dict, staged: Path) -> int:
    """Write the rows of a `staging_query` to the staged file, in the source's order (a row's position is
    its line); returns the rows staged. Raises duckdb.Error when the source cannot be read."""
    return write_parquet(con, query, params, staged, compression=STAGED_COMPRESSION)


# Latin-1 text back to the UTF-8 it was (NULL when those bytes are not UTF-8); ASCII passes as it is.
_UTF8_OF_LATIN1 = """
    CREATE OR REPLACE TEMP MACRO utf8_of_latin1(s) AS
    CASE WHEN s IS NULL OR length(s) = strlen(s) THEN s
         ELSE try(decode(from_hex(list_reduce(list_transform(string_split(s, ''),
                                                             lambda x: printf('%02x', ord(x))),
                                              lambda a, b: a || b)))) END"""


def stage_delimited(con: duckdb.DuckDBPyConnection, path: Path, shape: FileShape, work_dir: Path, layout: Layout,
                    select: str, read_columns: Collection[int], params: dict, staged: Path, head: bytes, *,
                    depth: int = 0) -> DelimitedRead:
    """Stage the records of a delimited file as `SELECT {select}` over its fields c0 … into `staged`, with
    the technical columns, and account for every physical line. `read_columns` are the positions the
    select reads (a byte that is not UTF-8 elsewhere does not reject a record).

    Raises duckdb.Error when the file cannot be read at all.
    """
    source = plain_line_endings(path, shape, work_dir)
    params = {**params, "src": str(source), "dst": str(staged)}
    n = layout.n_columns
    rows = write_staged(con, staging_query(select, csv_source(layout), n), params, staged)
    rejects, encoding = "rejects", "utf-8"
    if con.execute("SELECT count(*) FROM rejects WHERE error_type = 'INVALID ENCODING'").fetchone()[0]:
        # Read again as Latin-1 (every byte a character, never invalid): records whose odd bytes lie in
        # columns the format does not read load; a column it reads is decoded back to UTF-8, and a record
        # with one that is not UTF-8 is flagged for quarantine (validate) instead of lost as unparseable.
        # (DuckDB's own latin-1 reader refuses the bytes 0x80-0x9F that cp1250 uses: the copy is Python's.)
        source = latin1_as_utf8(source, work_dir)
        params["src"] = str(source)
        con.execute(_UTF8_OF_LATIN1)
        used = sorted(set(read_columns))
        decoded = ", ".join(f"utf8_of_latin1(c{i}) AS c{i}" if i in used else f"c{i}" for i in range(n))
        fault = " OR ".join(f"(c{i} IS NOT NULL AND utf8_of_latin1(c{i}) IS NULL)" for i in used) or "false"
        rejects, encoding = "rejects_latin1", "latin-1"
        latin1 = (f"(SELECT {decoded}, CASE WHEN {fault} THEN '{INVALID_ENCODING}' END AS _encoding_fault"
                  f" FROM {csv_source(layout, rejects=rejects)})")
        rows = write_staged(con, staging_query(select, latin1, n, "_encoding_fault"), params, staged)
    lines = shape.lines if shape.lines is not None else fingerprint(source).lines
    header = header_lines(head, layout)
    inside, numbering = _account_lines(con, source, rejects, staged, work_dir, lines or 0, header, layout)
    if inside:
        # Lines a broken record ran over (a stray quote that never closed, or closed lines later): not
        # part of that record. Each is read again as a record of its own, so that one stray quote costs
        # its own line, not the rest of the file.
        if depth < MAX_REREADS:
            rows += _reread_lines(con, source, inside, work_dir, layout, select, read_columns, params, staged,
                                  numbering, depth)
            numbering = LineNumbering(header)       # every row's line is now written in the staged file
        else:
            con.execute("INSERT INTO unparseable SELECT unnest($l), $r, 1", {"l": inside, "r": SWALLOWED})
    unparseable = con.execute("SELECT count(*) FROM unparseable").fetchone()[0]
    by_reason = dict(con.execute("SELECT reason, count(*) FROM unparseable GROUP BY reason").fetchall())
    unparseable_path = None
    if unparseable:
        unparseable_path = str(work_dir / "unparseable.parquet")
        # BIGINT like a staged row's line (DuckDB numbers rejects as UBIGINT): a quarantine that unions the
        # two keeps source_row an integer, not a HUGEINT or a DOUBLE.
        con.execute("COPY (SELECT CAST(source_row AS BIGINT) AS source_row, reason FROM unparseable"
                    " ORDER BY source_row) TO $dst (FORMAT parquet)", {"dst": unparseable_path})
    return DelimitedRead(rows_staged=rows, rows_unparseable=unparseable, unparseable_by_reason=by_reason,
                         unparseable_path=unparseable_path, numbering=numbering, encoding=encoding)


def _account_lines(con: duckdb.DuckDBPyConnection, path: Path, rejects: str, staged: Path, work_dir: Path,
                   lines: int, header: int, layout: Layout) -> tuple[list[int], LineNumbering]:
    """Every physical line of the file is the header's, a staged record's, a rejected record's, or a silent
    (blank or comment) line. Rejected records go to the temp table `unparseable` (source_row, reason, n
    lines). Returns the lines a record broken by a stray quote ran over after its first one, and how a
    staged row's line follows from its row number.
    """
    # One rejected record may raise several errors; count it once, by its first line. `first_byte` is where
    # the record starts: DuckDB's csv_line starts at the 0-based byte line_byte_position - 1, with any blank
    # lines before it. Its text (read here, never kept) tells whether it may run over several lines.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE rejected AS SELECT line AS source_row,"
        " min(line_byte_position) - 1 + max(lead_bytes) AS first_byte, bool_or(may_span) AS may_span,"
        " 'unparseable: ' || string_agg(DISTINCT lower(error_type), ', ' ORDER BY lower(error_type)) AS reason"
        " FROM (SELECT line, line_byte_position, error_type,"
        "   strlen(t) - strlen(ltrim(t, chr(13) || chr(10))) AS lead_bytes,"
        "   contains(body, chr(10)) OR contains(body, chr(13)) OR strlen(body) >= $long"
        "   OR (strlen(body) - strlen(replace(body, $q, ''))) % 2 = 1 AS may_span"
        "   FROM (SELECT *, coalesce(csv_line, '') AS t, trim(coalesce(csv_line, ''), chr(13) || chr(10)) AS body"
        f"         FROM {rejects}))"
        " GROUP BY line", {"q": layout.quote, "long": _TEXT_KEPT_BY_READER})
    # DuckDB numbers records, not lines (a blank line or a line break inside quotes puts its numbers behind
    # the file's): number each rejected record by the lines before its first byte.
    starts = [b for (b,) in con.execute("SELECT first_byte FROM rejected WHERE first_byte IS NOT NULL").fetchall()]
    if starts:
        found = line_numbers(path, starts)
        con.execute("UPDATE rejected SET source_row = m.n FROM (SELECT unnest($b) AS b, unnest($n) AS n) m"
                    " WHERE rejected.first_byte = m.b", {"b": list(found), "n": list(found.values())})
    staged_lines, staged_spans = con.execute(
        f"SELECT coalesce(sum({RECORD_LINES}), 0), coalesce(max({RECORD_LINES}), 1) > 1 FROM read_parquet($dst)",
        {"dst": str(staged)}).fetchone()
    rejected = con.execute("SELECT count(*) FROM rejected").fetchone()[0]
    spanning = dict(con.execute("SELECT source_row, first_byte FROM rejected WHERE may_span").fetchall())
    # How far each rejected record that may run over several lines ran: walked from its first byte only.
    extents = record_extents(path, layout, spanning) if spanning else {}
    missing = lines - (header + staged_lines + rejected + sum(n - 1 for n, _ in extents.values()))
    # Blank lines that end the file are silent only past the last line a record ran over: a quote open
    # until the end of the file takes them into its (broken) record, already counted in its extent.
    last_taken = max((start + n - 1 for start, (n, _) in extents.items()), default=0)
    silent: list[int] = []
    if missing > min(trailing_blank_lines(path), lines - last_taken):
        # Lines skipped inside the file (blank or comment lines): walk the whole file as the reader does.
        silent, extents = scan_lines(path, layout, header, set(spanning))
    elif missing > 0:
        silent = list(range(lines - missing + 1, lines + 1))      # blank lines at the very end
    con.execute("CREATE OR REPLACE TEMP TABLE extents AS SELECT unnest($k) AS source_row, unnest($v) AS n",
                {"k": list(extents), "v": [lines_run for lines_run, _ in extents.values()]})
    con.execute("CREATE OR REPLACE TEMP TABLE unparseable AS SELECT source_row, reason, coalesce(e.n, 1) AS n"
                " FROM rejected LEFT JOIN extents e USING (source_row)")
    numbering = _number_staged_rows(con, staged, work_dir, header, staged_lines, staged_spans, silent)
    # A record broken by a stray quote ran over lines that are not its own; a record whose quoted field
    # really holds line breaks (closed as it should be) keeps them, quarantined as one record.
    return [line for start, (n, broken) in extents.items() if broken for line in range(start + 1, start + n)], numbering


def _reread_lines(con: duckdb.DuckDBPyConnection, source: Path, inside: list[int], work_dir: Path, layout: Layout,
                  select: str, read_columns: Collection[int], params: dict, staged: Path, numbering: LineNumbering,
                  depth: int) -> int:
    """Read the `inside` lines of `source` again, as a headerless file of their own; add their records to
    `staged` and their unparseable lines to `unparseable`, each under its line in `source`. Returns the
    records staged."""
    again = work_dir / f"reread_{depth + 1}"
    again.mkdir(exist_ok=True)
    lines_path = again / "lines.txt"
    copy_lines(source, inside, lines_path)
    inner = connect(again / "tmp")
    try:
        read = stage_delimited(inner, lines_path, fingerprint(lines_path), again, replace(layout, header=False),
                               select, read_columns, params, again / "staged.parquet", b"", depth=depth + 1)
    finally:
        inner.close()
    con.execute("CREATE OR REPLACE TEMP TABLE reread_lines AS SELECT unnest($l) AS line, unnest(range(1, $n + 1)) AS k",
                {"l": inside, "n": len(inside)})
    if read.unparseable_path:
        execute(con, "INSERT INTO unparseable SELECT m.line, u.reason, 1 FROM read_parquet($u) u"
                     " JOIN reread_lines m ON m.k = u.source_row", {"u": read.unparseable_path})
    merged = work_dir / "staged_with_reread.parquet"
    # Every row's line written out: the merged file's row order no longer tells it.
    execute(con, f"""
        COPY (
            SELECT s.* EXCLUDE (file_row_number, {SOURCE_ROW}), {numbering.source_row("s")} AS {SOURCE_ROW}
            FROM read_parquet($main, file_row_number = true) s
            UNION ALL BY NAME
            SELECT r.* EXCLUDE (file_row_number, {SOURCE_ROW}), m.line AS {SOURCE_ROW}
            FROM read_parquet($again, file_row_number = true) r
            JOIN reread_lines m ON m.k = {read.numbering.source_row("r")}
        ) TO $dst (FORMAT parquet, COMPRESSION {STAGED_COMPRESSION})""",
            {"main": str(staged), "again": str(again / "staged.parquet"), "dst": str(merged)})
    merged.replace(staged)
    return read.rows_staged


def _number_staged_rows(con: duckdb.DuckDBPyConnection, staged: Path, work_dir: Path, header: int,
                        staged_lines: int, staged_spans: bool, silent: list[int]) -> LineNumbering:
    """How each staged record's first physical line follows from its row number.

    A staged record at position p (counted in staged lines) moves down by the lines of every excluded run
    (rejected, blank, comment) that lies before it: a step function of p, with one step per run. With
    one-line records and not too many steps it is SQL of the row number (no rewrite); otherwise each row's
    line is written into `_source_row` (an ASOF join finds the last run before each record).
    """
    con.execute("CREATE OR REPLACE TEMP TABLE excluded AS SELECT source_row AS first_line, n FROM unparseable"
                " UNION ALL SELECT unnest($s), 1", {"s": silent})
    steps = con.execute(
        "SELECT from_position, max(shift) AS shift FROM ("
        "  SELECT first_line - $h - coalesce(sum(n) OVER (ORDER BY first_line ROWS BETWEEN UNBOUNDED PRECEDING"
        "         AND 1 PRECEDING), 0) AS from_position, sum(n) OVER (ORDER BY first_line ROWS UNBOUNDED PRECEDING)"
        "         AS shift FROM excluded) WHERE from_position <= $p GROUP BY from_position ORDER BY from_position",
        {"h": header, "p": staged_lines}).fetchall()
    if not staged_spans and len(steps) <= MAX_STEPS_IN_SQL:
        return LineNumbering(header, tuple((int(a), int(b)) for a, b in steps))
    con.execute("CREATE OR REPLACE TEMP TABLE shifts AS SELECT unnest($a) AS from_position, unnest($b) AS shift",
                {"a": [a for a, _ in steps], "b": [b for _, b in steps]})
    numbered = work_dir / "staged_numbered.parquet"
    # A record's position counted in staged lines: its row number, plus the extra lines of the records
    # before it when some staged record ran over several lines (only then the window is paid for).
    position = (f"file_row_number + 1 + coalesce(sum({RECORD_LINES} - 1) OVER (ORDER BY file_row_number"
                " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)" if staged_spans else "file_row_number + 1")
    # Kept in the file's order (a sort, paid only here: records over several lines, or many steps).
    execute(con, f"""
        COPY (
            SELECT s.* EXCLUDE ({SOURCE_ROW}, file_row_number, p),
                   $h + s.p + coalesce(x.shift, 0) AS {SOURCE_ROW}
            FROM (SELECT *, {position} AS p FROM read_parquet($staged, file_row_number = true)) s
            ASOF LEFT JOIN shifts x ON s.p >= x.from_position
            ORDER BY s.p
        ) TO $dst (FORMAT parquet, COMPRESSION {STAGED_COMPRESSION})""",
            {"h": header, "staged": str(staged), "dst": str(numbered)})
    numbered.replace(staged)
    return LineNumbering(header)
