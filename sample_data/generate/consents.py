"""The consent extract: grants, withdrawals and re-grants of subscribers who appear in tonight's CDRs,
recorded on the night and the days before (so consecutive extracts overlap), out of order, and one row of
each consent defect."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

from .formats import CONSENT_CHANNELS, CONSENT_COLUMNS, CONSENT_PURPOSES, CONSENTS_PROFILE
from .generator import Generator
from .manifest import CONSENT_DEFECTS
from .reference import LOCAL_TZ
from .vectorized import _hash
from .writing import _row_bytes

# An extract lists the events recorded on its night and the days before it: consecutive nights overlap.
WINDOW_DAYS = 3
# A subscriber's consent story for one purpose, repeated weekly from a phase of their own: day 0 of the cycle
# grants, day 1 withdraws, day 2 grants again (what the story has of these).
STORIES = (("granted",), ("granted", "withdrawn"), ("granted", "withdrawn", "granted"))
MAX_SUBSCRIBERS = 5_000


def write_consents(gen: Generator) -> None:
    """Consent events of a share of tonight's served subscribers, then the defects, in no time order."""
    name = f"consents_{gen.tag}.csv"
    seed, night = gen.seed, gen.night_date
    served = np.flatnonzero(gen.collect.served)
    picked = served[np.argsort(_hash(seed, 60, served), kind="stable")]
    picked = picked[:min(len(picked), max(12, len(picked) // 8), MAX_SUBSCRIBERS)]
    first = datetime(night.year, night.month, night.day) - timedelta(days=WINDOW_DAYS - 1)
    rows: list[tuple[int, list[str]]] = []          # (order key, fields)
    for i, sub in enumerate(picked):
        h = int(_hash(seed, 61, np.array([sub]))[0])
        story, purpose = STORIES[h % 3], CONSENT_PURPOSES[(h >> 8) % len(CONSENT_PURPOSES)]
        phase0 = (h >> 16) % 7
        if i == 0:      # however small the night, one subscriber grants, withdraws and grants again in it
            story, phase0 = STORIES[2], -first.toordinal() % 7
        for d in range(WINDOW_DAYS):
            day = first + timedelta(days=d)
            phase = (day.toordinal() + phase0) % 7
            if phase < len(story):
                # The event is one of (subscriber, day): the same in every extract that lists it.
                eh = int(_hash(seed, 62, np.array([int(sub) * 1_000_000 + day.toordinal()]))[0])
                local = day + timedelta(minutes=7 * 60 + eh % (14 * 60))   # 07:00-20:59 local, whole minutes
                fields = [_number(gen.pop.msisdn[int(sub)].as_py(), eh), purpose, story[phase],
                          _recorded_at(local, eh >> 24), CONSENT_CHANNELS[(eh >> 40) % len(CONSENT_CHANNELS)]]
                rows.append((eh, fields))
    rows.sort(key=lambda r: r[0])                   # out of time order, as a consent system exports
    lines = [fields for _, fields in rows]
    # Spread over the file, each after the valid row it copies (from the last, so positions hold).
    at = [(j + 1) * len(lines) // (len(CONSENT_DEFECTS) + 1) for j in range(len(CONSENT_DEFECTS))]
    defects = [_defect(kind, list(lines[i]), night, j) for j, (kind, i) in enumerate(zip(CONSENT_DEFECTS, at))]
    for i, row in reversed(list(zip(at, defects))):
        lines.insert(i + 1, row)
    text = "".join(",".join(f) + "\n" for f in lines)
    gen.write_bytes(name, _row_bytes(CONSENT_COLUMNS, "minimal") + text.encode())
    gen.record(name, CONSENTS_PROFILE, len(lines), {k: 1 for k in CONSENT_DEFECTS})


def _number(msisdn: str, h: int) -> str:
    """E.164 mostly; one in five written nationally (trunk 0), as a contact centre types it."""
    return "0" + msisdn[4:] if h % 5 == 0 else msisdn


def _recorded_at(local: datetime, h: int) -> str:
    """One instant in ISO-8601, written three ways: UTC with Z, local with its offset, local without one."""
    aware = local.replace(tzinfo=ZoneInfo(LOCAL_TZ))
    style = h % 3
    if style == 0:
        return aware.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return aware.isoformat(timespec="seconds") if style == 1 else local.strftime("%Y-%m-%dT%H:%M:%S")


def _defect(kind: str, row: list[str], night, j: int) -> list[str]:
    """A copy of a valid row with one fault; its own instant (second 30: no valid row has one), so it repeats
    no event but the duplicate."""
    if kind == "duplicate_consent":
        return row
    own = f"{night.isoformat()}T05:0{j}:30Z"
    number, purpose, status, _, channel = row
    if kind == "broken_consent_line":
        return [number, purpose, status]                       # too few fields: a line cut short
    faults = {"bad_consent_number": (0, "unknown"), "unknown_purpose": (1, "newsletters"),
              "unknown_channel": (4, "sms"), "bad_recorded_at": (3, f"{night.year}-02-30T10:00:00Z"),
              "future_recorded_at": (3, f"{(night + timedelta(days=2)).isoformat()}T10:00:00Z")}
    out = [number, purpose, status, own, channel]
    column, value = faults[kind]
    out[column] = value
    return out
