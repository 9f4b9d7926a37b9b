"""transforms/steps/reading.py, as a property: any mix of valid records, line endings and bad lines.

Whatever the mix — LF, CRLF and lone CR endings in one file, short and long rows, a stray quote that
never closes, blank and whitespace-only lines — every record is read exactly once: a valid line is
staged under its own physical line, every bad line is quarantined under its own line, a blank line
is neither, and rows_read = rows_staged + rows_unparseable. The expected outcome of each line is
written from the line's kind here, never from what the reader did.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from transforms.lake.connection import connect, execute
from transforms.steps.lines import Layout, fingerprint
from transforms.steps.reading import stage_delimited

HEADER = "a,b,c"
ENDINGS = ("\n", "\r\n", "\r")
# Kinds of line, and what must become of each: staged, quarantined, or nothing (not a record).
KINDS = {
    "valid": "staged",
    "short": "quarantined",          # 2 fields of 3
    "long": "quarantined",           # 4 fields of 3
    "open_quote": "quarantined",     # a quote that never closes
    "bad_quote": "quarantined",      # a closing quote followed by more text
    "spaces": "quarantined",         # whitespace only: one field of 3
    "blank": None,
}


def render(kind: str, n: int) -> str:
    return {
        "valid": f"{n},v{n},{n * 7}",
        "short": f"{n},s{n}",
        "long": f"{n},l{n},1,2",
        "open_quote": f'{n},"q{n},3',
        "bad_quote": f'{n},"x"y{n},3',
        "spaces": "   ",
        "blank": "",
    }[kind]


lines_strategy = st.lists(st.tuples(st.sampled_from(sorted(KINDS)), st.sampled_from(ENDINGS)), min_size=1,
                          max_size=40)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=lines_strategy, header_ending=st.sampled_from(ENDINGS), last_ending=st.booleans())
# Found by hypothesis: a quote open to the end of the file ran over its trailing blank line, which was also
# counted as a blank line of its own, so the blank line 2 went uncounted and line 3's record was numbered 2.
@example(lines=[("blank", "\n"), ("valid", "\n"), ("open_quote", "\n"), ("blank", "\n")], header_ending="\n",
         last_ending=True)
def test_every_line_is_staged_or_quarantined_under_its_own_number(tmp_path_factory, lines, header_ending,
                                                                  last_ending):
    tmp = tmp_path_factory.mktemp("prop")
    text, previous_ending = HEADER + header_ending, header_ending
    expected_staged, expected_quarantined, values = [], [], {}
    for i, (kind, ending) in enumerate(lines):
        line_no = i + 2                               # line 1 is the header
        is_last = i == len(lines) - 1
        if kind == "blank" and is_last and not last_ending:
            kind = "valid"                            # an empty unterminated last line is no line at all
        if kind == "blank" and previous_ending == "\r":
            ending = "\r"                             # CR then an empty line ending in LF is one CRLF, not two lines
        text += render(kind, line_no) + (ending if (not is_last or last_ending) else "")
        previous_ending = ending
        outcome = KINDS[kind]
        if outcome == "staged":
            expected_staged.append(line_no)
            values[line_no] = f"v{line_no}"
        elif outcome == "quarantined":
            expected_quarantined.append(line_no)
    path = tmp / "mix.csv"
    path.write_bytes(text.encode())
    shape = fingerprint(path)
    work = tmp / "work"
    work.mkdir()
    staged = work / "staged.parquet"
    con = connect(work / "tmp")
    try:
        read = stage_delimited(con, path, shape, work, Layout(3, header=True), "c0, c1", (0, 1), {}, staged,
                               text.encode()[:1 << 16])
        got = execute(con, f"SELECT {read.numbering.source_row()}, c1 FROM read_parquet($p,"
                           " file_row_number = true) ORDER BY 1", {"p": str(staged)}).fetchall()
        bad = [] if read.unparseable_path is None else [n for (n,) in execute(
            con, "SELECT source_row FROM read_parquet($p) ORDER BY 1", {"p": read.unparseable_path}).fetchall()]
    finally:
        con.close()
    assert read.rows_staged + read.rows_unparseable == len(expected_staged) + len(expected_quarantined)
    assert [n for n, _ in got] == expected_staged
    assert all(value == values[n] for n, value in got)        # each staged row is the record of its line
    assert bad == expected_quarantined
