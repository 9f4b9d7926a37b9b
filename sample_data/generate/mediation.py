"""The mediation export (3GPP-style, MEDIATION profile): its columns, and the file with its
defect rows and a last record cut inside a quoted value."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .defect_rows import defect_counts, defect_kinds, duplicate_inserts, rule_inserts
from .events import Events, draw_events, served_cells
from .formats import MEDIATION
from .generator import Generator
from .night import Night
from .reference import CFW, MEDIATION_MIX, MMSO, MOC, NO_NET, PGW, PLMN_STR, RECORD_TYPE, SMSO
from .subscribers import Cells
from .vectorized import _Lines, _amount, _blank_unless, _cat, _int, _lines, _pick, _where
from .writing import _row_bytes, _rows, write_csv_stream


def mediation_columns(ev: Events, night: Night, cells: Cells, rng: np.random.Generator) -> list[pa.Array]:
    """Columns of MEDIATION.columns (3GPP-style mediation export), raw values."""
    pop = night.pop
    n = ev.n
    k = ev.kind
    served = _pick(pop.msisdn, ev.sub)
    other = _cat("+", _int(ev.party.e164))
    to_other = np.isin(k, (MOC, SMSO, MMSO, CFW))
    called = _where(to_other, other, _blank_unless(k != PGW, served))
    redirecting = _blank_unless(k == CFW, served)
    cell, lac = served_cells(ev, cells)
    term = np.select([to_other, k == PGW], [ev.party.net, NO_NET], ev.plmn)
    data = np.isin(k, (PGW, MMSO))
    charging_id = _blank_unless(k == PGW, _int(rng.integers(10**8, 4 * 10**9, n)))
    return [
        _pick(RECORD_TYPE, k), served, _pick(pop.imsi, ev.sub), _pick(pop.imei, ev.sub), called, redirecting,
        night.stamp(night.day0 * 86_400 + ev.sod, "iso_offset", ev.offset), _int(ev.duration), lac, cell,
        _pick(PLMN_STR, ev.plmn), _pick(PLMN_STR, term),
        _blank_unless(data, _int(ev.up)), _blank_unless(data, _int(ev.down)), ev.apn, charging_id,
        _blank_unless(k == PGW, ev.ip), ev.tariff, _amount(ev.charged, 4), _amount(ev.discount, 4),
        _amount(ev.tax, 4), pa.array(np.full(n, "EUR")),
    ]


def write_mediation(gen: Generator, rows: int) -> None:
    """mediation_D.csv: header, bulk rows with defect rows between them, a truncated last record."""
    name = f"mediation_{gen.tag}.csv"
    cols = list(MEDIATION.columns)
    ci = {c: i for i, c in enumerate(cols)}
    k_rule, k_dup = defect_counts(rows)
    sample = gen.sample_events(1, 4 * k_rule + 8, MEDIATION_MIX)
    raw = _rows(mediation_columns(sample, gen.night, gen.cells, gen.rng(1, 1_000_001)))
    inserts, used = rule_inserts(gen, raw, sample, ci, k_rule, "servedMSISDN", "callDuration", "recordType",
                                 "LCS", "servedIMSI", "accessPointName", "minimal")
    inserts += duplicate_inserts(k_dup)
    # The extract was cut off mid-record, inside a quoted value.
    last = raw[used]
    tail = (",".join(last[:ci["tariffClass"]]) + ',"' + last[ci["tariffClass"]][:5]).encode()
    gen.collect.sample_rows(sample, raw, ci, range(used + 1), ip_col="servedPDPAddress")

    def chunk(c: int, a: int, b: int) -> _Lines:
        rng = gen.rng(1, c)
        ev = draw_events(rng, gen.night, MEDIATION_MIX, b - a, a / bulk, b / bulk)
        gen.collect.events(ev, ips=ev.kind == PGW)
        return _lines(mediation_columns(ev, gen.night, gen.cells, rng))

    bulk = rows - len(inserts) - 1
    write_csv_stream(gen.out / name, _row_bytes(cols, "minimal"), bulk, chunk, inserts, tail, gen.progress)
    gen.record(name, MEDIATION.name, rows, defect_kinds(inserts, unterminated_quote=1))
