"""FreeSWITCH mod_cdr_csv, 'example' template (FREESWITCH profile): 15 quoted columns, no header,
with an e-mail as caller and duplicates."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .defect_rows import defect_kinds, duplicate_inserts
from .events import PbxCalls, draw_pbx
from .formats import FREESWITCH
from .generator import Generator
from .night import Night
from .vectorized import _Lines, _blank_unless, _cat, _fixed, _int, _lines, _pick, _quote_all, _where
from .writing import _Insert, _row_bytes, _rows, write_csv_stream


def freeswitch_columns(c: PbxCalls, night: Night, rng: np.random.Generator) -> list[pa.Array]:
    """FreeSWITCH mod_cdr_csv 'example' template, 15 columns (FREESWITCH.columns), raw values."""
    n = c.n
    answered = c.status == 0
    causes = pa.array(["NORMAL_CLEARING", "NO_ANSWER", "USER_BUSY", "ORIGINATOR_CANCEL"])
    codecs = pa.array(["PCMA", "PCMA", "G722", "opus", "PCMU"])
    codec = _pick(codecs, rng.integers(0, len(codecs), n))
    answer = c.start + c.ring
    end = answer + c.billsec
    return [
        c.name, c.src, c.dst, _where(c.outgoing, "default", "public"),
        night.stamp(c.start, "local"), _blank_unless(answered, night.stamp(answer, "local")),
        night.stamp(end, "local"), _int(c.ring + c.billsec), _int(c.billsec), _pick(causes, c.status),
        _uuid(rng, n), _blank_unless(answered, _uuid(rng, n)),
        _blank_unless(rng.random(n) < 0.2, _cat("acct", _int(c.sub % 50))), codec, codec,
    ]


def _uuid(rng: np.random.Generator, n: int) -> pa.Array:
    """Version-4 UUID text."""
    nib = rng.integers(0, 16, (n, 32), dtype=np.uint8)
    nib[:, 12] = 4
    nib[:, 16] = 8 + nib[:, 16] % 4
    hexd = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nib]
    out = np.empty((n, 36), dtype=np.uint8)
    out[:] = ord("-")
    for src, dst in ((slice(0, 8), slice(0, 8)), (slice(8, 12), slice(9, 13)), (slice(12, 16), slice(14, 18)),
                     (slice(16, 20), slice(19, 23)), (slice(20, 32), slice(24, 36))):
        out[:, dst] = hexd[:, src]
    return _fixed(out)


def write_freeswitch(gen: Generator, rows: int) -> None:
    """freeswitch_D.csv: bulk legs with an e-mail caller and duplicates between them."""
    name = f"freeswitch_{gen.tag}.csv"
    sample = draw_pbx(gen.rng(5, 1_000_000), gen.night, 2, 0.3, 0.7)
    raw = _rows(freeswitch_columns(sample, gen.night, gen.rng(5, 1_000_001)))
    email = gen.pop.email[int(sample.sub[0])].as_py()
    row = list(raw[0])
    row[1] = email
    gen.collect.add(names=[row[0]], emails=[email])
    inserts = [_Insert("email_as_origin", lambda prev, d=_row_bytes(row, "all"): d)]
    inserts += duplicate_inserts(2 + rows // 200_000)

    def chunk(c: int, a: int, b: int) -> _Lines:
        rng = gen.rng(5, c)
        calls = draw_pbx(rng, gen.night, b - a, a / bulk, b / bulk)
        gen.collect.pbx_calls(calls)
        return _lines([_quote_all(col) for col in freeswitch_columns(calls, gen.night, rng)])

    bulk = rows - len(inserts)
    write_csv_stream(gen.out / name, b"", bulk, chunk, inserts, b"", gen.progress)
    gen.record(name, FREESWITCH.name, rows, defect_kinds(inserts))
