"""One event date: its time zone offsets (DST days included), who roams where tonight,
traffic times and timestamp text."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from .reference import C_EU, C_PLMN_COUNT, C_PLMN_MATRIX, C_ROAM_W, COUNTRY_INDEX, HOUR_WEIGHTS, LOCAL_TZ
from .subscribers import Population
from .vectorized import _choice_hash, _fixed, _hash, _unit


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
        ), dtype=np.uint8).reshape(-1, 8 + 2 * len(sep))
        return pool[days - lo]

    def stamp(self, epoch: np.ndarray, style: str, offset: np.ndarray | None = None) -> pa.Array:
        """Render epoch seconds: 'local' 'YYYY-MM-DD HH:MM:SS', 'iso_offset' (+HH:MM), 'iso_utc' (Z),
        'ts32298' YYMMDDhhmmss+hhmm (the wall clock given and its offset, as formats/ts32298_ps.yaml reads it)."""
        days, sod = np.divmod(epoch, 86_400)
        n = len(epoch)
        if style == "ts32298":
            return self._ts32298(days, sod, offset)
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

    def _ts32298(self, days: np.ndarray, sod: np.ndarray, offset: np.ndarray) -> pa.Array:
        mat = np.empty((len(days), 17), dtype=np.uint8)
        mat[:, 0:6] = self._date_rows(days, "")[:, 2:8]
        h, rem = np.divmod(sod, 3600)
        m, s = np.divmod(rem, 60)
        oh, om = np.divmod(np.abs(offset) // 60, 60)
        mat[:, 12] = np.where(offset >= 0, ord("+"), ord("-"))
        for col, v in ((6, h), (8, m), (10, s), (13, oh), (15, om)):
            mat[:, col] = 48 + v // 10
            mat[:, col + 1] = 48 + v % 10
        return _fixed(mat)
