"""transforms/steps/reading.py (with steps/lines.py): fingerprint, the strict CSV reader, and the accounting of
every physical line.

The reader is driven here as ingest and the payments step drive it: `stage_delimited` copies the records to a
staged Parquet file (some columns kept, the technical columns over all of them) and accounts for every line.
Expected lines, reasons and source rows are counted by hand from the files below.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.transforms.steps.conftest import SECRET, asterisk
from transforms.lake.commit import sha256_file
from transforms.lake.connection import connect, execute
from transforms.steps.reading import (
    INGEST_FLAG,
    INVALID_ENCODING,
    MAX_LINE_BYTES,
    RECORD_DIGEST,
    RECORD_LINES,
    SOURCE_ROW,
    SPANS_LINES,
    STAGING_TECHNICAL,
    SWALLOWED,
    LineNumbering,
    csv_source,
    stage_delimited,
)
from transforms.steps.lines import FileShape, Layout, fingerprint, header_lines


@dataclass(frozen=True)
class Read:
    staged: int                     # records the reader turned into rows
    unparseable: int                # records and lines it did not
    by_reason: dict[str, int]
    staged_path: Path
    unparseable_path: str | None
    work: Path
    numbering: LineNumbering
    encoding: str

    def rows(self, pq_read, columns: str) -> list[tuple]:
        return pq_read(self.staged_path, f"SELECT {columns} FROM t")

    def source_rows(self) -> list[int]:
        """Each staged record's first physical line, as validate numbers it."""
        con = connect()
        try:
            return [n for (n,) in execute(con, f"SELECT {self.numbering.source_row()}"
                                               " FROM read_parquet($p, file_row_number = true)",
                                          {"p": str(self.staged_path)}).fetchall()]
        finally:
            con.close()

    def lines(self, pq_read) -> list[tuple]:
        if self.unparseable_path is None:
            return []
        return pq_read(self.unparseable_path, "SELECT source_row, reason FROM t ORDER BY source_row")


def read(tmp_path: Path, name: str, data: bytes, n_columns: int, *, header: bool = False, keep=None,
         lines: int | None = None, comment: str | None = None) -> Read:
    """Write `data`, read it strictly keeping columns `keep` (default all), account for its lines."""
    path = tmp_path / name
    path.write_bytes(data)
    work = tmp_path / f"work_{name}"
    work.mkdir()
    staged = work / "staged.parquet"
    kept = tuple(range(n_columns) if keep is None else keep)
    shape = fingerprint(path)
    if lines is not None:         # as the night's plan passes it
        shape = FileShape(shape.sha256, lines, shape.line_endings)
    con = connect(work / "tmp")
    try:
        r = stage_delimited(con, path, shape, work, Layout(n_columns, header, comment=comment),
                            ", ".join(f"c{i}" for i in kept), kept, {}, staged, data[:1 << 16])
    finally:
        con.close()
    assert sum(r.unparseable_by_reason.values()) == r.rows_unparseable
    return Read(r.rows_staged, r.rows_unparseable, r.unparseable_by_reason, staged, r.unparseable_path, work,
                r.numbering, r.encoding)


# ------------------------------------------------------------------------------------ fingerprint

@pytest.mark.parametrize("data, lines, endings", [
    (b"", 0, None),
    (b"\n", 1, "lf"),                                    # one empty line
    (b"a,b\n1,2\n", 2, "lf"),
    (b"a,b\n1,2", 2, "lf"),                              # a last line without its line break still counts
    (b"a,b\r\n1,2\r\n", 2, "crlf"),                      # CRLF: one line each
    (b"a,b\r1,2\r", 2, "cr"),                            # classic Mac: a lone CR ends a line
    (b"a,b\r\n1,2\n3,4\r5,6", 4, "mixed"),               # one of each, and an unterminated last line
    (b"a,b\n\n\n1,2\n", 4, "lf"),                        # blank lines are lines
    (b'a,"b\nc"\n', 2, "lf"),                            # physical lines, not records
    (b"no line break", 1, None),
])
def test_fingerprint_is_sha256_physical_lines_and_line_endings(tmp_path, data, lines, endings):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert fingerprint(path) == FileShape(hashlib.sha256(data).hexdigest(), lines, endings,
                                          content_sha256=_content_sha256(data))
    assert fingerprint(path).sha256 == sha256_file(path)      # the lake's sha256 of the same bytes


