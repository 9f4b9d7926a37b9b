"""The operator's subscribers (MSISDN, IMSI, IMEI, name, e-mail, tariff, home cell) and its cells.

Subscriber i depends only on (seed, i), so nights made with the same seed share them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .reference import (
    FIRST_NAMES,
    HOME_PLMN,
    MAIL_DOMAINS,
    MOBILE_PREFIXES,
    MOBILE_WEIGHTS,
    N_CELLS,
    PREPAID,
    SURNAMES,
    TACS,
    TARIFF_WEIGHTS,
    TARIFFS,
)
from .vectorized import (
    _affine,
    _blank_unless,
    _cat,
    _dec,
    _digit_matrix,
    _fixed,
    _hash,
    _hexs,
    _int,
    _pick,
    _unit,
    _where,
)

MSISDN_BLOCK = 900_000          # numbers per mobile prefix at the largest weight (caps the population)
MAX_POPULATION = 1_000_000
_FOLD = str.maketrans("čćšžđČĆŠŽĐ", "ccszdCCSZD")


@dataclass(frozen=True)
class Population:
    """The operator's subscribers; subscriber i depends only on (seed, i)."""

    size: int
    msisdn_int: np.ndarray       # 386XXXXXXXX as integer
    msisdn: pa.Array             # '+386' + 8 digits
    imsi: pa.Array               # 29340 + 10 digits
    imei: pa.Array               # TAC + serial + Luhn digit
    name: pa.Array               # as a CRM / caller-ID shows it ('Ana Novak', sometimes 'Novak, Ana')
    email: pa.Array
    tariff: np.ndarray           # index into TARIFFS
    prepaid: np.ndarray
    home_cell: np.ndarray        # index into the cells
    activity: np.ndarray         # cumulative activity distribution (some subscribers talk much more)

    @classmethod
    def build(cls, seed: int, size: int) -> "Population":
        i = np.arange(size, dtype=np.uint64)
        # MSISDN: a bijection of i onto weighted prefix blocks, so numbers are unique
        # and the prefix mix follows MOBILE_WEIGHTS; within a block the offset is
        # spread over the 6 subscriber digits by another bijection.
        blocks = (MOBILE_WEIGHTS / MOBILE_WEIGHTS.max() * MSISDN_BLOCK).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(blocks)])
        a, b = _affine(seed, 1, int(starts[-1]))
        j = ((np.uint64(a) * i + np.uint64(b)) % np.uint64(starts[-1])).astype(np.int64)
        block = np.searchsorted(starts, j, side="right") - 1
        a, b = _affine(seed, 2, 10**6)
        local = (np.uint64(a) * (j - starts[block]).astype(np.uint64) + np.uint64(b)) % np.uint64(10**6)
        msisdn_int = np.int64(386) * 10**8 + MOBILE_PREFIXES[block] * 10**6 + local.astype(np.int64)
        msisdn = _cat("+", _int(msisdn_int))

        a, b = _affine(seed, 3, 10**10)
        msin = (np.uint64(a) * i + np.uint64(b)) % np.uint64(10**10)
        imsi = _cat(HOME_PLMN, _dec(msin, 10))

        tac = TACS[(_hash(seed, 4, i) % np.uint64(len(TACS))).astype(np.intp)]
        a, b = _affine(seed, 5, 10**6)
        serial = (np.uint64(a) * i + np.uint64(b)) % np.uint64(10**6)
        body = _digit_matrix(tac.astype(np.uint64) * np.uint64(10**6) + serial, 14)
        imei = _fixed(np.concatenate([body, luhn_digit(body - 48)[:, None] + 48], axis=1).astype(np.uint8))

        first = (_hash(seed, 6, i) % np.uint64(len(FIRST_NAMES))).astype(np.intp)
        last = (_hash(seed, 7, i) % np.uint64(len(SURNAMES))).astype(np.intp)
        comma_form = _unit(_hash(seed, 8, i)) < 0.05
        firsts, lasts = pa.array(FIRST_NAMES), pa.array(SURNAMES)
        f, s = _pick(firsts, first), _pick(lasts, last)
        name = _where(comma_form, _cat(s, ", ", f), _cat(f, " ", s))
        ff = pa.array([n.translate(_FOLD).lower() for n in FIRST_NAMES])
        ss = pa.array([n.translate(_FOLD).lower() for n in SURNAMES])
        h9 = _hash(seed, 9, i)
        suffix = (h9 % np.uint64(100)).astype(np.int64)
        with_suffix = _unit(_hash(seed, 10, i)) < 0.6
        domain = _pick(pa.array(MAIL_DOMAINS), (h9 // np.uint64(100)) % np.uint64(len(MAIL_DOMAINS)))
        email = _cat(_pick(ff, first), ".", _pick(ss, last), _blank_unless(with_suffix, _int(suffix)), "@", domain)

        cdf = np.cumsum(TARIFF_WEIGHTS) / TARIFF_WEIGHTS.sum()
        tariff = np.searchsorted(cdf, _unit(_hash(seed, 11, i)), side="right").clip(0, len(TARIFFS) - 1)
        home_cell = (_hash(seed, 12, i) % np.uint64(N_CELLS)).astype(np.int64)
        weight = 0.2 + 3.0 * _unit(_hash(seed, 13, i)) ** 3
        activity = np.cumsum(weight) / weight.sum()
        return cls(size, msisdn_int, msisdn, imsi, imei, name, email, tariff, PREPAID[tariff], home_cell, activity)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(self.activity, rng.random(n), side="right"), self.size - 1)


def luhn_digit(body: np.ndarray) -> np.ndarray:
    """Luhn check digit for each row of a (n, k) digit matrix (values 0-9)."""
    body = body.astype(np.int64)
    k = body.shape[1]
    doubled = (np.arange(k)[::-1] % 2) == 0      # rightmost body digit is doubled
    d = body.copy()
    d[:, doubled] *= 2
    d[d > 9] -= 9
    return (10 - d.sum(axis=1) % 10) % 10


@dataclass(frozen=True)
class Cells:
    """The home network's cells: id (7 hex digits, LTE ECI) and location area (4 hex digits)."""

    cell_id: pa.Array
    lac: pa.Array

    @classmethod
    def build(cls, seed: int) -> "Cells":
        i = np.arange(N_CELLS, dtype=np.uint64)
        a, b = _affine(seed, 20, 0xE0000)
        enb = np.uint64(0x20000) + (np.uint64(a) * i + np.uint64(b)) % np.uint64(0xE0000)
        sector = np.array([1, 2, 3, 11, 12, 13], dtype=np.uint64)[(_hash(seed, 21, i) % np.uint64(6)).astype(np.intp)]
        lac = np.uint64(0x1A00) + i // np.uint64(25)
        return cls(_hexs(enb * np.uint64(256) + sector, 7), _hexs(lac, 4))


def population_size(rows: int) -> int:
    """Subscribers in the population of a night of `rows` records (capped where IMEI serials stay unique)."""
    return min(max(50, rows // 40), MAX_POPULATION)
