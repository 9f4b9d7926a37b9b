"""transforms/marketing/profiles.py: usage profiles on consent only (policy §3.4 ¶5), figures from the rule.

A, B consented; C never did; D withdrew the day before the night. A called B, C and D; B called A.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from tests.leakscan import scan
from tests.transforms.marketing.conftest import call, land_consents, profiles, write_billing
from transforms.marketing.profiles import build_profiles
from transforms.marketing.schema import PROFILE_COLUMNS
from transforms.privacy.keys import HmacKey, KeyRing
from transforms.privacy.purpose import marketing_tokens
from transforms.privacy.tokens import derive_tokens

A, B, C, D = "+38640111001", "+38640111002", "+38640111003", "+38640111004"
DAY, NIGHT = "2026-11-10", date(2026, 11, 10)


def _night_rows() -> list[dict]:
    return [
        call(A, B, f"{DAY} 08:15", seconds=120),
        call(A, C, f"{DAY} 08:40", seconds=30),
        call(C, A, f"{DAY} 09:00", direction="incoming", seconds=60),      # A served, took the call
        call(A, "", f"{DAY} 10:00", service="purchase", area="LA02"),       # not usage: counts for nothing
        call(A, C, f"{DAY} 13:05", service="sms", area="LA02"),
        call(A, D, f"{DAY} 13:10", service="sms", area="LA02"),
        call(A, B, f"{DAY} 20:00", service="mms"),
        call(A, "internet", f"{DAY} 21:30", service="data", volume=5000, area=None),
        call(B, A, f"{DAY} 11:00", area="LA09"),
        call(C, A, f"{DAY} 12:00"),                                         # C made it: C is not profiled
        call(D, A, f"{DAY} 14:00", service="sms"),                          # D withdrew yesterday
    ]


def _consents(lake) -> None:
    land_consents(lake, "a", [(A, "granted", datetime(2026, 11, 1, 9)), (B, "granted", datetime(2026, 11, 2, 9)),
                              (D, "granted", datetime(2026, 11, 1, 9)), (D, "withdrawn", datetime(2026, 11, 9, 17)),
                              (C, "granted", datetime(2026, 11, 1, 9), "partner_offers")])   # another purpose


@pytest.fixture()
def night(lake, policy, keyring, work_dir):
    write_billing(lake, policy, _night_rows())
    _consents(lake)
    return build_profiles(lake, policy, keyring, [DAY], NIGHT, work_dir)


def _by_token(rows, number, keyring, policy):
    tok = bytes.fromhex(marketing_tokens(number, keyring, policy)[keyring.current.key_id])
    return next((r for r in rows if r["subscriber_token"] == tok), None)


def test_only_consenting_subscribers_are_profiled_with_their_usage(night, lake, policy, keyring):
    rows = profiles(lake, DAY)
    assert len(rows) == 2 and list(rows[0]) == [n for n, _ in PROFILE_COLUMNS]
    a = _by_token(rows, A, keyring, policy)
    assert (a["events"], a["voice_minutes"], a["sms_count"], a["mms_count"], a["data_volume_bytes"]) == (
        7, Decimal("3.50"), 2, 1, 5000)                    # (120 + 30 + 60) s of calls; the purchase is not usage
    hours = [0] * 24
    for h, n in ((8, 2), (9, 1), (13, 2), (20, 1), (21, 1)):
        hours[h] = n
    assert a["events_by_hour"] == hours
    assert a["home_area"] == "LA01"                        # 4 events there, 2 in LA02, 1 unknown
    assert a["hmac_key_id"] == keyring.current.key_id
    b = _by_token(rows, B, keyring, policy)
    assert (b["events"], b["voice_minutes"], b["home_area"]) == (1, Decimal("1.00"), "LA09")
    assert _by_token(rows, C, keyring, policy) is None and _by_token(rows, D, keyring, policy) is None


def test_a_forwarded_legs_place_is_not_the_served_subscribers(lake, policy, keyring, work_dir):
    # B is served by two legs that C's SIM forwarded to B (C's place, LA07) and by one call of B's own in LA09:
    # B's home area is where B's own phone was.
    write_billing(lake, policy, [call(C, B, f"{DAY} 09:00", direction="forwarded", area="LA07"),
                                 call(C, B, f"{DAY} 10:00", direction="forwarded", area="LA07"),
                                 call(B, A, f"{DAY} 11:00", area="LA09")])
    _consents(lake)
    build_profiles(lake, policy, keyring, [DAY], NIGHT, work_dir)
    b = _by_token(profiles(lake, DAY), B, keyring, policy)
    assert (b["events"], b["home_area"]) == (3, "LA09")


def test_called_parties_who_consented_are_named_by_marketing_token_the_others_counted(night, lake, policy, keyring):
    rows = profiles(lake, DAY)
    a, b = (_by_token(rows, n, keyring, policy) for n in (A, B))
    assert a["called_parties_consented"] == [b["subscriber_token"]]     # B, once for a call and an MMS
    assert a["called_parties_other"] == 2                               # C (a call and an SMS) and D
    assert b["called_parties_consented"] == [a["subscriber_token"]] and b["called_parties_other"] == 0
    (day,) = night.days
    assert (day.subscribers, day.called_named, day.called_counted, day.billing_rows, day.rows_profiled) == (
        2, 2, 2, 11, 8)                                    # A→B, B→A named; A→C, A→D counted; A's 7 + B's 1
    assert day.path == f"marketing/event_date={DAY}/part.parquet" and night.consents_standing == 2


def test_those_without_a_standing_consent_are_nowhere_in_the_zone(night, lake, policy, keyring):
    needles = []
    for n in (C, D):
        needles += [n, n[1:], "0" + n[4:], marketing_tokens(n, keyring, policy)[keyring.current.key_id],
                    bytes.fromhex(marketing_tokens(n, keyring, policy)[keyring.current.key_id])]
        analytics = derive_tokens(n, "msisdn", keyring, policy.operator)[keyring.current.key_id]
        needles += [analytics, bytes.fromhex(analytics)]
    # and the consenting ones only as marketing tokens: no number, no analytics token
    for n in (A, B):
        analytics = derive_tokens(n, "msisdn", keyring, policy.operator)[keyring.current.key_id]
        needles += [n, n[1:], analytics, bytes.fromhex(analytics)]
    assert scan([lake.zone("marketing")], needles) == {}


def test_marketing_tokens_are_not_analytics_tokens(policy, keyring):
    ring = KeyRing(HmacKey("k-new", bytes(range(32))), (keyring.current,))
    for n in (A, B, C, D):
        marketing = marketing_tokens(n, ring, policy)
        analytics = derive_tokens(n, "msisdn", ring, policy.operator)
        assert marketing.keys() == analytics.keys() == {"k-new", keyring.current.key_id}
        assert not set(marketing.values()) & set(analytics.values())
        assert marketing == marketing_tokens("0" + n[4:], ring, policy)        # every spelling, one token


def test_a_withdrawal_yesterday_means_no_profile_tonight_and_a_rebuild_removes_the_rows(night, lake, policy,
                                                                                       keyring, work_dir):
    # B withdraws on 11 Nov; the night of 11 Nov rebuilds 10 Nov (a late file): B's row goes, and B is only
    # counted in A's.
    land_consents(lake, "b", [(B, "withdrawn", datetime(2026, 11, 11, 8))])
    again = build_profiles(lake, policy, keyring, [DAY], date(2026, 11, 11), work_dir)
    rows = profiles(lake, DAY)
    assert len(rows) == 1
    a = _by_token(rows, A, keyring, policy)
    assert a["called_parties_consented"] == [] and a["called_parties_other"] == 3
    (day,) = again.days
    assert (day.subscribers, day.rows_removed, day.called_named, day.called_counted) == (1, 1, 0, 3)
    # A withdraws too: nobody is left, and the day's folder goes.
    land_consents(lake, "c", [(A, "withdrawn", datetime(2026, 11, 12, 8))])
    last = build_profiles(lake, policy, keyring, [DAY], date(2026, 11, 12), work_dir)
    assert not (lake.zone("marketing") / f"event_date={DAY}").exists()
    assert (last.days[0].rows_removed, last.days[0].path) == (1, None)


def test_a_grant_after_the_day_does_not_reach_back(lake, policy, keyring, work_dir):
    write_billing(lake, policy, _night_rows())
    _consents(lake)
    land_consents(lake, "late", [(C, "granted", datetime(2026, 11, 11, 8))])
    build_profiles(lake, policy, keyring, [DAY], date(2026, 11, 12), work_dir)
    assert _by_token(profiles(lake, DAY), C, keyring, policy) is None
    # ... and a consent that was withdrawn and granted again since the day covers none of the day either.
    land_consents(lake, "again", [(A, "withdrawn", datetime(2026, 11, 11, 9)), (A, "granted", datetime(2026, 11, 11, 10))])
    build_profiles(lake, policy, keyring, [DAY], date(2026, 11, 12), work_dir)
    assert _by_token(profiles(lake, DAY), A, keyring, policy) is None


def test_latest_consent_wins_whatever_order_the_extracts_landed_in(lake, policy, keyring, work_dir):
    write_billing(lake, policy, _night_rows())
    # The newer extract landed first (A withdrew on 9 Nov; B granted again on 9 Nov), the older later.
    land_consents(lake, "new", [(A, "withdrawn", datetime(2026, 11, 9, 12)), (B, "granted", datetime(2026, 11, 9, 12))])
    land_consents(lake, "old", [(A, "granted", datetime(2026, 11, 1, 9)), (B, "withdrawn", datetime(2026, 11, 3, 9))])
    build_profiles(lake, policy, keyring, [DAY], NIGHT, work_dir)
    rows = profiles(lake, DAY)
    assert _by_token(rows, A, keyring, policy) is None
    b = _by_token(rows, B, keyring, policy)
    assert b is not None and b["called_parties_consented"] == [] and b["called_parties_other"] == 1


def test_under_a_rotated_key_the_day_is_rebuilt_with_the_new_key(night, lake, policy, keyring, work_dir):
    rotated = KeyRing(HmacKey("k-2026-12", bytes(range(1, 33))), (keyring.current,))
    again = build_profiles(lake, policy, rotated, [DAY], NIGHT, work_dir)
    rows = profiles(lake, DAY)
    assert {r["hmac_key_id"] for r in rows} == {"k-2026-12"} and again.key_id == "k-2026-12"
    assert again.days[0].rows_removed == 0                 # the same two subscribers, under the new key
    a = _by_token(rows, A, rotated, policy)
    assert a["called_parties_consented"] == [bytes.fromhex(marketing_tokens(B, rotated, policy)["k-2026-12"])]
    old = marketing_tokens(A, rotated, policy)[keyring.current.key_id]
    assert scan([lake.zone("marketing")], [bytes.fromhex(old)]) == {}


def _restricted(number: str, keyring, policy, right: str):
    """`number` restricted as a request for `right` stores it (its analytics tokens, docs/design.md §12)."""
    from transforms.privacy.restricted import SKIPPED_BY_RIGHT, Restricted, RestrictedToken

    return Restricted(tuple(RestrictedToken("msisdn", key_id, tok, SKIPPED_BY_RIGHT[right]) for key_id, tok in
                            derive_tokens(number, "msisdn", keyring, policy.operator).items()))


def test_a_restricted_party_who_consented_is_counted_not_named_until_lifted(lake, policy, keyring, work_dir):
    # §6.4: B's processing is restricted. B's own rows are not profiled; in A's profile B, who consented, is a called
    # party like one who did not: counted, never named (what an erasure leaves in A's rows, `retention.blank`).
    write_billing(lake, policy, _night_rows())
    _consents(lake)
    b_token = bytes.fromhex(marketing_tokens(B, keyring, policy)[keyring.current.key_id])
    made = build_profiles(lake, policy, keyring, [DAY], NIGHT, work_dir,
                          _restricted(B, keyring, policy, "restriction"))
    a = _by_token(profiles(lake, DAY), A, keyring, policy)
    assert (a["called_parties_consented"], a["called_parties_other"]) == ([], 3)     # B, C and D counted
    assert [r for r in profiles(lake, DAY) if r["subscriber_token"] == b_token] == []
    assert b_token not in (lake.zone("marketing") / f"event_date={DAY}" / "part.parquet").read_bytes()
    (day,) = made.days
    # B→A left out (B served); A→B counted instead of named: one called party blanked.
    assert (made.rows_restricted, made.cells_blanked, day.subscribers, day.called_named, day.called_counted) == (
        1, 1, 1, 0, 3)
    lifted = build_profiles(lake, policy, keyring, [DAY], NIGHT, work_dir)           # B's consent still stands
    a = _by_token(profiles(lake, DAY), A, keyring, policy)
    assert a["called_parties_consented"] == [b_token] and a["called_parties_other"] == 2
    assert (lifted.rows_restricted, lifted.cells_blanked, lifted.days[0].called_named) == (0, 0, 2)


def test_an_objection_on_legitimate_interest_leaves_the_profiles_alone(lake, policy, keyring, work_dir):
    # It restricts analytics only (§6.4 4th indent, `SKIPPED_BY_RIGHT`): B is profiled and named on their consent.
    write_billing(lake, policy, _night_rows())
    _consents(lake)
    made = build_profiles(lake, policy, keyring, [DAY], NIGHT, work_dir, _restricted(B, keyring, policy, "objection"))
    b_token = bytes.fromhex(marketing_tokens(B, keyring, policy)[keyring.current.key_id])
    assert _by_token(profiles(lake, DAY), A, keyring, policy)["called_parties_consented"] == [b_token]
    assert (made.rows_restricted, made.cells_blanked) == (0, 0)
