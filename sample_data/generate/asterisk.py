"""Asterisk cdr_csv Master.csv (ASTERISK_18 profile): 18 columns, no header, local time, with
an e-mail as caller, a short record and duplicates."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .defect_rows import defect_kinds, duplicate_inserts
from .events import PbxCalls, draw_pbx
from .formats import ASTERISK_18
from .generator import Generator
from .night import Night
from .vectorized import _Lines, _blank_unless, _cat, _hexs, _int, _lines, _pick, _quote_all, _where
from .writing import _Insert, _row_bytes, _rows, write_csv_stream


def asterisk_columns(c: PbxCalls, night: Night, rng: np.random.Generator, uid_base: int) -> list[pa.Array]:
    """Asterisk cdr_csv Master.csv, 18 columns (ASTERISK_18.columns), raw values."""
    n = c.n
    answered = c.status == 0
    ext = _int(2000 + c.sub % 900)
    tag = _hexs(rng.integers(0, 1 << 32, n), 8)
    trunk = _cat("PJSIP/a1-trunk-", _hexs(rng.integers(0, 1 << 32, n), 8))
    local = _cat("PJSIP/", ext, "-", tag)
    answer = c.start + c.ring
    end = answer + c.billsec
    dispositions = pa.array(["ANSWERED", "NO ANSWER", "BUSY", "FAILED"])
    account = _blank_unless(rng.random(n) < 0.3, _cat("A1BIZ-", _int(1000 + c.sub % 97)))
    return [
        account, c.src, c.dst, _where(c.outgoing, "from-internal", "from-pstn"),
        _cat('"', c.name, '" <', c.src, ">"),
        _where(c.outgoing, local, trunk), _where(answered, _where(c.outgoing, trunk, local), ""),
        pa.array(np.full(n, "Dial")),
        _where(c.outgoing, _cat("PJSIP/", c.dst, "@a1-trunk,60,tT"), _cat("PJSIP/", ext, ",30,tT")),
        night.stamp(c.start, "local"), _blank_unless(answered, night.stamp(answer, "local")),
        night.stamp(end, "local"),
        _int(c.ring + c.billsec), _int(c.billsec), _pick(dispositions, c.status),
        _where(rng.random(n) < 0.9, "DOCUMENTATION", "BILLING"),
        _cat(_int(c.start - night.off_start), ".", _int(uid_base + np.arange(n))),
        pa.array(np.full(n, "")),
    ]


def write_asterisk(gen: Generator, rows: int) -> None:
    """asterisk_Master_D.csv: bulk legs with an e-mail caller, a short record and duplicates between them."""
    name = f"asterisk_Master_{gen.tag}.csv"
    sample = draw_pbx(gen.rng(4, 1_000_000), gen.night, 4, 0.3, 0.7)
    raw = _rows(asterisk_columns(sample, gen.night, gen.rng(4, 1_000_001), 900_000))
    email = gen.pop.email[int(sample.sub[0])].as_py()
    row = list(raw[0])
    row[1], row[4] = email, f'"{sample.name[0].as_py()}" <{email}>'
    inserts = [_Insert("email_as_origin", lambda prev, d=_row_bytes(row, "asterisk"): d),
               _Insert("too_few_fields", lambda prev, d=_row_bytes(raw[1][:11], "asterisk"): d)]
    gen.collect.add(names=[sample.name[i].as_py() for i in (0, 1)], emails=[email])
    inserts += duplicate_inserts(2 + rows // 200_000)

    def chunk(c: int, a: int, b: int) -> _Lines:
        rng = gen.rng(4, c)
        calls = draw_pbx(rng, gen.night, b - a, a / bulk, b / bulk)
        gen.collect.pbx_calls(calls)
        cols = asterisk_columns(calls, gen.night, rng, a)
        return _lines([col if i in (12, 13) else _quote_all(col, may_hold_quotes=(i == 4))
                       for i, col in enumerate(cols)])

    bulk = rows - len(inserts)
    write_csv_stream(gen.out / name, b"", bulk, chunk, inserts, b"", gen.progress)
    gen.record(name, ASTERISK_18.name, rows, defect_kinds(inserts))
