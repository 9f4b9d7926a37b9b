"""The consent extract: served subscribers' grants, withdrawals and re-grants, overlapping nights, defects."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sample_data.generate import CONSENT_DEFECTS, LOCAL_TZ
from transforms.policy import load_policy
from transforms.privacy.numbers import normalize_e164
from transforms.steps.consents import CONSENT_COLUMNS

from .common import CONSENTS_FILE, NIGHT, _records

POLICY = load_policy()
FIELDS = len(CONSENT_COLUMNS)
END = datetime.combine(NIGHT + timedelta(days=1), datetime.min.time())      # the night's end, UTC


def _utc(text: str) -> datetime | None:
    """recorded_at as the step reads it (Z, offset, or local without one), written here again from the rule."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=ZoneInfo(LOCAL_TZ))
    return t.astimezone(timezone.utc).replace(tzinfo=None)


def e164_of(number: str) -> str:
    return normalize_e164(number, POLICY.operator)


def _rows(path) -> list[list[str]]:
    records = _records(path)
    assert tuple(records[0]) == CONSENT_COLUMNS
    return records[1:]


def test_consent_rows_are_valid_except_one_of_each_defect(night):
    out, manifest = night
    rows = _rows(out / CONSENTS_FILE)
    assert manifest.files[CONSENTS_FILE].rows == len(rows)
    assert manifest.files[CONSENTS_FILE].defects == {k: 1 for k in CONSENT_DEFECTS}
    faults = Counter()
    seen: set[tuple] = set()
    for r in rows:
        if len(r) != FIELDS:
            faults["broken_consent_line"] += 1
            continue
        number, purpose, status, recorded, channel = r
        at = _utc(recorded)
        e164 = e164_of(number)
        key = (e164, purpose, at)
        if not e164.startswith("+386"):
            faults["bad_consent_number"] += 1
        elif purpose not in POLICY.consent.purpose_names:
            faults["unknown_purpose"] += 1
        elif channel not in POLICY.consent.channels:
            faults["unknown_channel"] += 1
        elif at is None:
            faults["bad_recorded_at"] += 1
        elif at >= END:
            faults["future_recorded_at"] += 1
        elif key in seen:
            faults["duplicate_consent"] += 1
        assert status in ("granted", "withdrawn")
        seen.add(key)
    assert faults == {k: 1 for k in CONSENT_DEFECTS}


def test_grants_withdrawals_and_regrants_of_served_subscribers_out_of_order(night):
    out, manifest = night
    rows = [r for r in _rows(out / CONSENTS_FILE) if len(r) == FIELDS and _utc(r[3]) and _utc(r[3]) < END
            and r[1] in POLICY.consent.purpose_names and r[4] in POLICY.consent.channels]
    served = set(manifest.msisdns)                  # every served subscriber: the night has fewer than 200
    assert len(served) < 200
    assert {e164_of(r[0]) for r in rows} - {"unknown"} <= served          # but the bad number
    assert any(r[0].startswith("0") for r in rows) and any(r[0].startswith("+386") for r in rows)
    history: dict[tuple, list] = {}
    for number, purpose, status, recorded, _ in rows:
        history.setdefault((e164_of(number), purpose), []).append((_utc(recorded), status))
    stories = {tuple(s for _, s in sorted(set(h))) for h in history.values()}
    assert ("granted", "withdrawn", "granted") in stories          # a re-grant after a withdrawal
    times = [_utc(r[3]) for r in rows]
    assert times != sorted(times)                                    # not in time order
    days = {t.date() for t in times}
    assert min(days) < NIGHT and days <= {NIGHT - timedelta(days=2), NIGHT - timedelta(days=1), NIGHT}
    assert {r[3][-1] for r in rows} >= {"Z", "0"} and any("+01:00" in r[3] for r in rows)   # three spellings


def test_consecutive_nights_list_the_same_events(night, other_night):
    (out_a, _), (out_b, _) = night, other_night

    def events(out, day: date):
        return {(e164_of(r[0]), r[1], _utc(r[3]), r[2]) for r in _rows(out / f"consents_{day}.csv")
                if len(r) == FIELDS and _utc(r[3]) and _utc(r[3]).date() <= day and r[0] != "unknown"}
    a, b = events(out_a, NIGHT), events(out_b, NIGHT + timedelta(days=1))
    overlap = {e for e in a if e[2].date() >= NIGHT - timedelta(days=1)}
    # Events of 21-22 Nov appear in both nights' extracts whenever their subscriber is served both nights.
    assert a & b and (a & b) <= overlap
