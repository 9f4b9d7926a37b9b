"""Subscribers: identifier shapes, uniqueness, dependence on the seed only, shared across nights."""

from __future__ import annotations

import re
from pathlib import Path

from sample_data.generate import Population

from .common import SEED, T, _luhn_ok, _records


def test_identifier_shapes(night):
    _, manifest = night
    assert manifest.msisdns and manifest.imsis and manifest.imeis and manifest.cell_ids
    for m in manifest.msisdns:
        assert re.fullmatch(r"\+386(40|41|31|51|70|68|69|64|65)\d{6}", m), m
    for i in manifest.imsis:
        assert re.fullmatch(r"29340\d{10}", i), i
    for e in manifest.imeis:
        assert re.fullmatch(r"\d{15}", e) and _luhn_ok(e), e
    for c in manifest.cell_ids:
        assert re.fullmatch(r"[0-9A-F]{7}", c), c


def test_population_identifiers_unique_and_valid():
    pop = Population.build(SEED, 20_000)
    msisdns, imsis, imeis = pop.msisdn.to_pylist(), pop.imsi.to_pylist(), pop.imei.to_pylist()
    assert len(set(msisdns)) == len(set(imsis)) == len(set(imeis)) == 20_000
    assert all(_luhn_ok(e) for e in imeis)
    assert all(i.startswith("29340") and len(i) == 15 for i in imsis)


def test_population_depends_on_seed_only():
    small, big = Population.build(SEED, 50), Population.build(SEED, 5_000)
    assert small.msisdn.to_pylist() == big.msisdn.to_pylist()[:50]
    assert small.imei.to_pylist() == big.imei.to_pylist()[:50]
    assert small.name.to_pylist() == big.name.to_pylist()[:50]


def test_nights_with_same_seed_share_subscribers(night, other_night):
    (out_a, a), (out_b, b) = night, other_night
    shared = set(a.msisdns) & set(b.msisdns)
    assert len(shared) >= 10

    def identities(out: Path, day: str) -> dict[str, tuple[str, str]]:
        records = _records(out / f"mediation_{day}.csv")
        return {r[1]: (r[2], r[3]) for r in records[1:] if len(r) == len(records[0]) and r[1].startswith("+")}

    ida, idb = identities(out_a, T), identities(out_b, "2026-11-23")
    common = set(ida) & set(idb)
    assert len(common) >= 10
    assert all(ida[m] == idb[m] for m in common), "a subscriber keeps IMSI and IMEI across nights"
