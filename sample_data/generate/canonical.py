"""The canonical billing formats: their columns (with the off-list extras of the CRM-style CSV),
the canonical CSV with its byte-identical copy, and the canonical Parquet, each with defect rows."""

from __future__ import annotations

import os
import shutil
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .defect_rows import defect_counts, defect_kinds, duplicate_inserts, rule_inserts
from .events import Events, draw_events, served_cells
from .formats import BILLING_CSV_COLUMNS, CANONICAL, CANONICAL_PARQUET
from .generator import Generator
from .manifest import DUPLICATE_ROW
from .night import Night
from .reference import (
    CANONICAL_MIX,
    CFW,
    DIRECTION,
    INCOMING_KIND,
    MMSO,
    MMST,
    NO_NET,
    PGW,
    PLMN_STR,
    PURCHASE,
    PURCHASE_CODES,
    SERVICE_TYPE,
)
from .subscribers import Cells
from .vectorized import _Lines, _amount, _blank_unless, _cat, _csv_escape, _int, _lines, _pick, _where
from .writing import _chunks, _positions, _row_bytes, _rows, _tmp, write_csv_stream


def canonical_columns(ev: Events, night: Night, cells: Cells, with_extras: bool) -> dict[str, pa.Array]:
    """Canonical billing columns (and, for the CRM-style CSV, the off-list extras), raw values."""
    pop = night.pop
    n = ev.n
    k = ev.kind
    served = _pick(pop.msisdn, ev.sub)
    other = _cat("+", _int(ev.party.e164))
    incoming = INCOMING_KIND[k]
    dest = _where(incoming, served, _where(k == PGW, "", _where(k == PURCHASE, _pick(
        PURCHASE_CODES, ev.sub % len(PURCHASE_CODES)), other)))
    fwd = np.int64(386) * 10**8 + 40 * 10**6 + ev.sub * 7 % 10**6
    cell, lac = served_cells(ev, cells)
    with_party = ~np.isin(k, (PGW, PURCHASE))
    origin_net = np.where(incoming, ev.party.net, ev.plmn)
    term_net = np.select([incoming, k == PGW, k == PURCHASE], [ev.plmn, 0, NO_NET], ev.party.net)
    data = k == PGW
    rate10 = np.where(data, ev.up + ev.down, 0) * 80 // np.maximum(ev.duration, 1) // 1000
    cols = {
        "origin_number": _where(incoming, other, served),
        "destination_number": dest,
        "direction": _pick(DIRECTION, k),
        "start_time": night.stamp(ev.utc, "iso_utc"),
        "duration_s": _int(ev.duration),
        "service_type": _pick(SERVICE_TYPE, k),
        "redirection_number": _blank_unless(k == CFW, _cat("+", _int(fwd))),
        "data_volume_bytes": _blank_unless(np.isin(k, (PGW, MMSO, MMST)), _int(ev.up + ev.down)),
        "data_rate_kbps": _blank_unless(data, _cat(_int(rate10 // 10), ".", _int(rate10 % 10))),
        "apn": ev.apn,
        "free_units_used": _int(ev.free_units),
        "cell_id": cell,
        "location_area": lac,
        "imsi": _pick(pop.imsi, ev.sub),
        "imei": _pick(pop.imei, ev.sub),
        "origin_network": _pick(PLMN_STR, origin_net),
        "termination_network": _pick(PLMN_STR, term_net),
        "service_area": _where(ev.roaming, "roaming", "home"),
        "origin_country_code": _where(incoming, _int(ev.party.cc), "386"),
        "called_country_code": _where(incoming, "386", _blank_unless(with_party, _int(ev.party.cc))),
        "tariff_code": ev.tariff,
        "unit_price": _amount(ev.unit_price, 6),
        "charged_amount": _amount(ev.charged, 4),
        "discount_amount": _amount(ev.discount, 4),
        "currency": pa.array(np.full(n, "EUR")),
        "tax_amount": _amount(ev.tax, 4),
    }
    if with_extras:
        cols["caller_name"] = _pick(pop.name, ev.sub)
        cols["email"] = _pick(pop.email, ev.sub)
        cols["ip_address"] = _blank_unless(np.isin(k, (PGW, MMSO, MMST, PURCHASE)), ev.ip)
    return cols


def canonical_rows(gen: Generator, ev: Events, cols: Sequence[str]) -> list[list[str]]:
    """Sample events as Python rows of the given canonical (and extra) columns."""
    d = canonical_columns(ev, gen.night, gen.cells, with_extras=True)
    return _rows([d[c] for c in cols])


def write_billing_csv(gen: Generator, rows: int) -> None:
    """billing_D.csv (canonical columns and off-list extras, defect rows, a truncated last record)
    and its byte-identical copy billing_D_copy.csv."""
    name = f"billing_{gen.tag}.csv"
    cols = list(BILLING_CSV_COLUMNS)
    ci = {c: i for i, c in enumerate(cols)}
    k_rule, k_dup = defect_counts(rows)
    sample = gen.sample_events(2, 4 * k_rule + 8, CANONICAL_MIX)
    raw = canonical_rows(gen, sample, cols)
    inserts, used = rule_inserts(gen, raw, sample, ci, k_rule, "origin_number", "duration_s", "service_type",
                                 "video_call", "imsi", "apn", "minimal")
    inserts += duplicate_inserts(k_dup)
    last = raw[used]
    cut_name = last[ci["caller_name"]] if "," in last[ci["caller_name"]] else "Novak, Ana"
    tail = (last[0] + ',"' + cut_name[: len(cut_name) - 2]).encode()     # cut inside the caller_name
    gen.collect.sample_rows(sample, raw, ci, range(used), ip_col="ip_address")
    gen.collect.add(names=[cut_name[: len(cut_name) - 2]])

    def chunk(c: int, a: int, b: int) -> _Lines:
        rng = gen.rng(2, c)
        ev = draw_events(rng, gen.night, CANONICAL_MIX, b - a, a / bulk, b / bulk)
        gen.collect.events(ev, names=True, emails=True, ips=np.isin(ev.kind, (PGW, MMSO, MMST, PURCHASE)))
        d = canonical_columns(ev, gen.night, gen.cells, with_extras=True)
        d["caller_name"] = _csv_escape(d["caller_name"])
        return _lines([d[c] for c in cols])

    bulk = rows - len(inserts) - 1
    write_csv_stream(gen.out / name, _row_bytes(cols, "minimal"), bulk, chunk, inserts, tail, gen.progress)
    kinds = defect_kinds(inserts, unterminated_quote=1)
    gen.record(name, CANONICAL.name, rows, kinds)
    copy = f"billing_{gen.tag}_copy.csv"
    shutil.copyfile(gen.out / name, _tmp(gen.out / copy))
    os.replace(_tmp(gen.out / copy), gen.out / copy)
    gen.record(copy, CANONICAL.name, rows, {**kinds, "duplicate_file": 1})


def write_parquet(gen: Generator, rows: int) -> None:
    """billing_D.parquet: canonical columns as strings (empty as null), rule and duplicate rows between chunks."""
    name = f"billing_{gen.tag}.parquet"
    cols = list(CANONICAL_PARQUET.columns)
    schema = pa.schema([(c, pa.string()) for c in cols])
    k_dup = 2 + rows // 200_000
    sample = gen.sample_events(3, 8, CANONICAL_MIX)
    d = canonical_columns(sample, gen.night, gen.cells, with_extras=False)
    raw = [dict(zip(cols, r)) for r in _rows([d[c] for c in cols])]
    bad: list[tuple[str, dict]] = []
    email = gen.pop.email[int(sample.sub[0])].as_py()
    gen.collect.add(emails=[email])
    bad.append(("email_as_origin", {**raw[0], "origin_number": email}))
    bad.append(("negative_duration", {**raw[1], "duration_s": "-12"}))
    bad.append(("unknown_service_type", {**raw[2], "service_type": "voicemail"}))
    bad.append(("bad_imsi", {**raw[3], "imsi": raw[3]["imsi"][:12]}))
    gen.collect.sample_rows(sample, [list(r.values()) for r in raw], {c: i for i, c in enumerate(cols)}, range(4),
                            None)
    inserts = [(k, pa.Table.from_pylist([_nulls(r)], schema=schema)) for k, r in bad]
    inserts += [(DUPLICATE_ROW, None)] * k_dup
    bulk = rows - len(inserts)
    placed = sorted(zip(_positions(bulk, len(inserts)), range(len(inserts))))
    tmp = _tmp(gen.out / name)
    q = 0
    prev: pa.Table | None = None
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for c, a, b in _chunks(bulk):
            rng = gen.rng(3, c)
            ev = draw_events(rng, gen.night, CANONICAL_MIX, b - a, a / bulk, b / bulk)
            gen.collect.events(ev)
            d = canonical_columns(ev, gen.night, gen.cells, with_extras=False)
            table = pa.table([pc.if_else(pc.equal(d[c], ""), pa.scalar(None, pa.string()), d[c]) for c in cols],
                             schema=schema)
            parts, cur = [], 0
            while q < len(placed) and placed[q][0] < b:
                at = placed[q][0] - a
                parts.append(table.slice(cur, at - cur))
                if at > 0:
                    prev = table.slice(at - 1, 1)
                cur = at
                kind, t = inserts[placed[q][1]]
                parts.append(prev if t is None else t)
                q += 1
            parts.append(table.slice(cur))
            prev = table.slice(len(table) - 1, 1)
            writer.write_table(pa.concat_tables(parts), row_group_size=len(table) + len(placed))
            gen.progress.step(name, b - a)
    os.replace(tmp, gen.out / name)
    kinds: dict[str, int] = {}
    for kind, _ in inserts:
        kinds[kind] = kinds.get(kind, 0) + 1
    gen.record(name, CANONICAL_PARQUET.name, rows, kinds)


def _nulls(row: dict[str, str]) -> dict[str, str | None]:
    return {k: (v if v != "" else None) for k, v in row.items()}
