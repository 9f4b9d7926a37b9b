"""Generate one realistic night of CDR / billing landing files for cdr-audit.

    python -m sample_data.generate --rows N --out DIR --seed S [--date YYYY-MM-DD] [--quiet]

Writes the extracts that switches, mediation and billing drop into the landing
folder on one night (DESIGN §2), in the formats the ingest profiles read
(transforms/profiles.py, shared/formats/CDR_FORMATS.md), with injected defects
the pipeline must survive, and returns a manifest of what it wrote (row counts,
defects by kind, and raw sensitive values so tests can prove none leaked).

Deterministic: the same arguments give byte-identical files. The subscriber
population (MSISDN, IMSI, IMEI, name, e-mail, tariff) is derived from the seed
alone, subscriber by subscriber, so two nights made with the same seed share
their subscribers whatever their dates or sizes.

The bulk rows are made vectorized (numpy + pyarrow compute, 100 000-row
chunks, streamed to disk); defect rows and the small files are plain Python.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator, Sequence
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from transforms.steps.profiles import (
    ASTERISK_18,
    CANONICAL,
    CANONICAL_COLUMNS,
    CANONICAL_PARQUET,
    FREESWITCH,
    MEDIATION,
    PAYMENTS_COLUMNS,
    PAYMENTS_PROFILE,
)

DEFAULT_NIGHT = date(2026, 11, 22)
LOCAL_TZ = "Europe/Ljubljana"   # policy operator.local_timezone: PBX/mediation clocks
CHUNK = 100_000                 # bulk rows per vectorized chunk; part of the output's identity
MIN_ROWS = 200
SAMPLE_IDS = 200                # identifiers (msisdn, imsi, imei, cell) kept in the manifest
SAMPLE_NOT_ALLOWED = 5_000      # names, e-mails, IPs kept in the manifest (all of them on small nights)
OVERLONG_BYTES = 100 * 1024
MSISDN_BLOCK = 900_000          # numbers per mobile prefix at the largest weight (caps the population)
MAX_POPULATION = 1_000_000
N_CELLS = 6_000                 # the home network's cells, fixed so subscribers keep their home cell

# Share of N per main file (the rest goes to mediation).
SPLIT = {"billing_csv": 0.35, "parquet": 0.10, "asterisk": 0.06, "freeswitch": 0.04}

# Canonical CSV as a billing/CRM export: canonical columns plus off-list ones
# (DESIGN §1: names, e-mail, IP addresses are never kept) between them.
BILLING_CSV_COLUMNS = (
    "origin_number", "caller_name", "email", *CANONICAL_COLUMNS[1:10], "ip_address", *CANONICAL_COLUMNS[10:],
)
HOSTILE_COLUMNS = ('x"; DROP TABLE runs; --', "remark\u2028line\u0085break", "very_long_" + "column_" * 700)

# Defect kinds. Row kinds count injected rows; file kinds count 1 per file.
MALFORMED = ("too_few_fields", "too_many_fields", "unterminated_quote")        # records that do not parse
RULE_VIOLATIONS = ("email_as_origin", "negative_duration", "unknown_service_type", "bad_imsi",
                   "overlong_field")                                           # parse, break a suite rule
DUPLICATE_ROW = "duplicate_row"
FILE_DEFECTS = ("empty_file", "header_only", "invalid_utf8", "duplicate_file", "spreadsheet_resaved",
                "nul_byte", "hostile_column_name")
# Rows of the payments extract: a non-existent invoice date, an unknown status, no invoice id, and an
# invoice row delivered twice.
PAYMENT_DEFECTS = ("bad_payment_date", "bad_payment_status", "missing_invoice_id", "duplicate_invoice")
ALL_DEFECT_KINDS = MALFORMED + RULE_VIOLATIONS + (DUPLICATE_ROW,) + FILE_DEFECTS + PAYMENT_DEFECTS

# --------------------------------------------------------------------------- reference data

FIRST_NAMES = (
    "Franc", "Janez", "Marko", "Andrej", "Ivan", "Anton", "Luka", "Matej", "Peter", "Jožef", "Tomaž", "Aleš",
    "Žiga", "Nejc", "Jan", "Rok", "Miha", "Gregor", "Jure", "Blaž", "Primož", "Boštjan", "Matjaž", "Uroš",
    "Marija", "Ana", "Maja", "Irena", "Mojca", "Nina", "Eva", "Mateja", "Nataša", "Barbara", "Petra",
    "Andreja", "Tjaša", "Urška", "Špela", "Katja", "Sara", "Lara", "Nika", "Živa", "Jožica", "Polona",
    "Alenka", "Darja",
)
SURNAMES = (
    "Novak", "Horvat", "Kovačič", "Krajnc", "Zupančič", "Potočnik", "Kovač", "Mlakar", "Kos", "Vidmar",
    "Golob", "Turk", "Božič", "Kralj", "Korošec", "Zupan", "Bizjak", "Hribar", "Kotnik", "Kavčič", "Rozman",
    "Kastelic", "Oblak", "Petek", "Žagar", "Hočevar", "Kolar", "Košir", "Koren", "Klemenčič", "Zajc",
    "Knez", "Medved", "Zorko", "Šinkovec", "Pirc", "Jerman", "Furlan", "Petrič", "Kuhar", "Pavlič",
    "Majcen", "Dolenc", "Jereb", "Vovk", "Uršič", "Tomažič", "Lesjak", "Leban", "Babič", "Sever",
    "Breznik", "Hren", "Bogataj", "Čeh", "Šuštar", "Černe", "Jurić", "Ferjančič", "Debeljak",
)
MAIL_DOMAINS = ("gmail.com", "siol.net", "t-2.net", "amis.net", "gmail.com", "outlook.com", "yahoo.com",
                "guest.arnes.si", "a1.net", "gmail.com")
_FOLD = str.maketrans("čćšžđČĆŠŽĐ", "ccszdCCSZD")

# Mobile prefixes after +386 (number portability mixes operators; weights lean to A1 ranges).
MOBILE_PREFIXES = np.array([40, 41, 31, 51, 70, 68, 69, 64, 65])
MOBILE_WEIGHTS = np.array([30, 14, 10, 6, 6, 14, 12, 4, 4], dtype=float)
PREFIX_NETWORK = {40: "29340", 68: "29340", 69: "29340", 41: "29341", 31: "29341", 51: "29341",
                  65: "29341", 70: "29370", 64: "29364"}
LANDLINE_AREAS = np.array([1, 2, 3, 4, 5, 7])
LANDLINE_WEIGHTS = np.array([40, 20, 12, 12, 10, 6], dtype=float)
# Real type allocation codes (first 8 IMEI digits), common handsets.
TACS = np.array([35332811, 35391110, 35467811, 35290611, 35846111, 86769705, 35684610, 35925406,
                 86143804, 35209214, 35456111, 35174913, 35407115, 35873210, 35102011, 86891504])
TARIFFS = ("A1_GO_S", "A1_GO_M", "A1_GO_L", "A1_GO_XL", "PREPAID_START", "PREPAID_PLUS", "A1_BIZ_M")
TARIFF_WEIGHTS = np.array([10, 30, 20, 8, 15, 7, 10], dtype=float)
PREPAID = np.array([t.startswith("PREPAID") for t in TARIFFS])
BUSINESS = np.array([t.startswith("A1_BIZ") for t in TARIFFS])
ROAM_TARIFF = {True: "ROAM_EU", False: "ROAM_WORLD_Z2"}
HOME_PLMN = "29340"

# country: ISO, calling code, national number length, EU/EEA, weight as roaming destination,
# weight as called country, its networks (MCC-MNC; the first is the most used)
COUNTRIES = (
    ("DE", 49, 10, True, 14, 18, ("26201", "26202", "26203")),
    ("AT", 43, 10, True, 16, 14, ("23201", "23203", "23205")),
    ("IT", 39, 10, True, 14, 12, ("22201", "22210", "22288")),
    ("HR", 385, 9, True, 22, 20, ("21910", "21901", "21902")),
    ("FR", 33, 9, True, 5, 4, ("20801", "20810")),
    ("ES", 34, 9, True, 5, 3, ("21401", "21407")),
    ("PL", 48, 9, True, 2, 2, ("26001", "26002")),
    ("IE", 353, 9, True, 1, 1, ("27201",)),
    ("NO", 47, 8, True, 1, 1, ("24201",)),
    ("NL", 31, 9, True, 2, 2, ("20404", "20408")),
    ("GR", 30, 10, True, 3, 1, ("20201",)),
    ("HU", 36, 9, True, 3, 3, ("21630", "21670")),
    ("CZ", 420, 9, True, 2, 2, ("23003",)),
    ("CH", 41, 9, False, 3, 3, ("22801", "22802")),
    ("GB", 44, 10, False, 2, 3, ("23415", "23410")),
    ("US", 1, 10, False, 1, 2, ("310260",)),
    ("RS", 381, 9, False, 3, 6, ("22003", "22001")),
    ("TR", 90, 10, False, 2, 1, ("28601",)),
    ("BA", 387, 8, False, 3, 6, ("21890", "21803")),
)
# PLMN table: index 0 is home; then the other Slovenian networks; then foreign ones.
PLMNS = [HOME_PLMN, "29341", "29370", "29364"] + [p for c in COUNTRIES for p in c[6]]
PLMN_INDEX = {p: i for i, p in enumerate(PLMNS)}
PLMN_EU = np.array([True] * 4 + [c[3] for c in COUNTRIES for _ in c[6]])
C_CC = np.array([c[1] for c in COUNTRIES], dtype=np.int64)
C_LEN = np.array([c[2] for c in COUNTRIES], dtype=np.int64)
C_ROAM_W = np.array([c[4] for c in COUNTRIES], dtype=float)
C_CALL_W = np.array([c[5] for c in COUNTRIES], dtype=float)
C_EU = np.array([c[3] for c in COUNTRIES])
COUNTRY_INDEX = {c[0]: i for i, c in enumerate(COUNTRIES)}
C_FIRST_PLMN = np.array([PLMN_INDEX[c[6][0]] for c in COUNTRIES])
C_PLMN_COUNT = np.array([len(c[6]) for c in COUNTRIES])
C_PLMN_MATRIX = np.array([[PLMN_INDEX[c[6][min(k, len(c[6]) - 1)]] for k in range(3)] for c in COUNTRIES])
NO_NET = len(PLMNS)             # "no network" index: renders as an empty field
PLMN_STR = pa.array(PLMNS + [""])

# Hour-of-day traffic weights (local time).
HOUR_WEIGHTS = np.array([1.2, 0.7, 0.4, 0.3, 0.3, 0.6, 1.5, 3.5, 5.5, 6.5, 6.8, 6.6, 6.2, 6.0, 6.1, 6.3,
                         6.6, 6.9, 6.7, 6.0, 5.2, 4.3, 3.1, 2.0])
DATA_APNS = pa.array(["internet", "internet.a1.si", "internet.a1.si", "internet", "ims", "business.a1.si"])
PURCHASE_CODES = pa.array(["1919", "3030", "1300", "4646", "1717"])
PURCHASE_PRICES_E4 = np.array([9900, 19900, 29900, 49900, 99900, 199900])

# Event kinds (shared by the mediation and canonical generators).
MOC, MTC, SMSO, SMST, MMSO, PGW, CFW, MMST, PURCHASE = range(9)
RECORD_TYPE = pa.array(["MOC", "MTC", "SMSO", "SMST", "MMSO", "PGW", "CFW", "MMST", "PURCHASE"])
SERVICE_TYPE = pa.array(["call", "call", "sms", "sms", "mms", "data", "call", "mms", "purchase"])
DIRECTION = pa.array(["outgoing", "incoming", "outgoing", "incoming", "outgoing", "outgoing", "forwarded",
                      "incoming", "outgoing"])
INCOMING_KIND = np.array([False, True, False, True, False, False, True, True, False])
MEDIATION_MIX = np.array([30, 25, 10, 8, 1, 24, 2, 0, 0], dtype=float)
CANONICAL_MIX = np.array([24, 17, 13, 9, 2, 22, 2, 1, 10], dtype=float)

# Prices (EUR, net of VAT): per minute / message / MB, as 1e-6 EUR.
PRICE_E6 = {"call": 99_000, "call_prepaid": 119_000, "call_intl": 490_000, "call_world": 1_490_000,
            "sms": 69_000, "sms_prepaid": 79_000, "sms_world": 490_000, "mms": 290_000,
            "mb": 5_000, "mb_world": 9_900}
VAT_PERCENT = 22

# Invoices (payments extract): monthly fee per tariff, EUR cents net of VAT (prepaid has no invoice).
MONTHLY_FEE_CENTS = np.array([999, 1999, 2999, 3999, 0, 0, 2499])
INVOICE_MONTHS = 3              # the extract of night N lists the 3 billing periods before N's month
INVOICE_DAY = 3                 # invoices are issued on the 3rd of the month after the period
DUE_DAYS = 15
BUSINESS_ACCOUNT_BLOCK = 16     # business subscribers i // 16 share an account (a company with several lines)
# An invoice's fate, fixed per (subscriber, period) so consecutive extracts agree: paid (on a day after
# the invoice), partially paid, disputed, or never paid. As of a night, a fate not reached yet shows "open".
PAID, PARTIAL, DISPUTED, UNPAID = range(4)
FATE_SHARES = np.array([90, 4, 3, 3], dtype=float)


# --------------------------------------------------------------------------- manifest

@dataclass(frozen=True)
class FileManifest:
    """One landing file the generator wrote."""

    name: str
    profile: str | None          # profile transforms.profiles.detect should pick (None: none should)
    rows: int                    # data records written, header excluded (a malformed record counts 1)
    defects: dict[str, int] = field(default_factory=dict)  # kind -> injected rows (file-level kinds: 1)
    bytes: int = 0


@dataclass(frozen=True)
class NightManifest:
    """What one generated night holds: files, defects and raw sensitive values written."""

    night: date
    seed: int
    rows: int                         # requested N: records of the five main files add up to it
    subscribers: int                  # size of the subscriber population
    files: dict[str, FileManifest]    # file name -> what is in it
    msisdns: tuple[str, ...]          # served subscribers' MSISDNs, E.164 (a sample of up to 200)
    imsis: tuple[str, ...]            # valid IMSIs written (sample of up to 200)
    imeis: tuple[str, ...]            # IMEIs written (sample of up to 200)
    cell_ids: tuple[str, ...]         # home-network cell ids written (sample of up to 200)
    payment_msisdns: tuple[str, ...]  # subscriber numbers written in the payments extract (sample of up to 200)
    account_ids: tuple[str, ...]      # account ids written in the payments extract (sample of up to 200)
    caller_names: tuple[str, ...]     # personal names written (all, up to 5000)
    emails: tuple[str, ...]           # e-mail addresses written (all, up to 5000)
    ip_addresses: tuple[str, ...]     # IPv4 addresses written (all, up to 5000)

    @property
    def rows_total(self) -> int:
        """Data records over every file written (main files, copies and defect files)."""
        return sum(f.rows for f in self.files.values())

    def defect_count(self, kind: str) -> int:
        """Injected rows (or files) of one defect kind over the whole night."""
        return sum(f.defects.get(kind, 0) for f in self.files.values())

    def to_json(self) -> str:
        doc = asdict(self)
        doc["night"] = self.night.isoformat()
        return json.dumps(doc, indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------- vectorized helpers

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _hash(seed: int, stream: int, idx: np.ndarray) -> np.ndarray:
    """splitmix64 of (seed, stream, idx): per-item randomness that does not depend on array size."""
    with np.errstate(over="ignore"):
        z = idx.astype(np.uint64) * _GOLDEN
        z += np.uint64((seed * 0x632BE59BD9B4E019 + stream * 0x8CB92BA72F3D8DD7) & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def _unit(h: np.ndarray) -> np.ndarray:
    """uint64 hash -> float in [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _affine(seed: int, stream: int, modulus: int) -> tuple[int, int]:
    """(a, b) with gcd(a, modulus) = 1: i -> (a*i + b) % modulus is a bijection (unique identifiers)."""
    h = int(_hash(seed, stream, np.array([0, 1]))[0])
    a = h % modulus
    while np.gcd(a, modulus) != 1:
        a += 1
    b = int(_hash(seed, stream, np.array([1]))[0]) % modulus
    return a, b


def _fixed(mat: np.ndarray) -> pa.Array:
    """(n, w) uint8 ASCII matrix -> string array of width w, zero-copy."""
    n, w = mat.shape
    mat = np.ascontiguousarray(mat)
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(mat))