def test_fingerprint_counts_across_read_blocks(tmp_path):
    # Read in 1 MiB blocks: 28-byte lines straddle block boundaries and must be counted once.
    path = tmp_path / "big.csv"
    data = b"+38640123456,+38641765432,x\n" * 120_000 + b"tail without newline"
    assert len(data) > 3 * (1 << 20)
    path.write_bytes(data)
    assert fingerprint(path) == FileShape(hashlib.sha256(data).hexdigest(), 120_001, "lf")
    # 32-byte lines: exactly 3 MiB, the last line break is the last byte of a block.
    data = b"+38640123456,+38641765432,xxxxx\n" * (3 * (1 << 20) // 32)
    path.write_bytes(data)
    assert fingerprint(path) == FileShape(hashlib.sha256(data).hexdigest(), 98_304, "lf")
    # CRLF lines of 32 bytes: a CR ends the first block and its LF starts the next — still one line each.
    data = b"+38640123456,+38641765432,xxxx\r\n" * (3 * (1 << 20) // 32)
    path.write_bytes(data)
    assert fingerprint(path) == FileShape(hashlib.sha256(data).hexdigest(), 98_304, "crlf",
                                          content_sha256=_content_sha256(data))


def _content_sha256(data: bytes) -> str | None:
    """The content digest worked out by hand: the bytes with every CRLF and lone CR as LF, when that changes them."""
    lf = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return hashlib.sha256(lf).hexdigest() if lf != data else None


def test_a_crlf_re_export_has_the_content_of_its_lf_original(tmp_path):
    # The first CR 3 MiB into the file: the plain bytes before it are hashed again from the file.
    lf = b"+38640123456,+38641765432,xxxxx\n" * (3 * (1 << 20) // 32) + b"a,b\n" * 1000
    variants = {"lf": lf, "crlf": lf.replace(b"\n", b"\r\n"), "late_cr": lf[:-4000] + lf[-4000:].replace(b"\n", b"\r"),
                "no_final_break": lf[:-1].replace(b"\n", b"\r\n")}
    shapes = {}
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
        shapes[name] = fingerprint(tmp_path / name)
    assert shapes["lf"].content_sha256 is None and shapes["lf"].content == hashlib.sha256(lf).hexdigest()
    assert {shapes[n].content for n in ("crlf", "late_cr")} == {shapes["lf"].content}
    assert shapes["no_final_break"].content != shapes["lf"].content        # one byte of content less
    assert len({s.sha256 for s in shapes.values()}) == 4                   # the bytes all differ


def test_fingerprint_of_parquet_has_no_lines(tmp_path, pq_write):
    path = pq_write(tmp_path / "f.parquet", "SELECT 'a\nb' AS x FROM range(3)")
    shape = fingerprint(path)
    assert shape.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (shape.lines, shape.line_endings) == (None, None)


# ------------------------------------------------------------------------------------ the reader

def test_every_field_is_text_and_the_header_is_not_a_row(tmp_path, pq_read):
    data = b"a,b,c\n007,+386 40,1e3\n0038641765432,,\n"
    r = read(tmp_path, "f.csv", data, 3, header=True)
    types = pq_read(r.staged_path, "SELECT column_name, column_type FROM (DESCRIBE t)")
    assert types == [("c0", "VARCHAR"), ("c1", "VARCHAR"), ("c2", "VARCHAR"), (INGEST_FLAG, "VARCHAR"),
                     (RECORD_LINES, "BIGINT"), (RECORD_DIGEST, "STRUCT(hi UBIGINT, lo UBIGINT)"),
                     (SOURCE_ROW, "BIGINT")]
    assert STAGING_TECHNICAL == (INGEST_FLAG, RECORD_LINES, RECORD_DIGEST, SOURCE_ROW)
    # Nothing is typed or trimmed: leading zeros, '+', '00', an exponent stay as written; an empty field is NULL.
    assert r.rows(pq_read, "c0, c1, c2") == [("007", "+386 40", "1e3"), ("0038641765432", None, None)]
    assert (r.staged, r.unparseable, r.unparseable_path) == (2, 0, None)
    assert r.source_rows() == [2, 3]         # the header is line 1


def test_the_source_is_bound_never_spliced(tmp_path):
    # The file path reaches DuckDB as $src: a quote in it cannot end the SQL string.
    sql = csv_source(Layout(2, header=False))
    assert "$src" in sql and "strict_mode = true" in sql and "store_rejects = true" in sql
    r = read(tmp_path, "it's.csv", b"1,2\n", 2)
    assert r.staged == 1


# ------------------------------------------------------------------------------------ line accounting

def test_unparseable_records_by_line(tmp_path, pq_read):
    data = (asterisk(src="040000001")                                             # 1 ok
            + asterisk(src=SECRET).rstrip(b"\n") + b',"extra"\n'                  # 2 19 fields
            + asterisk(src="040000003")                                           # 3 ok
            + asterisk(src=SECRET, userfield='"' + "x" * (MAX_LINE_BYTES + 10) + '"')  # 4 > MAX_LINE_BYTES
            + asterisk(src="040000005")                                           # 5 ok
            + asterisk(src=SECRET, userfield='"never closed').rstrip(b"\n"))      # 6 quote open at EOF
    r = read(tmp_path, "Master.csv", data, 18, keep=(1, 9, 13))    # as ingest keeps src, start, billsec
    # Six records: 1, 3, 5 staged; 2, 4, 6 unparseable, each counted once by its line.
    assert (r.staged + r.unparseable, r.staged, r.unparseable) == (6, 3, 3)
    assert r.rows(pq_read, "c1") == [("040000001",), ("040000003",), ("040000005",)]
    lines = r.lines(pq_read)
    assert [ln for ln, _ in lines] == [2, 4, 6]
    reasons = dict(lines)
    assert reasons[2] == "unparseable: too many columns"
    assert reasons[4] == "unparseable: line size over maximum"
    assert reasons[6].startswith("unparseable: ") and "quote" in reasons[6]
    assert sum(r.by_reason.values()) == 3
    assert r.by_reason["unparseable: too many columns"] == 1
    # Never the content: not in the reasons, not in any file written.
    assert all(SECRET not in reason for _, reason in lines)
    # source_row a BIGINT like a staged row's line, so a quarantine of both keeps it an integer
    assert pq_read(r.unparseable_path, "SELECT column_name, column_type FROM (DESCRIBE t)") == [
        ("source_row", "BIGINT"), ("reason", "VARCHAR")]
    assert r.source_rows() == [1, 3, 5]
    for written in r.work.rglob("*.parquet"):
        assert SECRET.encode() not in written.read_bytes()


def test_unparseable_lines_count_the_header(tmp_path, pq_read):
    data = (b"origin_number,destination_number,start_time\n"     # line 1
            b"+38640123456,100,2026-11-22T09:00:00Z\n"          # line 2 ok
            b"+38640123456,100,2026-11-22T09:00:00Z,surplus\n"  # line 3: too many
            b"+38640123456,100\n"                               # line 4: missing
            b"+38640123457,100,2026-11-22T09:00:00Z\n")         # line 5 ok
    r = read(tmp_path, "billing.csv", data, 3, header=True)
    assert (r.staged + r.unparseable, r.staged, r.unparseable) == (4, 2, 2)
    assert r.lines(pq_read) == [(3, "unparseable: too many columns"), (4, "unparseable: missing columns")]
    assert r.source_rows() == [2, 5]


def test_latin1_in_an_off_list_column_does_not_reject_the_line(tmp_path, pq_read):
    # 'Čok' written as cp1250 bytes (0xC8, 0xE8) in caller_name, a column that is dropped anyway: the
    # record loads; the columns read keep their UTF-8 text ('Bože' below is valid UTF-8 in a read column).
    data = (b"origin_number,caller_name,destination_number,start_time\n"
            b"+38640123456,Ana,100,2026-11-22T09:00:00Z\n"
            b"+38640777777,\xc8ok \xe8,100,2026-11-22T09:00:00Z\n"
            b"+38640123458,Ana,Bo\xc5\xbee,2026-11-22T09:00:00Z\n")
    r = read(tmp_path, "latin1.csv", data, 4, header=True, keep=(0, 2, 3))   # caller_name (c1) not read
    assert (r.staged, r.unparseable, r.encoding) == (3, 0, "latin-1")
    assert r.rows(pq_read, f"c0, c2, {INGEST_FLAG}") == [
        ("+38640123456", "100", None), ("+38640777777", "100", None), ("+38640123458", "Bože", None)]
    assert r.source_rows() == [2, 3, 4]


def test_a_byte_that_is_not_utf8_in_a_column_read_flags_the_record(tmp_path, pq_read):
    # The byte sits in destination_number, which the format reads: the record is staged with a flag
    # (validate quarantines it under that reason); its neighbours load as they are.
    data = (b"origin_number,destination_number\n"
            b"+38640123456,100\n"
            b"+38640777777,10\xff0\n"
            b"+38640123458,101\n")
    r = read(tmp_path, "bad_byte.csv", data, 2, header=True)
    assert (r.staged, r.unparseable, r.encoding) == (3, 0, "latin-1")
    assert r.rows(pq_read, f"c0, c1, {INGEST_FLAG}") == [
        ("+38640123456", "100", None), ("+38640777777", None, INVALID_ENCODING), ("+38640123458", "101", None)]


def test_record_with_a_line_break_inside_a_field_is_flagged(tmp_path, pq_read):
    # A quoted field that runs over a line break is valid CSV, but a CDR never has one: the reader
    # stages the record with a flag (validate quarantines it) and the number of lines it took.
    data = (asterisk(src="040000001")
            + asterisk(src="040000002", userfield='"two\nlines"')
            + asterisk(src="040000003"))
    r = read(tmp_path, "Master.csv", data, 18, keep=(1,))
    assert (r.staged + r.unparseable, r.staged, r.unparseable) == (3, 3, 0)
    assert r.rows(pq_read, f"c1, {INGEST_FLAG}, {RECORD_LINES}") == [
        ("040000001", None, 1), ("040000002", SPANS_LINES, 2), ("040000003", None, 1)]
    assert r.source_rows() == [1, 2, 4]


def test_a_carriage_return_inside_a_field_is_flagged_too(tmp_path, pq_read):
    # A lone CR is no line break of the file (it has LF line ends), but no CDR field holds one either.
    # (The file then has mixed line endings — LF and one lone CR — and is read from its LF copy, where
    # the CR became a line break inside the quotes: lines 2-3 are one record.)
    r = read(tmp_path, "cr.csv", b'1,a\n2,"b\rc"\n3,d\n', 2)
    assert r.rows(pq_read, f"c0, {INGEST_FLAG}, {RECORD_LINES}") == [
        ("1", None, 1), ("2", SPANS_LINES, 2), ("3", None, 1)]
    assert r.source_rows() == [1, 2, 4]


def test_blank_lines_are_not_data(tmp_path, pq_read):
    data = b"a,b,c\n\n1,2,3\n\n\n4,5,6\n\n"
    r = read(tmp_path, "blank.csv", data, 3, header=True)
    assert (r.staged, r.unparseable, r.by_reason, r.unparseable_path) == (2, 0, {}, None)
    assert r.source_rows() == [3, 6]


def test_blank_lines_only_at_the_end_need_no_numbering(tmp_path, pq_read):
    r = read(tmp_path, "trailing.csv", b"a,b\n1,2\n3,4\n\n\n", 2, header=True)
    assert (r.staged, r.unparseable) == (2, 0)
    assert r.source_rows() == [2, 3]
    assert r.rows(pq_read, f"{SOURCE_ROW}") == [(None,), (None,)]     # implied by position: nothing written


def test_lines_between_records_are_a_step_function_not_a_rewrite(tmp_path, pq_read, monkeypatch):
    # Line 3 is short: rows from the second on start one line further down. That is SQL of the row
    # number (a step at row 2 of 1 line); the staged file is not written again.
    data = b"a,b\n1,2\n3\n4,5\n6\n\n7,8\n"
    r = read(tmp_path, "steps.csv", data, 2, header=True)
    assert r.numbering == LineNumbering(header=1, steps=((2, 1), (3, 3)))
    assert r.source_rows() == [2, 4, 7]
    assert r.rows(pq_read, SOURCE_ROW) == [(None,)] * 3
    # With more steps than the SQL may hold, each row's line is written into the staged file instead.
    monkeypatch.setattr("transforms.steps.reading.MAX_STEPS_IN_SQL", 1)
    r = read(tmp_path, "steps_written.csv", data, 2, header=True)
    assert r.numbering == LineNumbering(header=1)
    assert sorted(r.rows(pq_read, SOURCE_ROW)) == [(2,), (4,), (7,)]
    assert sorted(r.source_rows()) == [2, 4, 7]


def test_comment_lines_of_a_format_are_not_data(tmp_path, pq_read):
    data = b"# exported 2026-11-22\na,b\n1,2\n# a note\n3,4\n5\n"
    r = read(tmp_path, "comments.csv", data, 2, header=False, comment="#")
    assert (r.staged, r.unparseable) == (3, 1)
    assert r.rows(pq_read, "c0") == [("a",), ("1",), ("3",)]
    assert r.source_rows() == [2, 3, 5]
    assert r.lines(pq_read) == [(6, "unparseable: missing columns")]


@pytest.mark.parametrize("ending", [b"\r\n", b"\r", b"\n"])
def test_mixed_line_endings_are_read_line_by_line(tmp_path, pq_read, ending):
    # CRLF, LF and lone CR in one file (a mediation export stitched from several systems), one short row:
    # the short row is quarantined by its line, every other record loads under its own line.
    data = (b"a,b,c\r\n"        # 1
            b"1,2,3\n"          # 2
            b"4,5,6\r"          # 3
            b"7,8\r\n"          # 4 short
            b"9,10,11" + ending + b"12,13,14")   # 5, 6 (no line break at the end)
    r = read(tmp_path, "mixed.csv", data, 3, header=True)
    assert (r.staged, r.unparseable) == (4, 1)
    assert r.rows(pq_read, "c0, c2") == [("1", "3"), ("4", "6"), ("9", "11"), ("12", "14")]
    assert r.source_rows() == [2, 3, 5, 6]
    assert r.lines(pq_read) == [(4, "unparseable: missing columns")]


def test_a_quote_that_never_closes_costs_its_own_line_only(tmp_path, pq_read):
    # Line 3 opens a quote that never closes: the reader takes lines 3 to 5 as one broken record. Line 3
    # is quarantined; lines 4 and 5 (records the file meant to hold) are read again, and load.
    data = b"a,b,c\n1,2,3\n" + f'{SECRET},"4,5\n6,7,8\n9,10,11\n'.encode()
    r = read(tmp_path, "open.csv", data, 3, header=True)
    assert (r.staged, r.unparseable) == (3, 1)
    lines = r.lines(pq_read)
    assert [ln for ln, _ in lines] == [3]
    assert "quote" in lines[0][1] or "unquoted" in lines[0][1]
    assert sorted(zip(r.source_rows(), [c for (c,) in r.rows(pq_read, "c0")])) == [(2, "1"), (4, "6"), (5, "9")]
    for written in r.work.rglob("*.parquet"):
        assert SECRET.encode() not in written.read_bytes()


def test_a_quote_closed_lines_later_costs_its_own_line_only(tmp_path, pq_read):
    # Line 3 opens a quote; line 6 holds the next quote, which "closes" it and is followed by text: the
    # reader rejects lines 3-6 as one record. Line 3 is quarantined; 4 loads, 5 is blank; 6 is broken on
    # its own ('"x"y' is no field) and is quarantined under its own line; 7 loads.
    data = b'a,b,c\n1,2,3\n3,"q,3\n4,5,6\n\n6,"x"y,6\n7,8,9\n'
    r = read(tmp_path, "closed_later.csv", data, 3, header=True)
    assert (r.staged, r.unparseable) == (3, 2)
    assert [ln for ln, _ in r.lines(pq_read)] == [3, 6]
    assert sorted(zip(r.source_rows(), [c for (c,) in r.rows(pq_read, "c0")])) == [(2, "1"), (4, "4"), (7, "7")]


@pytest.mark.parametrize("blanks", [1, 3])
def test_blank_lines_a_quote_open_to_the_end_ran_over_are_not_also_the_files_trailing_blanks(tmp_path, pq_read,
                                                                                           blanks):
    # Line 2 is blank, 3 loads, 4 opens a quote that never closes and so runs over the blank lines that end
    # the file: they are the broken record's, not blank lines of their own. The blank line 2 still moves
    # line 3's record down one line (found by the property test, test_reading_properties.py).
    data = b'a,b,c\n\n3,v3,21\n4,"q4,3\n' + b"\n" * blanks
    r = read(tmp_path, "open_to_the_end.csv", data, 3, header=True)
    assert (r.staged, r.unparseable) == (1, 1)
    assert list(zip(r.source_rows(), [c for (c,) in r.rows(pq_read, "c1")])) == [(3, "v3")]
    assert [ln for ln, _ in r.lines(pq_read)] == [4]


def test_below_the_last_reread_each_line_is_quarantined_as_it_is(tmp_path, pq_read, monkeypatch):
    # No reading again allowed: the lines the broken record ran over are quarantined one by one.
    monkeypatch.setattr("transforms.steps.reading.MAX_REREADS", 0)
    r = read(tmp_path, "open.csv", b'a,b,c\n1,2,3\n3,"q,3\n4,5,6\n7,8,9\n', 3, header=True)
    assert (r.staged, r.unparseable) == (1, 3)
    assert [reason for ln, reason in r.lines(pq_read) if ln > 3] == [SWALLOWED, SWALLOWED]


def test_broken_records_inside_broken_records_are_read_to_the_bottom(tmp_path, pq_read):
    # Every data line opens a quote that never closes: each is quarantined under its own line.
    data = b"a,b,c\n" + b"".join(f'{i},"q{i},3\n'.encode() for i in range(2, 12))
    r = read(tmp_path, "all_open.csv", data, 3, header=True)
    assert (r.staged, r.unparseable) == (0, 10)
    assert [ln for ln, _ in r.lines(pq_read)] == list(range(2, 12))


def test_line_count_is_fingerprinted_when_not_given(tmp_path, pq_read):
    data = (b"a,b,c\n"        # 1
            b"1,2,3\n"        # 2 ok
            b"4,5\n"          # 3 missing columns
            b'6,"7\n'         # 4 opens a quote that never closes
            b"8,9,10\n")      # 5 read again on its own: ok
    given = read(tmp_path, "given.csv", data, 3, header=True, lines=5)    # as the night's plan passes it
    computed = read(tmp_path, "computed.csv", data, 3, header=True)
    assert given.lines(pq_read) == computed.lines(pq_read)
    lines = computed.lines(pq_read)
    assert [ln for ln, _ in lines] == [3, 4]
    assert lines[0][1] == "unparseable: missing columns" and lines[1][1].startswith("unparseable: ")
    assert (computed.staged, computed.unparseable) == (2, 2)
    assert sorted(computed.source_rows()) == [2, 5]


# ------------------------------------------------------- records over several lines: lines stay physical

def test_lines_after_a_record_that_spans_lines_are_numbered_as_in_the_file(tmp_path, pq_read):
    data = (b"a,b,c\n"              # 1
            b'1,"x\ny",3\n'         # 2-3: one record over two lines (staged, flagged)
            b"4,5\n"                # 4: missing columns
            b"6,7,8\n"              # 5 ok
            b"9,10,11,12\n")        # 6: too many columns
    r = read(tmp_path, "span.csv", data, 3, header=True)
    assert (r.staged, r.unparseable) == (2, 2)
    assert r.lines(pq_read) == [(4, "unparseable: missing columns"), (6, "unparseable: too many columns")]


def test_a_rejected_record_over_two_lines_is_one_unparseable_record(tmp_path, pq_read):
    # Lines 2-3 are one record with too many columns; line 4 is a good record and must stay staged only.
    data = b'a,b,c\n1,"x\ny",3,4\n4,5,6\n'
    r = read(tmp_path, "span_bad.csv", data, 3, header=True)
    assert (r.staged, r.unparseable) == (1, 1)
    assert r.rows(pq_read, "c0") == [("4",)]
    assert r.lines(pq_read) == [(2, "unparseable: too many columns")]


def test_a_rejected_record_over_lines_then_more_rejects(tmp_path, pq_read):
    data = (b"a,b,c\n"              # 1
            b'1,"x\n\ny",3,4\n'     # 2-4: too many columns (a blank line inside the quotes)
            b"5,6\n"                # 5: missing columns
            b"\n"                   # 6: blank
            b"7,8,9\n")             # 7 ok
    r = read(tmp_path, "span_bad2.csv", data, 3, header=True)
    assert (r.staged, r.unparseable) == (1, 2)
    assert r.lines(pq_read) == [(2, "unparseable: too many columns"), (5, "unparseable: missing columns")]


@pytest.mark.parametrize("head, lines", [
    (b"a,b,c\n1,2,3\n", 1),
    (b'a,"b\nb",c\n1,2,3\n', 2),
    (b'a,"b\r\n",c\r\n1,2,3\r\n', 2),              # a name that ends in a line break (detection strips it)
    (b'"a\n\n",b,"c\n"\n1,2,3\n', 4),
    (b'\xef\xbb\xbf"a\nb",c\n', 2),
])
def test_header_lines_count_line_breaks_inside_quoted_names(head, lines):
    assert header_lines(head, Layout(3, header=True)) == lines
    assert header_lines(head, Layout(3, header=False)) == 0


def test_a_header_over_two_lines(tmp_path, pq_read):
    # A quoted line break in a column name: the header takes lines 1-2.
    data = b'a,"b\nb",c\n1,2,3\n4,5\n7,8,9\n'
    r = read(tmp_path, "header2.csv", data, 3, header=True)
    assert (r.staged, r.unparseable) == (2, 1)
    assert r.lines(pq_read) == [(4, "unparseable: missing columns")]


def test_line_numbers_stay_physical_with_a_byte_order_mark_and_crlf(tmp_path, pq_read):
    data = b'\xef\xbb\xbfa,b,c\r\n1,"x\r\ny",3\r\n4,5\r\n\r\n7,8,9\r\n1,2\r\n'
    r = read(tmp_path, "bom_crlf.csv", data, 3, header=True)
    assert (r.staged, r.unparseable) == (2, 2)
    assert r.lines(pq_read) == [(4, "unparseable: missing columns"), (7, "unparseable: missing columns")]
