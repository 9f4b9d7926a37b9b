"""The small files with a defect of their own: empty, header only, cp1250 (invalid UTF-8),
a FreeSWITCH file re-saved by a spreadsheet, a NUL byte, hostile column names."""

from __future__ import annotations

from datetime import datetime

from .canonical import canonical_rows
from .events import draw_pbx
from .formats import CANONICAL, CANONICAL_COLUMNS, FREESWITCH, HOSTILE_COLUMNS
from .freeswitch import freeswitch_columns
from .generator import Generator
from .manifest import DUPLICATE_ROW
from .reference import CANONICAL_MIX
from .writing import _row_bytes, _rows


def write_defect_files(gen: Generator) -> None:
    """The small files whose defect is the file itself (empty, header only, encoding, re-saved, NUL, header)."""
    t = gen.tag
    gen.write_bytes(f"empty_{t}.csv", b"")
    gen.record(f"empty_{t}.csv", None, 0, {"empty_file": 1})

    gen.write_bytes(f"header_only_{t}.csv", _row_bytes(CANONICAL_COLUMNS, "minimal"))
    gen.record(f"header_only_{t}.csv", CANONICAL.name, 0, {"header_only": 1})

    # A billing export re-encoded by a Windows tool: cp1250, so not valid UTF-8.
    cols = list(CANONICAL_COLUMNS[:1]) + ["caller_name", "email"] + list(CANONICAL_COLUMNS[1:])
    ev = gen.sample_events(10, 20, CANONICAL_MIX)
    rows = canonical_rows(gen, ev, cols)
    ci = {c: i for i, c in enumerate(cols)}
    rows[0][ci["caller_name"]], rows[0][ci["email"]] = "Žiga Čeh", "ziga.ceh@siol.net"
    gen.collect.sample_rows(ev, rows, ci, range(len(rows)), None)
    text = b"".join(_row_bytes(r, "minimal") for r in [cols] + rows).decode("utf-8")
    gen.write_bytes(f"latin1_{t}.csv", text.encode("cp1250"))
    gen.record(f"latin1_{t}.csv", CANONICAL.name, len(rows), {"invalid_utf8": 1})

    # A FreeSWITCH file opened and saved again in a spreadsheet.
    calls = draw_pbx(gen.rng(11, 0), gen.night, 24, 0.0, 1.0)
    gen.collect.pbx_calls(calls)
    fs = _rows(freeswitch_columns(calls, gen.night, gen.rng(11, 1)))
    fs.insert(7, list(fs[6]))
    fs.insert(15, list(fs[14]))
    resaved = [[_resaved(v, i) for i, v in enumerate(r)] for r in fs]
    gen.collect.add(names=[r[0] for r in resaved])
    lines = [",".join(r) + "\r\n" for r in resaved]
    gen.write_bytes(f"freeswitch_resaved_{t}.csv", "".join(lines).encode("utf-8"))
    gen.record(f"freeswitch_resaved_{t}.csv", FREESWITCH.name, len(fs),
               {"spreadsheet_resaved": 1, DUPLICATE_ROW: 2})

    # A NUL byte inside one record.
    cols = list(CANONICAL_COLUMNS)
    ev = gen.sample_events(12, 20, CANONICAL_MIX)
    rows = canonical_rows(gen, ev, cols)
    gen.collect.sample_rows(ev, rows, {c: i for i, c in enumerate(cols)}, range(len(rows)), None)
    body = b"".join(_row_bytes(r, "minimal") for r in [cols] + rows)
    at = body.index(b"\n", body.index(b"\n", len(_row_bytes(cols, "minimal"))) + 1) + 1
    rec_end = body.index(b"\n", at)
    cut = body.rindex(b",", at, rec_end)
    gen.write_bytes(f"nul_byte_{t}.csv", body[:cut - 2] + b"\x00" + body[cut - 2:])
    gen.record(f"nul_byte_{t}.csv", CANONICAL.name, len(rows), {"nul_byte": 1})

    # Hostile column names in the header (SQL-ish, newline-ish, very long).
    cols = list(CANONICAL_COLUMNS)
    ev = gen.sample_events(13, 20, CANONICAL_MIX)
    rows = canonical_rows(gen, ev, cols)
    gen.collect.sample_rows(ev, rows, {c: i for i, c in enumerate(cols)}, range(len(rows)), None)
    header = cols[:3] + [HOSTILE_COLUMNS[0]] + cols[3:12] + [HOSTILE_COLUMNS[1]] + cols[12:] + [HOSTILE_COLUMNS[2]]
    out = [_row_bytes(header, "minimal")]
    for j, r in enumerate(rows):
        out.append(_row_bytes(r[:3] + ["1=1"] + r[3:12] + [f"r{j}"] + r[12:] + [""], "minimal"))
    gen.write_bytes(f"hostile_header_{t}.csv", b"".join(out))
    gen.record(f"hostile_header_{t}.csv", CANONICAL.name, len(rows), {"hostile_column_name": len(HOSTILE_COLUMNS)})


def _resaved(value: str, col: int) -> str:
    """A value as a spreadsheet writes it back: '+' of numbers lost, dates 'YYYY/M/D H:MM', no quotes."""
    if col in (4, 5, 6) and value:
        d = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
        return f"{d.year}/{d.month}/{d.day} {d.hour}:{d.minute:02d}"
    if col in (1, 2) and value.startswith("+"):
        return value[1:]
    return value.replace(",", " ")
