"""Reading a delimited landing file strictly, and accounting for every one of its lines.

Ingest and the payments step share this reader: DuckDB's strict CSV scan, every field as text, with
rejected records stored; then `collect_unparseable` accounts for each physical line DuckDB did not turn
into a row (a reject, or a line swallowed after a quote that never closes), by line and reason — never
with the line's content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from transforms.formats.recognize import head_text, records

HEAD_BYTES = 1 << 16
MAX_LINE_BYTES = 2 << 20  # longer records are rejected, not read
# Technical columns of staged files only (never reach a zone): a whole-record fault for validate to
# quarantine, and how many physical lines the record took (for the line accounting below).
INGEST_FLAG = "_ingest_flag"
RECORD_LINES = "_record_lines"
STAGING_TECHNICAL = (INGEST_FLAG, RECORD_LINES)
SPANS_LINES = "record_spans_lines"
SWALLOWED = "unparseable: unterminated quote (line swallowed by the reader)"


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


def header_lines(head: bytes, delimiter: str = ",", quote: str = '"') -> int:
    """Physical lines the header (the first record of `head`) takes: a quoted name may hold line breaks."""
    first = next(iter(records(head_text(head), delimiter, quote, limit=1)), ())
    return 1 + sum(name.count("\n") for name in first)


def csv_source(n_columns: int, header: bool, delimiter: str = ",", quote: str = '"') -> str:
    """`read_csv` over the file bound as `$src`: fields c0, c1 … all VARCHAR, strict, rejects stored.

    Strict mode and the stored rejects are what let `collect_unparseable` account for every line. The
    delimiter and quote are one character each (sniffed, or a format's declared ones).
    """
    if len(delimiter) != 1 or len(quote) != 1:
        raise ValueError("a delimiter and a quote are one character each")
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n_columns)) + "}"
    char = lambda c: "'" + c.replace("'", "''") + "'"  # noqa: E731 — one character, quotes doubled
    return (
        "read_csv($src, header = {h}, auto_detect = false, delim = {d}, quote = {q}, escape = {q},"
        " columns = {cols}, store_rejects = true, strict_mode = true, encoding = 'utf-8',"
        " max_line_size = {mls}, parallel = true)"
    ).format(h="true" if header else "false", d=char(delimiter), q=char(quote), cols=columns, mls=MAX_LINE_BYTES)


def collect_unparseable(con: duckdb.DuckDBPyConnection, path: Path, staged_path: str, work_dir: Path,
                        lines: int | None, header_lines: int) -> tuple[int, dict[str, int], str | None]:
    """Records of a `csv_source` read that did not parse: (count, count by reason, Parquet path or None).

    Call it on the connection that ran the read (its `reject_errors`); `staged_path` holds the parsed
    records with `_record_lines`. Lines the reader skipped without a reject are counted too.
    """
    # One rejected record may raise several errors; count it once, by its first line. A rejected record can
    # run over line breaks inside quotes: count the lines it took (from its text, which is read here and
    # never kept), unless a quote in it never closes — then the lines after its first were swallowed by the
    # reader and are counted one by one below. `first_byte` is where the record starts: DuckDB's csv_line
    # starts at the 0-based byte line_byte_position - 1, with any blank lines before the record.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE rejected AS SELECT line, line AS source_line,"
        " min(line_byte_position) - 1 + max(lead_bytes) AS first_byte, max(spans) AS spans,"
        " 'unparseable: ' || string_agg(DISTINCT lower(error_type), ', ' ORDER BY lower(error_type)) AS reason"
        " FROM (SELECT line, line_byte_position, error_type,"
        "   strlen(t) - strlen(ltrim(t, chr(13) || chr(10))) AS lead_bytes,"
        "   1 + CASE WHEN (strlen(body) - strlen(replace(body, '\"', ''))) % 2 = 1 THEN 0"
        "            ELSE strlen(body) - strlen(replace(body, chr(10), '')) END AS spans"
        "   FROM (SELECT *, coalesce(csv_line, '') AS t, trim(coalesce(csv_line, ''), chr(13) || chr(10)) AS body"
        "         FROM reject_errors))"
        " GROUP BY line"
    )
    if lines is None:   # the caller gave the sha256 but not the line count
        lines = fingerprint(path)[1]
    staged_lines, staged_spans = con.execute(
        f"SELECT coalesce(sum({RECORD_LINES}), 0), coalesce(max({RECORD_LINES}), 1) > 1 FROM read_parquet($dst)",
        {"dst": staged_path}).fetchone()
    rejected_lines, rejected_spans = con.execute(
        "SELECT coalesce(sum(spans), 0), coalesce(max(spans), 1) > 1 FROM rejected").fetchone()
    if header_lines > 1 or staged_spans or rejected_spans:
        # DuckDB numbers records, not lines: after a line break inside quotes its numbers fall behind the
        # file's. Number the rejected records by the lines before their first byte instead.
        starts = [b for (b,) in con.execute(
            "SELECT first_byte FROM rejected WHERE first_byte IS NOT NULL").fetchall()]
        if starts:
            found = _line_numbers(path, starts)
            con.execute("UPDATE rejected SET source_line = m.n FROM (SELECT unnest($b) AS b, unnest($n) AS n) m"
                        " WHERE rejected.first_byte = m.b", {"b": list(found), "n": list(found.values())})
    con.execute("CREATE OR REPLACE TEMP TABLE unparseable AS SELECT source_line, reason FROM rejected")
    accounted = header_lines + staged_lines + rejected_lines
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
