"""Events as numbers, made a chunk at a time: subscriber events (calls, messages, data sessions,
purchases) with their other party, place, volumes and charges; and hosted-PBX call legs.
The format modules render them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .night import Night
from .reference import (
    C_CALL_W,
    C_CC,
    C_FIRST_PLMN,
    C_LEN,
    CFW,
    DATA_APNS,
    INCOMING_KIND,
    LANDLINE_AREAS,
    LANDLINE_WEIGHTS,
    MMSO,
    MMST,
    MOBILE_PREFIXES,
    MOBILE_WEIGHTS,
    MOC,
    MTC,
    N_CELLS,
    NO_NET,
    PGW,
    PLMN_EU,
    PLMN_INDEX,
    PREFIX_NETWORK,
    PRICE_E6,
    PURCHASE,
    PURCHASE_PRICES_E4,
    ROAM_TARIFF,
    SMSO,
    SMST,
    TARIFFS,
    VAT_PERCENT,
)
from .subscribers import Cells, Population
from .vectorized import _blank_unless, _cat, _choice, _hexs, _int, _pick, _where


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


def served_cells(ev: Events, cells: Cells) -> tuple[pa.Array, pa.Array]:
    """Cell id and location area of each event: its home-network cell, or a visited network's."""
    cell = _where(ev.roaming, _hexs(ev.foreign_cell, 7), _pick(cells.cell_id, ev.cell))
    lac = _where(ev.roaming, _hexs(ev.foreign_lac, 4), _pick(cells.lac, ev.cell))
    return cell, lac


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