def _digit_matrix(x: np.ndarray, width: int) -> np.ndarray:
    x = np.asarray(x).astype(np.uint64)
    pows = np.uint64(10) ** np.arange(width - 1, -1, -1, dtype=np.uint64)
    return ((x[:, None] // pows) % np.uint64(10)).astype(np.uint8) + np.uint8(48)


def _dec(x: np.ndarray, width: int) -> pa.Array:
    """Non-negative integers as zero-padded decimal strings of a fixed width."""
    return _fixed(_digit_matrix(x, width))


_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


def _hexs(x: np.ndarray, width: int) -> pa.Array:
    x = np.asarray(x).astype(np.uint64)
    shifts = np.uint64(4) * np.arange(width - 1, -1, -1, dtype=np.uint64)
    return _fixed(_HEX[((x[:, None] >> shifts) & np.uint64(15)).astype(np.intp)])


def _int(x: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(x, dtype=np.int64)), pa.string())


def _cat(*parts) -> pa.Array:
    """Element-wise concatenation of string arrays / Python strings."""
    return pc.binary_join_element_wise(*parts, "")


def _amount(e: np.ndarray, decimals: int) -> pa.Array:
    """Non-negative fixed-point integers (value * 10**decimals) as 'int.frac' text."""
    scale = 10 ** decimals
    return _cat(_int(e // scale), ".", _dec(e % scale, decimals))


def _pick(pool: pa.Array, idx: np.ndarray) -> pa.Array:
    return pool.take(pa.array(np.asarray(idx, dtype=np.int64)))


def _where(mask: np.ndarray, a, b) -> pa.Array:
    return pc.if_else(pa.array(mask), a, b)


def _blank_unless(mask: np.ndarray, a: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), a, "")


def _choice(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    cdf = np.cumsum(weights) / weights.sum()
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(weights) - 1)


def _csv_escape(col: pa.Array) -> pa.Array:
    """Quote values that need it (RFC 4180), leave the rest bare."""
    needs = pc.match_substring_regex(col, '[",\r\n]')
    quoted = _cat('"', pc.replace_substring(col, '"', '""'), '"')
    return pc.if_else(needs, quoted, col)


def _quote_all(col: pa.Array, may_hold_quotes: bool = False) -> pa.Array:
    if may_hold_quotes:
        col = pc.replace_substring(col, '"', '""')
    return _cat('"', col, '"')


@dataclass
class _Lines:
    """A chunk of CSV text: one buffer, line boundaries in `offsets`."""

    data: memoryview
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def part(self, start: int, stop: int) -> memoryview:
        return self.data[self.offsets[start]:self.offsets[stop]]


def _lines(cols: Sequence[pa.Array]) -> _Lines:
    joined = pc.binary_join_element_wise(*cols, ",", null_handling="replace")
    joined = pc.binary_join_element_wise(joined, "", "\n")
    if isinstance(joined, pa.ChunkedArray):
        joined = joined.combine_chunks()
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)[joined.offset:joined.offset + len(joined) + 1]
    offsets = offsets.astype(np.int64)
    data = memoryview(joined.buffers()[2])[offsets[0]:offsets[-1]]
    return _Lines(data, offsets - offsets[0])


# --------------------------------------------------------------------------- subscribers and night

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


class Night:
    """One event date: time zone offsets, who roams where tonight."""

    def __init__(self, seed: int, night: date, pop: Population):
        self.seed, self.night, self.pop = seed, night, pop
        tz = ZoneInfo(LOCAL_TZ)
        midnight = datetime(night.year, night.month, night.day, tzinfo=tz).timestamp()
        offsets = [int(datetime.fromtimestamp(midnight + h * 3600, tz).utcoffset().total_seconds())
                   for h in range(25)]
        self.off_start, self.off_end = offsets[0], offsets[-1]
        # Wall-clock second of the day at which a DST change happens (none: end of day).
        self.transition = next((h * 3600 for h, o in enumerate(offsets) if o != offsets[0]), 86_400)
        self.day0 = (night - date(1970, 1, 1)).days            # local date, days since epoch
        i = np.arange(pop.size, dtype=np.uint64)
        perm_roamer = _unit(_hash(seed, 30, i)) < 0.004        # abroad every night (fair-use cases)
        perm_country = _choice_hash(_hash(seed, 31, i), C_ROAM_W)
        if not perm_roamer.any() and pop.size:                  # every population has one (in Austria)
            first = int(np.argmin(_hash(seed, 30, i)))
            perm_roamer[first], perm_country[first] = True, COUNTRY_INDEX["AT"]
        self.perm_roamer = perm_roamer
        tag = self.day0 * 1000
        # About 5 % abroad tonight (more on tiny populations, so every night has roaming).
        tonight = _unit(_hash(seed, 32 + tag, i)) < max(0.05, 6 / max(pop.size, 1))
        country = np.where(perm_roamer, perm_country, _choice_hash(_hash(seed, 33 + tag, i), C_ROAM_W))
        roaming = perm_roamer | tonight
        if roaming.sum() < 2:
            roaming[np.argsort(_hash(seed, 35 + tag, i), kind="stable")[:2]] = True
        # Every night has EU/EEA roaming and roaming outside it.
        r = np.flatnonzero(roaming)
        if not C_EU[country[r]].any():
            country[r[0]] = COUNTRY_INDEX["AT"]
        if C_EU[country[r]].all():
            country[r[-1]] = COUNTRY_INDEX["CH"]
        self.roaming = roaming
        # Mostly the country's main network, sometimes another one of it.
        pick = _hash(seed, 34 + tag, i)
        counts = C_PLMN_COUNT[country]
        alt = 1 + ((pick // np.uint64(3)) % np.maximum(counts - 1, 1).astype(np.uint64)).astype(np.int64)
        use_alt = ((pick % np.uint64(3)) == 0) & (counts > 1)
        self.roam_plmn = C_PLMN_MATRIX[country, np.where(use_alt, alt, 0)]

    def offset(self, sod: np.ndarray) -> np.ndarray:
        return np.where(sod < self.transition, self.off_start, self.off_end)

    def times(self, rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
        """n sorted local seconds-of-day whose traffic quantiles lie in [lo, hi) of the day."""
        u = np.sort(lo + (hi - lo) * rng.random(n))
        cdf = np.concatenate([[0.0], np.cumsum(HOUR_WEIGHTS) / HOUR_WEIGHTS.sum()])
        return np.interp(u, cdf, np.arange(25) * 3600.0).astype(np.int64).clip(0, 86_399)

    # -- timestamp text ------------------------------------------------------
    def _date_rows(self, days: np.ndarray, sep: str) -> np.ndarray:
        lo = int(days.min()) if len(days) else 0
        hi = int(days.max()) if len(days) else 0
        pool = np.frombuffer(b"".join(
            (date(1970, 1, 1) + timedelta(days=d)).strftime(f"%Y{sep}%m{sep}%d").encode() for d in range(lo, hi + 1)
        ), dtype=np.uint8).reshape(-1, 10)
        return pool[days - lo]

    def stamp(self, epoch: np.ndarray, style: str, offset: np.ndarray | None = None) -> pa.Array:
        """Render epoch seconds: 'local' 'YYYY-MM-DD HH:MM:SS', 'iso_offset' (+HH:MM), 'iso_utc' (Z)."""
        days, sod = np.divmod(epoch, 86_400)
        n = len(epoch)
        width = {"local": 19, "iso_offset": 25, "iso_utc": 20}[style]
        mat = np.empty((n, width), dtype=np.uint8)
        mat[:, 0:10] = self._date_rows(days, "-")
        mat[:, 10] = ord(" ") if style == "local" else ord("T")
        h, rem = np.divmod(sod, 3600)
        m, s = np.divmod(rem, 60)
        for col, v in ((11, h), (14, m), (17, s)):
            mat[:, col] = 48 + v // 10
            mat[:, col + 1] = 48 + v % 10
        mat[:, 13] = mat[:, 16] = ord(":")
        if style == "iso_utc":
            mat[:, 19] = ord("Z")
        elif style == "iso_offset":
            oh, om = np.divmod(np.abs(offset) // 60, 60)
            mat[:, 19] = np.where(offset >= 0, ord("+"), ord("-"))
            mat[:, 20], mat[:, 21] = 48 + oh // 10, 48 + oh % 10
            mat[:, 22] = ord(":")
            mat[:, 23], mat[:, 24] = 48 + om // 10, 48 + om % 10
        return _fixed(mat)


def _choice_hash(h: np.ndarray, weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights) / weights.sum()
    return np.minimum(np.searchsorted(cdf, _unit(h), side="right"), len(weights) - 1)


# --------------------------------------------------------------------------- events

@dataclass
class Parties:
    """The other party of each event."""

    e164: np.ndarray      # integer without '+'
    cc: np.ndarray        # country calling code
    nsn: np.ndarray       # national significant number
    domestic: np.ndarray  # Slovenian number
    net: np.ndarray       # PLMN index, NO_NET when not a mobile network
    sub: np.ndarray       # population index for on-net parties, -1 otherwise

    @classmethod
    def draw(cls, rng: np.random.Generator, pop: Population, n: int,
             mobile: np.ndarray | None = None) -> "Parties":
        """Other parties; where `mobile` is set (messages) never a landline."""
        kind = _choice(rng, np.array([38, 27, 20, 15], dtype=float), n)   # on-net, SI mobile, landline, intl
        if mobile is not None:
            kind = np.where(mobile & (kind == 2), 1, kind)
        onnet = pop.draw(rng, n)
        pre = MOBILE_PREFIXES[_choice(rng, MOBILE_WEIGHTS, n)]
        area = LANDLINE_AREAS[_choice(rng, LANDLINE_WEIGHTS, n)]
        country = _choice(rng, C_CALL_W, n)
        r = rng.integers(0, 10**10, n, dtype=np.int64)
        nsn = np.select(
            [kind == 0, kind == 1, kind == 2],
            [pop.msisdn_int[onnet] - 386 * 10**8, pre * 10**6 + r % 10**6, area * 10**7 + r % 10**7],
            10 ** (C_LEN[country] - 1) + r % (9 * 10 ** (C_LEN[country] - 1)),
        )
        cc = np.where(kind == 3, C_CC[country], 386)
        length = np.where(kind == 3, C_LEN[country], 8)
        e164 = cc * 10**length + nsn
        pre_net = np.array([PLMN_INDEX[PREFIX_NETWORK[p]] for p in MOBILE_PREFIXES])[_prefix_pos(pre)]
        net = np.select([kind == 0, kind == 1, kind == 2], [0, pre_net, NO_NET], C_FIRST_PLMN[country])
        return cls(e164, cc, nsn, kind < 3, net, np.where(kind == 0, onnet, -1))


def _prefix_pos(pre: np.ndarray) -> np.ndarray:
    table = np.zeros(100, dtype=np.int64)
    table[MOBILE_PREFIXES] = np.arange(len(MOBILE_PREFIXES))
    return table[pre]


@dataclass
class Events:
    """One chunk of subscriber events, as numbers; formats render them."""

    n: int
    kind: np.ndarray
    sub: np.ndarray
    sod: np.ndarray           # local seconds of day
    utc: np.ndarray           # epoch seconds UTC
    offset: np.ndarray        # local UTC offset, seconds
    roaming: np.ndarray
    plmn: np.ndarray          # serving PLMN index
    cell: np.ndarray          # home cell index (valid when not roaming)
    foreign_cell: np.ndarray  # random ECI for roaming events
    foreign_lac: np.ndarray
    party: Parties
    duration: np.ndarray
    up: np.ndarray            # bytes
    down: np.ndarray
    apn: pa.Array
    charged: np.ndarray       # net, 1e-4 EUR
    discount: np.ndarray
    tax: np.ndarray
    unit_price: np.ndarray    # 1e-6 EUR
    units: np.ndarray         # billed units (minutes / messages / MB)
    free_units: np.ndarray
    tariff: pa.Array
    ip: pa.Array


def draw_events(rng: np.random.Generator, night: Night, mix: np.ndarray, n: int, lo: float, hi: float) -> Events:
    pop = night.pop
    kind = _choice(rng, mix, n)
    sub = pop.draw(rng, n)
    sod = _distinct_times(sub, night.times(rng, n, lo, hi))
    offset = night.offset(sod)
    utc = (night.day0 * 86_400 + sod - offset).astype(np.int64)
    # Someone abroad tonight makes most events there; a permanent roamer makes all of them there.
    roaming = night.roaming[sub] & ((rng.random(n) < 0.85) | night.perm_roamer[sub])
    roaming &= kind != PURCHASE
    plmn = np.where(roaming, night.roam_plmn[sub], 0)
    cell = (pop.home_cell[sub] + rng.integers(0, 6, n)) % N_CELLS
    foreign_cell = rng.integers(0x10000, 0xFFFFFFF, n)
    # A visited network's location areas: a few hundred, like the home network's 240 (and apart from them).
    foreign_lac = rng.integers(0x0100, 0x0400, n)
    party = Parties.draw(rng, pop, n, mobile=np.isin(kind, (SMSO, SMST, MMSO, MMST)))

    is_call = np.isin(kind, (MOC, MTC, CFW))
    is_data = kind == PGW
    is_mms = np.isin(kind, (MMSO, MMST))
    call_s = np.clip(rng.lognormal(np.log(75), 1.1, n), 1, 7200).astype(np.int64)
    data_s = np.clip(rng.lognormal(np.log(300), 1.3, n), 1, 86_000).astype(np.int64)
    duration = np.select([is_call, is_data], [call_s, data_s], 0)
    down = np.where(is_data, np.clip(rng.lognormal(np.log(8e6), 1.6, n), 200, 2e10), 0).astype(np.int64)
    up = np.where(is_data, down // rng.integers(5, 14, n) + rng.integers(0, 4000, n), 0).astype(np.int64)
    mms_size = rng.integers(20_000, 300_000, n)
    up = np.where(kind == MMSO, mms_size, up)
    down = np.where(kind == MMST, mms_size, down)
    apn = _where(is_data, _pick(DATA_APNS, rng.integers(0, len(DATA_APNS), n)),
                 _blank_unless(is_mms, pa.array(np.full(n, "mms"))))

    # Charging: postpaid bundles cover most home use; prepaid, international and
    # non-EU roaming are charged per unit (EU roaming is "roam like at home").
    prepaid = pop.prepaid[sub]
    eu = PLMN_EU[plmn]
    world = roaming & ~eu
    intl = ~party.domestic
    mb = (up + down + 999_999) // 1_000_000
    minutes = (duration + 59) // 60
    out_call = kind == MOC
    sms_out = kind == SMSO
    price = np.zeros(n, dtype=np.int64)
    price = np.where(out_call, np.select([world, intl, prepaid], [PRICE_E6["call_world"], PRICE_E6["call_intl"],
                                                                   PRICE_E6["call_prepaid"]], PRICE_E6["call"]), price)
    price = np.where(kind == MTC, np.where(world, PRICE_E6["call_world"] // 3, 0), price)
    price = np.where(sms_out, np.select([world, prepaid], [PRICE_E6["sms_world"], PRICE_E6["sms_prepaid"]],
                                        PRICE_E6["sms"]), price)
    price = np.where(kind == MMSO, PRICE_E6["mms"], price)
    price = np.where(is_data, np.where(world, PRICE_E6["mb_world"], PRICE_E6["mb"]), price)
    units = np.select([is_call, np.isin(kind, (SMSO, SMST, MMSO, MMST)), is_data], [minutes, 1, mb], 0)
    in_bundle = ~prepaid & ~world & ~(intl & (out_call | sms_out)) & (rng.random(n) < 0.93)
    in_bundle |= (kind == MTC) & ~world
    charged_free = in_bundle | np.isin(kind, (SMST, MMST, CFW))
    gross = np.where(charged_free, 0, (units * price + 50) // 100)
    purchase_price = PURCHASE_PRICES_E4[rng.integers(0, len(PURCHASE_PRICES_E4), n)]
    gross = np.where(kind == PURCHASE, purchase_price, gross)
    price = np.where(kind == PURCHASE, purchase_price * 100, price)
    units = np.where(kind == PURCHASE, 1, units)
    discount = np.where((gross > 0) & (rng.random(n) < 0.08), gross // 10, 0)
    charged = gross - discount
    tax = (charged * VAT_PERCENT + 50) // 100
    free_units = np.where(charged_free & ~INCOMING_KIND[kind] & (kind != PURCHASE), units, 0)

    tariffs = pa.array(list(TARIFFS) + [ROAM_TARIFF[True], ROAM_TARIFF[False], "A1_PAY"])
    t_idx = np.select([kind == PURCHASE, roaming & eu, world], [len(TARIFFS) + 2, len(TARIFFS), len(TARIFFS) + 1],
                      pop.tariff[sub])
    ip = _ips(rng, n)
    return Events(n, kind, sub, sod, utc, offset, roaming, plmn, cell, foreign_cell, foreign_lac, party, duration,
                  up, down, apn, charged, discount, tax, price, units, free_units, _pick(tariffs, t_idx), ip)


def _distinct_times(sub: np.ndarray, sod: np.ndarray) -> np.ndarray:
    """Move a subscriber's second event in one second to the next second, so that no two
    bulk records of a chunk are accidental duplicates (the manifest counts injected ones)."""
    for _ in range(1000):
        key = sub.astype(np.int64) * 100_000 + sod
        order = np.argsort(key, kind="stable")
        ks = key[order]
        dup = np.zeros(len(sod), dtype=bool)
        dup[order[1:][ks[1:] == ks[:-1]]] = True
        if not dup.any():
            break
        sod = np.where(dup, np.where(sod >= 86_399, sod - 7, sod + 1), sod)
    return sod


def _ips(rng: np.random.Generator, n: int) -> pa.Array:
    """Subscriber-side IPv4s: private pools, CGNAT and a public pool."""
    pool = rng.integers(0, 10, n)
    a = np.select([pool < 4, pool < 7], [10, 100], 89)
    b = np.select([pool < 4, pool < 7], [rng.integers(0, 256, n), rng.integers(64, 128, n)], 142)
    c, d = rng.integers(0, 256, n), rng.integers(1, 255, n)
    return pc.binary_join_element_wise(_int(a), _int(b), _int(c), _int(d), ".")


def _served_cells(ev: Events, cells: Cells) -> tuple[pa.Array, pa.Array]:
    cell = _where(ev.roaming, _hexs(ev.foreign_cell, 7), _pick(cells.cell_id, ev.cell))
    lac = _where(ev.roaming, _hexs(ev.foreign_lac, 4), _pick(cells.lac, ev.cell))
    return cell, lac


# --------------------------------------------------------------------------- formats (bulk columns)

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
    cell, lac = _served_cells(ev, cells)
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
    cell, lac = _served_cells(ev, cells)
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


@dataclass
class PbxCalls:
    """One chunk of hosted-PBX call legs (Asterisk / FreeSWITCH)."""

    n: int
    outgoing: np.ndarray
    sub: np.ndarray           # the business subscriber (extension owner)
    caller_sub: np.ndarray    # population member whose name shows as caller ID on incoming legs
    src: pa.Array
    dst: pa.Array             # dial string
    name: pa.Array            # caller-ID name
    start: np.ndarray         # local epoch seconds (wall clock as if UTC)
    ring: np.ndarray
    billsec: np.ndarray
    status: np.ndarray        # 0 answered, 1 no answer, 2 busy, 3 failed


def draw_pbx(rng: np.random.Generator, night: Night, n: int, lo: float, hi: float) -> PbxCalls:
    pop = night.pop
    outgoing = rng.random(n) < 0.6
    sub = pop.draw(rng, n)
    party = Parties.draw(rng, pop, n)
    caller_sub = np.where(party.sub >= 0, party.sub, pop.draw(rng, n))
    national = _cat("0", _int(party.nsn))
    dial = _where(party.domestic, national, _cat("00", _int(party.e164)))
    served = _pick(pop.msisdn, sub)
    other = _cat("+", _int(party.e164))
    src = _where(outgoing, served, other)
    dst = _where(outgoing, dial, served)
    name = _where(outgoing, _pick(pop.name, sub), _pick(pop.name, caller_sub))
    status = _choice(rng, np.array([80, 12, 5, 3], dtype=float), n)
    sod = night.times(rng, n, lo, hi)
    start = night.day0 * 86_400 + sod
    ring = rng.integers(2, 25, n)
    billsec = np.where(status == 0, np.clip(rng.lognormal(np.log(70), 1.1, n), 1, 7200), 0).astype(np.int64)
    return PbxCalls(n, outgoing, sub, caller_sub, src, dst, name, start, ring, billsec, status)


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


# --------------------------------------------------------------------------- writing

def _row_bytes(values: Sequence[str], style: str) -> bytes:
    """One CSV record as the given writer would have written it."""
    if style == "minimal":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        return buf.getvalue().encode("utf-8")
    quote = [True] * len(values)
    if style == "asterisk":                         # duration and billsec are bare integers
        quote = [i not in (12, 13) for i in range(len(values))]
    out = ",".join('"' + v.replace('"', '""') + '"' if q else v for v, q in zip(values, quote))
    return (out + "\n").encode("utf-8")


def _rows(cols: Sequence[pa.Array]) -> list[list[str]]:
    return [list(r) for r in zip(*(c.to_pylist() for c in cols))]


class Collector:
    """Raw sensitive values that reach the landing files (for the manifest)."""

    def __init__(self, pop: Population):
        self.pop = pop
        self.served = np.zeros(pop.size, dtype=bool)     # msisdn + imsi + imei written
        self.named = np.zeros(pop.size, dtype=bool)
        self.mailed = np.zeros(pop.size, dtype=bool)
        self.cells = np.zeros(N_CELLS, dtype=bool)
        self.names: dict[str, None] = {}
        self.emails: dict[str, None] = {}
        self.ips: dict[str, None] = {}
        self.payment_msisdns: tuple[str, ...] = ()
        self.account_ids: tuple[str, ...] = ()

    def payments(self, numbers: pa.Array, accounts: pa.Array) -> None:
        self.payment_msisdns = tuple(pc.unique(numbers).slice(0, SAMPLE_IDS).to_pylist())
        self.account_ids = tuple(pc.unique(accounts).slice(0, SAMPLE_IDS).to_pylist())

    def events(self, ev: Events, *, names: bool = False, ips: np.ndarray | None = None) -> None:
        self.served[ev.sub] = True
        self.cells[ev.cell[~ev.roaming]] = True
        if names:
            self.named[ev.sub] = True
            self.mailed[ev.sub] = True
        if ips is not None:
            self.ip_values(ev.ip.filter(pa.array(ips)))

    def ip_values(self, arr: pa.Array | list[str]) -> None:
        room = SAMPLE_NOT_ALLOWED - len(self.ips)
        if room <= 0:
            return
        values = arr.slice(0, 2 * room).to_pylist() if isinstance(arr, pa.Array) else arr
        for v in values:
            if v and len(self.ips) < SAMPLE_NOT_ALLOWED:
                self.ips[v] = None

    def add(self, names: Sequence[str] = (), emails: Sequence[str] = (), ips: Sequence[str] = ()) -> None:
        for v in names:
            self.names.setdefault(v, None)
        for v in emails:
            self.emails.setdefault(v, None)
        self.ip_values([v for v in ips if v])

    def result(self, cells: Cells) -> dict[str, tuple[str, ...]]:
        pop = self.pop

        def take(arr: pa.Array, mask: np.ndarray, cap: int) -> list[str]:
            return list(dict.fromkeys(_pick(arr, np.flatnonzero(mask)).to_pylist()))[:cap]

        served = np.flatnonzero(self.served)[:SAMPLE_IDS]
        names = list(dict.fromkeys(take(pop.name, self.named, SAMPLE_NOT_ALLOWED) + list(self.names)))
        emails = list(dict.fromkeys(take(pop.email, self.mailed, SAMPLE_NOT_ALLOWED) + list(self.emails)))
        return dict(
            msisdns=tuple(_pick(pop.msisdn, served).to_pylist()),
            imsis=tuple(_pick(pop.imsi, served).to_pylist()),
            imeis=tuple(_pick(pop.imei, served).to_pylist()),
            cell_ids=tuple(_pick(cells.cell_id, np.flatnonzero(self.cells)[:SAMPLE_IDS]).to_pylist()),
            payment_msisdns=self.payment_msisdns,
            account_ids=self.account_ids,
            caller_names=tuple(names[:SAMPLE_NOT_ALLOWED]),
            emails=tuple(emails[:SAMPLE_NOT_ALLOWED]),
            ip_addresses=tuple(self.ips),
        )


class Progress:
    """Progress lines on stderr for big runs."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled and total >= 500_000
        self.done, self.t0, self.last = 0, time.monotonic(), 0.0

    def step(self, name: str, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if self.enabled and (now - self.last >= 2.0 or self.done >= self.total):
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            print(f"  {self.done:>12,} / {self.total:,} rows ({100 * self.done / self.total:5.1f} %)"
                  f"  {rate / 1e6:.2f} M rows/s  [{name}]", file=sys.stderr, flush=True)


@dataclass
class _Insert:
    """A Python-made record placed between bulk rows; `make` gets the previous record."""

    kind: str
    make: Callable[[bytes], bytes]


def _positions(bulk: int, k: int) -> list[int]:
    """k insertion points spread over the bulk rows, never before the first one."""
    return [1 + (j + 1) * max(bulk - 1, 0) // (k + 1) for j in range(k)]


def _chunks(bulk: int) -> Iterator[tuple[int, int, int]]:
    for c, a in enumerate(range(0, bulk, CHUNK)):
        yield c, a, min(a + CHUNK, bulk)


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def write_csv_stream(path: Path, header: bytes, bulk: int, make_chunk: Callable[[int, int, int], _Lines],
                     inserts: list[_Insert], tail: bytes, progress: Progress) -> None:
    """Bulk chunks with inserted records between them, then `tail`; written atomically."""
    placed = sorted(zip(_positions(bulk, len(inserts)), range(len(inserts))))
    tmp = _tmp(path)
    prev = b""
    with open(tmp, "wb") as fh:
        fh.write(header)
        q = 0
        for c, a, b in _chunks(bulk):
            lines = make_chunk(c, a, b)
            cur = 0
            while q < len(placed) and placed[q][0] < b:
                at = placed[q][0] - a
                if at > cur:
                    fh.write(lines.part(cur, at))
                    prev = bytes(lines.part(at - 1, at))
                cur = at
                rec = inserts[placed[q][1]].make(prev)
                fh.write(rec)
                q += 1
            fh.write(lines.part(cur, len(lines)))
            prev = bytes(lines.part(len(lines) - 1, len(lines)))
            progress.step(path.name, b - a)
        for _, i in placed[q:]:                     # only when bulk is tiny
            fh.write(inserts[i].make(prev))
        fh.write(tail)
    os.replace(tmp, path)


def _defect_counts(rows: int) -> tuple[int, int]:
    """(rule violations per kind, duplicate rows) for a file of `rows` records."""
    return 1 + rows // 500_000, 3 + rows // 100_000


class Generator:
    """Writes the files of one night; see generate_night()."""

    def __init__(self, out: Path, rows: int, seed: int, night: date, progress: bool):
        self.out, self.rows, self.seed, self.night_date = out, rows, seed, night
        self.pop = Population.build(seed, population_size(rows))
        self.cells = Cells.build(seed)
        self.night = Night(seed, night, self.pop)
        self.collect = Collector(self.pop)
        self.progress = Progress(rows, progress)
        self.files: dict[str, FileManifest] = {}
        self.tag = night.isoformat()

    def rng(self, file_id: int, chunk: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.night.day0, file_id, chunk])

    def record(self, name: str, profile: str | None, rows: int, defects: dict[str, int]) -> None:
        size = (self.out / name).stat().st_size
        self.files[name] = FileManifest(name, profile, rows, {k: v for k, v in defects.items() if v}, size)

    # -- shared defect material ----------------------------------------------
    def _sample_events(self, file_id: int, n: int, mix: np.ndarray) -> Events:
        return draw_events(self.rng(file_id, 1_000_000), self.night, mix, n, 0.3, 0.7)

    # -- mediation -------------------------------------------------------------
    def mediation(self, rows: int) -> None:
        name = f"mediation_{self.tag}.csv"
        cols = list(MEDIATION.columns)
        ci = {c: i for i, c in enumerate(cols)}
        k_rule, k_dup = _defect_counts(rows)
        sample = self._sample_events(1, 4 * k_rule + 8, MEDIATION_MIX)
        raw = _rows(mediation_columns(sample, self.night, self.cells, self.rng(1, 1_000_001)))
        inserts, used = self._rule_inserts(raw, sample, ci, k_rule, "servedMSISDN", "callDuration", "recordType",
                                           "LCS", "servedIMSI", "accessPointName", "minimal")
        inserts += self._dup_inserts(k_dup)
        # The extract was cut off mid-record, inside a quoted value.
        last = raw[used]
        tail = (",".join(last[:ci["tariffClass"]]) + ',"' + last[ci["tariffClass"]][:5]).encode()
        self._collect_rows(sample, raw, ci, range(used + 1), ip_col="servedPDPAddress")

        def chunk(c: int, a: int, b: int) -> _Lines:
            rng = self.rng(1, c)
            ev = draw_events(rng, self.night, MEDIATION_MIX, b - a, a / bulk, b / bulk)
            self.collect.events(ev, ips=ev.kind == PGW)
            return _lines(mediation_columns(ev, self.night, self.cells, rng))

        bulk = rows - len(inserts) - 1
        write_csv_stream(self.out / name, _row_bytes(cols, "minimal"), bulk, chunk, inserts, tail, self.progress)
        self.record(name, MEDIATION.name, rows, self._kinds(inserts, unterminated_quote=1))

    # -- canonical CSV (+ byte-identical copy) ----------------------------------
    def billing_csv(self, rows: int) -> None:
        name = f"billing_{self.tag}.csv"
        cols = list(BILLING_CSV_COLUMNS)
        ci = {c: i for i, c in enumerate(cols)}
        k_rule, k_dup = _defect_counts(rows)
        sample = self._sample_events(2, 4 * k_rule + 8, CANONICAL_MIX)
        raw = self._canonical_rows(sample, cols)
        inserts, used = self._rule_inserts(raw, sample, ci, k_rule, "origin_number", "duration_s", "service_type",
                                           "video_call", "imsi", "apn", "minimal")
        inserts += self._dup_inserts(k_dup)
        last = raw[used]
        cut_name = last[ci["caller_name"]] if "," in last[ci["caller_name"]] else "Novak, Ana"
        tail = (last[0] + ',"' + cut_name[: len(cut_name) - 2]).encode()     # cut inside the caller_name
        self._collect_rows(sample, raw, ci, range(used), ip_col="ip_address")
        self.collect.add(names=[cut_name[: len(cut_name) - 2]])

        def chunk(c: int, a: int, b: int) -> _Lines:
            rng = self.rng(2, c)
            ev = draw_events(rng, self.night, CANONICAL_MIX, b - a, a / bulk, b / bulk)
            self.collect.events(ev, names=True, ips=np.isin(ev.kind, (PGW, MMSO, MMST, PURCHASE)))
            d = canonical_columns(ev, self.night, self.cells, with_extras=True)
            d["caller_name"] = _csv_escape(d["caller_name"])
            return _lines([d[c] for c in cols])

        bulk = rows - len(inserts) - 1
        write_csv_stream(self.out / name, _row_bytes(cols, "minimal"), bulk, chunk, inserts, tail, self.progress)
        kinds = self._kinds(inserts, unterminated_quote=1)
        self.record(name, CANONICAL.name, rows, kinds)
        copy = f"billing_{self.tag}_copy.csv"
        shutil.copyfile(self.out / name, _tmp(self.out / copy))
        os.replace(_tmp(self.out / copy), self.out / copy)
        self.record(copy, CANONICAL.name, rows, {**kinds, "duplicate_file": 1})

    def _canonical_rows(self, ev: Events, cols: Sequence[str]) -> list[list[str]]:
        d = canonical_columns(ev, self.night, self.cells, with_extras=True)
        return _rows([d[c] for c in cols])

    def _rule_inserts(self, raw: list[list[str]], ev: Events, ci: dict[str, int], k: int, origin: str,
                      duration: str, service: str, bad_service: str, imsi: str, apn: str,
                      style: str) -> tuple[list[_Insert], int]:
        """Malformed and rule-breaking records made from sample rows; returns them and rows used."""
        inserts: list[_Insert] = []
        r = 0

        def add(kind: str, values: list[str]) -> None:
            data = _row_bytes(values, style)
            inserts.append(_Insert(kind, lambda prev, data=data: data))

        for _ in range(k):
            row = list(raw[r]); r += 1
            email = self.pop.email[int(ev.sub[r - 1])].as_py()
            row[ci[origin]] = email
            self.collect.add(emails=[email])
            add("email_as_origin", row)
            row = list(raw[r]); r += 1
            row[ci[duration]] = "-" + str(1 + int(ev.sub[r - 1]) % 90)
            add("negative_duration", row)
            row = list(raw[r]); r += 1
            row[ci[service]] = bad_service
            add("unknown_service_type", row)
            row = list(raw[r]); r += 1
            row[ci[imsi]] = row[ci[imsi]][:4] + "O" + row[ci[imsi]][5:]    # letter O for a zero
            add("bad_imsi", row)
        row = list(raw[r]); r += 1
        add("too_few_fields", row[:-5])
        row = list(raw[r]); r += 1
        add("too_many_fields", row + ["", "EXTRA"])
        row = list(raw[r]); r += 1
        row[ci[apn]] = ("internet." * (OVERLONG_BYTES // 9 + 1))[:OVERLONG_BYTES]
        add("overlong_field", row)
        return inserts, r

    def _dup_inserts(self, k: int) -> list[_Insert]:
        return [_Insert(DUPLICATE_ROW, lambda prev: prev) for _ in range(k)]

    @staticmethod
    def _kinds(inserts: list[_Insert], **extra: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in inserts:
            out[i.kind] = out.get(i.kind, 0) + 1
        return {**out, **extra}

    def _collect_rows(self, ev: Events, raw: list[list[str]], ci: dict[str, int], used: range,
                      ip_col: str | None) -> None:
        """Register the sensitive values of sample rows that were written."""
        subs = ev.sub[list(used)]
        self.collect.served[subs] = True
        self.collect.cells[ev.cell[list(used)][~ev.roaming[list(used)]]] = True
        for i in used:
            row = raw[i]
            if "caller_name" in ci:
                self.collect.add(names=[row[ci["caller_name"]]], emails=[row[ci["email"]]])
            if ip_col:
                self.collect.add(ips=[row[ci[ip_col]]])

    # -- canonical Parquet -----------------------------------------------------
    def parquet(self, rows: int) -> None:
        name = f"billing_{self.tag}.parquet"
        cols = list(CANONICAL_PARQUET.columns)
        schema = pa.schema([(c, pa.string()) for c in cols])
        k_dup = 2 + rows // 200_000
        sample = self._sample_events(3, 8, CANONICAL_MIX)
        d = canonical_columns(sample, self.night, self.cells, with_extras=False)
        raw = [dict(zip(cols, r)) for r in _rows([d[c] for c in cols])]
        bad: list[tuple[str, dict]] = []
        email = self.pop.email[int(sample.sub[0])].as_py()
        self.collect.add(emails=[email])
        bad.append(("email_as_origin", {**raw[0], "origin_number": email}))
        bad.append(("negative_duration", {**raw[1], "duration_s": "-12"}))
        bad.append(("unknown_service_type", {**raw[2], "service_type": "voicemail"}))
        bad.append(("bad_imsi", {**raw[3], "imsi": raw[3]["imsi"][:12]}))
        self._collect_rows(sample, [list(r.values()) for r in raw], {c: i for i, c in enumerate(cols)}, range(4), None)
        inserts = [(k, pa.Table.from_pylist([_nulls(r)], schema=schema)) for k, r in bad]
        inserts += [(DUPLICATE_ROW, None)] * k_dup
        bulk = rows - len(inserts)
        placed = sorted(zip(_positions(bulk, len(inserts)), range(len(inserts))))
        tmp = _tmp(self.out / name)
        q = 0
        prev: pa.Table | None = None
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for c, a, b in _chunks(bulk):
                rng = self.rng(3, c)
                ev = draw_events(rng, self.night, CANONICAL_MIX, b - a, a / bulk, b / bulk)
                self.collect.events(ev)
                d = canonical_columns(ev, self.night, self.cells, with_extras=False)
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
                self.progress.step(name, b - a)
        os.replace(tmp, self.out / name)
        kinds: dict[str, int] = {}
        for kind, _ in inserts:
            kinds[kind] = kinds.get(kind, 0) + 1
        self.record(name, CANONICAL_PARQUET.name, rows, kinds)

    # -- PBX files -------------------------------------------------------------
    def asterisk(self, rows: int) -> None:
        name = f"asterisk_Master_{self.tag}.csv"
        sample = draw_pbx(self.rng(4, 1_000_000), self.night, 4, 0.3, 0.7)
        raw = _rows(asterisk_columns(sample, self.night, self.rng(4, 1_000_001), 900_000))
        email = self.pop.email[int(sample.sub[0])].as_py()
        row = list(raw[0])
        row[1], row[4] = email, f'"{sample.name[0].as_py()}" <{email}>'
        inserts = [_Insert("email_as_origin", lambda prev, d=_row_bytes(row, "asterisk"): d),
                   _Insert("too_few_fields", lambda prev, d=_row_bytes(raw[1][:11], "asterisk"): d)]
        self.collect.add(names=[sample.name[i].as_py() for i in (0, 1)], emails=[email])
        inserts += self._dup_inserts(2 + rows // 200_000)

        def chunk(c: int, a: int, b: int) -> _Lines:
            rng = self.rng(4, c)
            calls = draw_pbx(rng, self.night, b - a, a / bulk, b / bulk)
            self._collect_pbx(calls)
            cols = asterisk_columns(calls, self.night, rng, a)
            return _lines([col if i in (12, 13) else _quote_all(col, may_hold_quotes=(i == 4))
                           for i, col in enumerate(cols)])

        bulk = rows - len(inserts)
        write_csv_stream(self.out / name, b"", bulk, chunk, inserts, b"", self.progress)
        self.record(name, ASTERISK_18.name, rows, self._kinds(inserts))

    def freeswitch(self, rows: int) -> None:
        name = f"freeswitch_{self.tag}.csv"
        sample = draw_pbx(self.rng(5, 1_000_000), self.night, 2, 0.3, 0.7)
        raw = _rows(freeswitch_columns(sample, self.night, self.rng(5, 1_000_001)))
        email = self.pop.email[int(sample.sub[0])].as_py()
        row = list(raw[0])
        row[1] = email
        self.collect.add(names=[row[0]], emails=[email])
        inserts = [_Insert("email_as_origin", lambda prev, d=_row_bytes(row, "all"): d)]
        inserts += self._dup_inserts(2 + rows // 200_000)

        def chunk(c: int, a: int, b: int) -> _Lines:
            rng = self.rng(5, c)
            calls = draw_pbx(rng, self.night, b - a, a / bulk, b / bulk)
            self._collect_pbx(calls)
            return _lines([_quote_all(col) for col in freeswitch_columns(calls, self.night, rng)])

        bulk = rows - len(inserts)
        write_csv_stream(self.out / name, b"", bulk, chunk, inserts, b"", self.progress)
        self.record(name, FREESWITCH.name, rows, self._kinds(inserts))

    def _collect_pbx(self, calls: PbxCalls) -> None:
        self.collect.named[np.where(calls.outgoing, calls.sub, calls.caller_sub)] = True

    # -- small defect files ------------------------------------------------------
    def small_files(self) -> None:
        t = self.tag
        self._write_bytes(f"empty_{t}.csv", b"")
        self.record(f"empty_{t}.csv", None, 0, {"empty_file": 1})

        self._write_bytes(f"header_only_{t}.csv", _row_bytes(CANONICAL_COLUMNS, "minimal"))
        self.record(f"header_only_{t}.csv", CANONICAL.name, 0, {"header_only": 1})

        # A billing export re-encoded by a Windows tool: cp1250, so not valid UTF-8.
        cols = list(CANONICAL_COLUMNS[:1]) + ["caller_name", "email"] + list(CANONICAL_COLUMNS[1:])
        ev = self._sample_events(10, 20, CANONICAL_MIX)
        rows = self._canonical_rows(ev, cols)
        ci = {c: i for i, c in enumerate(cols)}
        rows[0][ci["caller_name"]], rows[0][ci["email"]] = "Žiga Čeh", "ziga.ceh@siol.net"
        self._collect_rows(ev, rows, ci, range(len(rows)), None)
        text = b"".join(_row_bytes(r, "minimal") for r in [cols] + rows).decode("utf-8")
        self._write_bytes(f"latin1_{t}.csv", text.encode("cp1250"))
        self.record(f"latin1_{t}.csv", CANONICAL.name, len(rows), {"invalid_utf8": 1})

        # A FreeSWITCH file opened and saved again in a spreadsheet.
        calls = draw_pbx(self.rng(11, 0), self.night, 24, 0.0, 1.0)
        self._collect_pbx(calls)
        fs = _rows(freeswitch_columns(calls, self.night, self.rng(11, 1)))
        fs.insert(7, list(fs[6]))
        fs.insert(15, list(fs[14]))
        resaved = [[_resaved(v, i) for i, v in enumerate(r)] for r in fs]
        self.collect.add(names=[r[0] for r in resaved])
        lines = [",".join(r) + "\r\n" for r in resaved]
        self._write_bytes(f"freeswitch_resaved_{t}.csv", "".join(lines).encode("utf-8"))
        self.record(f"freeswitch_resaved_{t}.csv", FREESWITCH.name, len(fs),
                    {"spreadsheet_resaved": 1, DUPLICATE_ROW: 2})

        # A NUL byte inside one record.
        cols = list(CANONICAL_COLUMNS)
        ev = self._sample_events(12, 20, CANONICAL_MIX)
        rows = self._canonical_rows(ev, cols)
        self._collect_rows(ev, rows, {c: i for i, c in enumerate(cols)}, range(len(rows)), None)
        body = b"".join(_row_bytes(r, "minimal") for r in [cols] + rows)
        at = body.index(b"\n", body.index(b"\n", len(_row_bytes(cols, "minimal"))) + 1) + 1
        rec_end = body.index(b"\n", at)
        cut = body.rindex(b",", at, rec_end)
        self._write_bytes(f"nul_byte_{t}.csv", body[:cut - 2] + b"\x00" + body[cut - 2:])
        self.record(f"nul_byte_{t}.csv", CANONICAL.name, len(rows), {"nul_byte": 1})

        # Hostile column names in the header (SQL-ish, newline-ish, very long).
        cols = list(CANONICAL_COLUMNS)
        ev = self._sample_events(13, 20, CANONICAL_MIX)
        rows = self._canonical_rows(ev, cols)
        self._collect_rows(ev, rows, {c: i for i, c in enumerate(cols)}, range(len(rows)), None)
        header = cols[:3] + [HOSTILE_COLUMNS[0]] + cols[3:12] + [HOSTILE_COLUMNS[1]] + cols[12:] + [HOSTILE_COLUMNS[2]]
        out = [_row_bytes(header, "minimal")]
        for j, r in enumerate(rows):
            out.append(_row_bytes(r[:3] + ["1=1"] + r[3:12] + [f"r{j}"] + r[12:] + [""], "minimal"))
        self._write_bytes(f"hostile_header_{t}.csv", b"".join(out))
        self.record(f"hostile_header_{t}.csv", CANONICAL.name, len(rows), {"hostile_column_name": len(HOSTILE_COLUMNS)})

    # -- payments / invoice-status extract --------------------------------------
    def payments(self) -> None:
        """One row per (postpaid subscriber, billing period) invoice, status as of the night."""
        name = f"payments_{self.tag}.csv"
        pop, seed = self.pop, self.seed
        subs = np.flatnonzero(~pop.prepaid)
        night_month = np.datetime64(self.night_date, "M")
        periods = night_month - np.arange(INVOICE_MONTHS, 0, -1)            # oldest first
        per = np.repeat(periods, len(subs))
        sub = np.tile(subs, INVOICE_MONTHS)
        n = len(sub)
        key = per.astype(np.int64).astype(np.uint64) * np.uint64(1 << 32) + sub.astype(np.uint64)
        issued = (per + 1).astype("datetime64[D]") + (INVOICE_DAY - 1)
        due = issued + DUE_DAYS
        today = np.datetime64(self.night_date, "D")

        fate = _choice_hash(_hash(seed, 40, key), FATE_SHARES)
        settle = issued + (1 + (_hash(seed, 41, key) % np.uint64(45)).astype(np.int64))   # payment or dispute day
        # However small the night, its oldest period (all fates reached) shows each kind at least once.
        oldest = np.flatnonzero(per == periods[0])
        spare = oldest[np.argsort(_hash(seed, 42, key[oldest]), kind="stable")]
        for j, kind in enumerate((PARTIAL, DISPUTED, UNPAID)):
            if not (fate[oldest] == kind).any() and j < len(spare):
                fate[spare[j]] = kind
        reached = settle <= today
        status = np.select([(fate == PAID) & reached, (fate == PARTIAL) & reached, (fate == DISPUTED) & reached],
                           [0, 2, 3], 1)                                      # index into the names below
        fee = MONTHLY_FEE_CENTS[pop.tariff[sub]]
        extra = (_hash(seed, 43, key) % np.uint64(1500)).astype(np.int64) * (_unit(_hash(seed, 44, key)) < 0.4)
        due_cents = (fee + extra) * (100 + VAT_PERCENT) // 100
        part = due_cents * (20 + (_hash(seed, 45, key) % np.uint64(60)).astype(np.int64)) // 100
        paid_cents = np.select([status == 0, status == 2], [due_cents, part], 0)
        has_paid_date = (status == 0) | (status == 2)

        business = BUSINESS[pop.tariff[sub]]
        a, b = _affine(seed, 46, 10**7)
        consumer_no = (np.uint64(a) * sub.astype(np.uint64) + np.uint64(b)) % np.uint64(10**7)
        a, b = _affine(seed, 47, 10**7)
        company_no = (np.uint64(a) * (sub // BUSINESS_ACCOUNT_BLOCK).astype(np.uint64) + np.uint64(b)) % np.uint64(10**7)
        account = _where(business, _cat("ACC-9", _dec(company_no, 7)), _cat("ACC-1", _dec(consumer_no, 7)))
        a, b = _affine(seed, 48, 10**8)
        serial = (np.uint64(a) * sub.astype(np.uint64) + np.uint64(b)) % np.uint64(10**8)
        period = pa.array(np.datetime_as_string(per, unit="M"))
        invoice_date = pa.array(np.datetime_as_string(issued, unit="D"))
        cols = {
            "invoice_id": _cat("INV-", pc.replace_substring(period, "-", ""), "-", _dec(serial, 8)),
            "account_id": account,
            "subscriber_number": _pick(pop.msisdn, sub),
            "billing_period": period,
            "invoice_date": invoice_date,
            "due_date": pa.array(np.datetime_as_string(due, unit="D")),
            "amount_due": _amount(due_cents, 2),
            "amount_paid": _amount(paid_cents, 2),
            "paid_date": _blank_unless(has_paid_date, pa.array(np.datetime_as_string(settle, unit="D"))),
            "status": _pick(pa.array(["paid", "open", "partially_paid", "disputed"]), status),
            "claim_type": _where(business, "business_services", "consumer_services"),
        }
        self.collect.payments(cols["subscriber_number"], cols["account_id"])
        # Defects, one each, on rows spread over the file; the duplicate follows its original.
        at = {kind: (j + 1) * n // 5 for j, kind in enumerate(PAYMENT_DEFECTS)}

        def only(kind: str) -> np.ndarray:
            mask = np.zeros(n, dtype=bool)
            mask[at[kind]] = True
            return mask

        cols["invoice_date"] = _where(only("bad_payment_date"), _cat(pc.utf8_slice_codeunits(invoice_date, 0, 4),
                                                                       "-02-30"), cols["invoice_date"])
        cols["status"] = _where(only("bad_payment_status"), "settled", cols["status"])
        cols["invoice_id"] = _where(only("missing_invoice_id"), "", cols["invoice_id"])
        order = np.insert(np.arange(n), at["duplicate_invoice"] + 1, at["duplicate_invoice"])
        lines = _lines([_pick(cols[c], order) for c in PAYMENTS_COLUMNS])
        self._write_bytes(name, _row_bytes(PAYMENTS_COLUMNS, "minimal") + bytes(lines.data))
        self.record(name, PAYMENTS_PROFILE, len(order), {k: 1 for k in PAYMENT_DEFECTS})

    def _write_bytes(self, name: str, data: bytes) -> None:
        tmp = _tmp(self.out / name)
        tmp.write_bytes(data)
        os.replace(tmp, self.out / name)


def _nulls(row: dict[str, str]) -> dict[str, str | None]:
    return {k: (v if v != "" else None) for k, v in row.items()}


def _resaved(value: str, col: int) -> str:
    """A value as a spreadsheet writes it back: '+' of numbers lost, dates 'YYYY/M/D H:MM', no quotes."""
    if col in (4, 5, 6) and value:
        d = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
        return f"{d.year}/{d.month}/{d.day} {d.hour}:{d.minute:02d}"
    if col in (1, 2) and value.startswith("+"):
        return value[1:]
    return value.replace(",", " ")


def population_size(rows: int) -> int:
    """Subscribers in the population of a night of `rows` records (capped where IMEI serials stay unique)."""
    return min(max(50, rows // 40), MAX_POPULATION)


def split_rows(rows: int) -> dict[str, int]:
    """Records per main file; they add up to `rows`."""
    parts = {k: int(rows * f) for k, f in SPLIT.items()}
    parts["mediation"] = rows - sum(parts.values())
    return parts


def generate_night(out: Path, rows: int, seed: int, night: date = DEFAULT_NIGHT, *,
                   progress: bool = False) -> NightManifest:
    """Write one night of landing files into `out` and describe them.

    Deterministic in (rows, seed, night). The subscriber population depends on
    the seed only (its size on `rows`), so nights with the same seed share it.
    """
    if rows < MIN_ROWS:
        raise ValueError(f"rows must be at least {MIN_ROWS}")
    if seed < 0:
        raise ValueError("seed must be non-negative")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gen = Generator(out, rows, seed, night, progress)
    parts = split_rows(rows)
    gen.mediation(parts["mediation"])
    gen.billing_csv(parts["billing_csv"])
    gen.parquet(parts["parquet"])
    gen.asterisk(parts["asterisk"])
    gen.freeswitch(parts["freeswitch"])
    gen.small_files()
    gen.payments()
    return NightManifest(night=night, seed=seed, rows=rows, subscribers=gen.pop.size,
                         files=dict(sorted(gen.files.items())), **gen.collect.result(gen.cells))


# --------------------------------------------------------------------------- CLI

_EPILOG = """\
files written into DIR (D = --date):
  mediation_D.csv           3GPP-style mediation export, header = mediation profile columns; holds
                            roaming (servingNodePLMNIdentifier 29340 home, EU/EEA and non-EU PLMNs),
                            PGW data records, charges in EUR with 22 %% VAT; servedPDPAddress = IPv4
  billing_D.csv             canonical billing CSV (all canonical columns) plus off-list columns
                            caller_name, email, ip_address; start_time ISO UTC
  billing_D_copy.csv        byte-identical copy of billing_D.csv (duplicate delivery)
  billing_D.parquet         canonical columns, all strings
  asterisk_Master_D.csv     Asterisk cdr_csv Master.csv, 18 columns, no header, local time
  freeswitch_D.csv          FreeSWITCH mod_cdr_csv example template, 15 quoted columns, no header
  empty_D.csv               0 bytes
  header_only_D.csv         canonical header, no records
  latin1_D.csv              canonical CSV encoded cp1250 (invalid UTF-8: 'Žiga Čeh')
  freeswitch_resaved_D.csv  FreeSWITCH rows saved again by a spreadsheet: unquoted, 'YYYY/M/D H:MM',
                            numbers without '+', CRLF, two repeated rows
  nul_byte_D.csv            canonical CSV with a NUL byte inside one record
  hostile_header_D.csv      canonical CSV with hostile column names (SQL-ish, newline-ish, ~5 KB long)
  payments_D.csv            payments / invoice-status extract (UTF-8, header): one row per invoice of each
                            postpaid subscriber for the 3 billing periods before D's month (invoice on the
                            3rd of the next month, due 15 days later), status as of D: mostly paid, some
                            open, a few partially_paid and disputed; claim_type business_services for
                            business tariffs (several lines may share one ACC- account), else
                            consumer_services; subscriber_number in E.164

injected row defects (every night, however small; counts grow slowly with N):
  malformed   too_few_fields, too_many_fields, unterminated_quote (the mediation and canonical
              CSVs end in a record cut inside a quoted value: the extract was truncated)
  oversized   overlong_field: one ~100 KB apn value per CSV (parses; breaks the apn rule)
  rule        email_as_origin, negative_duration, unknown_service_type, bad_imsi
  duplicate   duplicate_row: records repeated verbatim inside a file
  payments    bad_payment_date (invoice_date YYYY-02-30), bad_payment_status ('settled'),
              missing_invoice_id, duplicate_invoice (an invoice row delivered twice): one each
Mediation and canonical CSV get every row kind; Parquet gets the rule kinds and duplicates;
Asterisk gets email_as_origin, too_few_fields, duplicates; FreeSWITCH email_as_origin, duplicates.
All other records are valid under expectations/billing_cdr.json.

N (--rows) is split over the five main files (mediation 45 %, canonical CSV 35 %, Parquet 10 %,
Asterisk 6 %, FreeSWITCH 4 %); their record counts (defect rows included) add up to N. The
subscriber population has max(50, N/40) members and depends on --seed only, so nights generated
with the same seed share subscribers. Same arguments => byte-identical files.

Progress goes to stderr on runs of 500,000 rows or more, and a summary (files, rows, bytes,
defects) at the end; --quiet silences both. From Python: sample_data.generate.generate_night()
returns the same manifest as a NightManifest dataclass.
"""


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m sample_data.generate",
        description="Generate one realistic night of CDR / billing landing files (with defects) for cdr-audit.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, required=True, metavar="N",
                    help=f"records over the five main files (>= {MIN_ROWS}); 10,000,000 streams in flat memory")
    ap.add_argument("--out", type=Path, required=True, metavar="DIR",
                    help="landing folder to write into (created; this generator's files are overwritten)")
    ap.add_argument("--seed", type=int, required=True, metavar="S",
                    help="non-negative seed: output and subscriber population are a function of it")
    ap.add_argument("--date", type=date.fromisoformat, default=DEFAULT_NIGHT, metavar="YYYY-MM-DD",
                    help=f"event date of the night, local time {LOCAL_TZ} (default {DEFAULT_NIGHT})")
    ap.add_argument("--manifest", type=Path, metavar="FILE",
                    help="also write the manifest (files, rows, defects, raw sensitive values) as JSON to FILE;"
                         " keep it outside DIR, it is not a landing file")
    ap.add_argument("--quiet", action="store_true", help="print nothing (no progress, no summary)")
    args = ap.parse_args(argv)
    if args.rows < MIN_ROWS:
        ap.error(f"--rows must be at least {MIN_ROWS}")
    if args.seed < 0:
        ap.error("--seed must be non-negative")
    t0 = time.monotonic()
    manifest = generate_night(args.out, args.rows, args.seed, args.date, progress=not args.quiet)
    elapsed = time.monotonic() - t0
    if args.manifest:
        args.manifest.parent.mkdir(parents=True, exist_ok=True)
        args.manifest.write_text(manifest.to_json() + "\n", encoding="utf-8")
    if not args.quiet:
        print(_summary(manifest, args.out, elapsed), file=sys.stderr)
    return 0


def _summary(m: NightManifest, out: Path, elapsed: float) -> str:
    lines = [f"night {m.night} seed {m.seed}: {len(m.files)} files, {m.rows_total:,} records,"
             f" {m.subscribers:,} subscribers, {elapsed:.1f} s -> {out}"]
    for f in m.files.values():
        defects = ", ".join(f"{k} {v}" for k, v in sorted(f.defects.items()))
        lines.append(f"  {f.name:<34} {f.rows:>11,} rows {f.bytes:>14,} B  {f.profile or '-':<19} {defects}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
