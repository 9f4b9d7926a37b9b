"""The packet-switched export (TS32298_PS profile, formats/ts32298_ps.yaml): one data session per record,
as the S-GW and P-GW nodes wrote them; the night's subscribers, their roaming and their sessions as the
mediation export has them. Rule-breaking and duplicate records between the bulk rows, no malformed ones.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .defect_rows import defect_counts, defect_kinds, duplicate_inserts, rule_inserts
from .events import Events, draw_events, served_cells
from .formats import TS32298_PS
from .generator import Generator
from .manifest import MALFORMED
from .night import Night
from .reference import (
    PLMN_STR,
    PS_CLOSING_CAUSES,
    PS_CLOSING_WEIGHTS,
    PS_MIX,
    PS_NODE_ID,
    PS_NODE_UTC,
    PS_NODE_WEIGHTS,
    PS_ROAMING_NODE_WEIGHTS,
    PS_RAT_TYPES,
    PS_RAT_WEIGHTS,
    PS_RECORD_TYPE,
)
from .subscribers import Cells
from .vectorized import _Lines, _blank_unless, _cat, _choice, _csv_escape, _dec, _hash, _int, _lines, _pick
from .writing import _row_bytes, _rows, write_csv_stream

FILE_ID = 6                     # the export's random streams: gen.rng(FILE_ID, chunk)
NO_IMEISV_SHARE = 0.01          # records without servedIMEISV (the node did not learn it)


def ps_columns(ev: Events, night: Night, cells: Cells, rng: np.random.Generator) -> dict[str, pa.Array]:
    """TS32298_PS.columns of data sessions, raw values."""
    pop = night.pop
    n = ev.n
    node = np.where(ev.roaming, _choice(rng, PS_ROAMING_NODE_WEIGHTS, n), _choice(rng, PS_NODE_WEIGHTS, n))
    utc_clock = PS_NODE_UTC[node]
    # A node on UTC writes the UTC wall clock and +0000; the others the local one and its offset.
    wall = np.where(utc_clock, ev.utc, night.day0 * 86_400 + ev.sod)
    opening = night.stamp(wall, "ts32298", np.where(utc_clock, 0, ev.offset))
    # IMEISV: the handset's IMEI without its check digit, and the software version (fixed per subscriber).
    svn = _hash(night.seed, 40, ev.sub.astype(np.uint64)) % np.uint64(99)
    imeisv = _cat(pc.utf8_slice_codeunits(_pick(pop.imei, ev.sub), 0, 14), _dec(svn, 2))
    cell, lac = served_cells(ev, cells)
    return {
        "recordType": _pick(PS_RECORD_TYPE, node),
        "servedIMSI": _pick(pop.imsi, ev.sub),
        "chargingID": _int(rng.integers(10**8, 4 * 10**9, n)),
        "accessPointNameNI": ev.apn,
        "servedPDPPDNAddress": ev.ip,
        "recordOpeningTime": opening,
        "duration": _int(ev.duration),
        "causeForRecClosing": _int(PS_CLOSING_CAUSES[_choice(rng, PS_CLOSING_WEIGHTS, n)]),
        "nodeID": _pick(PS_NODE_ID, node),
        "servedMSISDN": _int(pop.msisdn_int[ev.sub]),
        "servingNodePLMNIdentifier": _pick(PLMN_STR, ev.plmn),
        "servedIMEISV": _blank_unless(rng.random(n) >= NO_IMEISV_SHARE, imeisv),
        "rATType": _int(PS_RAT_TYPES[_choice(rng, PS_RAT_WEIGHTS, n)]),
        "locationAreaCode": lac,
        "cellIdentifier": cell,
        "dataVolumeGPRSUplink": _int(ev.up),
        "dataVolumeGPRSDownlink": _int(ev.down),
        "subscriberName": _pick(pop.name, ev.sub),
    }


def write_ts32298_ps(gen: Generator, rows: int) -> None:
    """ts32298_ps_D.csv: header, bulk sessions with rule-breaking and duplicate records between them."""
    name = f"ts32298_ps_{gen.tag}.csv"
    cols = list(TS32298_PS.columns)
    ci = {c: i for i, c in enumerate(cols)}
    k_rule, k_dup = defect_counts(rows)
    sample = gen.sample_events(FILE_ID, 4 * k_rule + 8, PS_MIX)
    d = ps_columns(sample, gen.night, gen.cells, gen.rng(FILE_ID, 1_000_001))
    raw = _rows([d[c] for c in cols])
    inserts, used = rule_inserts(gen, raw, sample, ci, k_rule, "servedMSISDN", "duration", "recordType",
                                 "sgsnMMRecord", "servedIMSI", "accessPointNameNI", "minimal")
    # Every record of a gateway export parses: the malformed kinds are left to the mediation export.
    inserts = [i for i in inserts if i.kind not in MALFORMED]
    inserts += duplicate_inserts(k_dup)
    gen.collect.sample_rows(sample, raw, ci, range(used), ip_col="servedPDPPDNAddress")
    gen.collect.add(names=[raw[i][ci["subscriberName"]] for i in range(used)])

    def chunk(c: int, a: int, b: int) -> _Lines:
        rng = gen.rng(FILE_ID, c)
        ev = draw_events(rng, gen.night, PS_MIX, b - a, a / bulk, b / bulk)
        gen.collect.events(ev, names=True, ips=np.ones(ev.n, dtype=bool))
        d = ps_columns(ev, gen.night, gen.cells, rng)
        d["subscriberName"] = _csv_escape(d["subscriberName"])
        return _lines([d[c] for c in cols])

    bulk = rows - len(inserts)
    write_csv_stream(gen.out / name, _row_bytes(cols, "minimal"), bulk, chunk, inserts, b"", gen.progress)
    gen.record(name, TS32298_PS.name, rows, defect_kinds(inserts))
