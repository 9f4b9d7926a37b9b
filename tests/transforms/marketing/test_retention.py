"""Marketing rows in the retention sweep (policy §5 ¶3, `consent_marketing`: keep P0D from the withdrawal):
kept through the day the consent they were made on was withdrawn, due the next; a legal hold keeps them."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tests.leakscan import scan
from tests.transforms.marketing.conftest import call, land_consents, profiles, write_billing
from transforms.marketing.profiles import build_profiles
from transforms.privacy.purpose import marketing_tokens
from transforms.retention.holds import place
from transforms.retention.sweep import sweep

A, B, E = "+38640111001", "+38640111002", "+38640111005"
DAY = "2026-11-05"


@pytest.fixture()
def marketing_lake(lake, policy, keyring, work_dir):
    """5 Nov: A called B, B called A, E used data; all three consented on 1 Nov. A withdrew on 10 Nov."""
    write_billing(lake, policy, [call(A, B, f"{DAY} 09:00"), call(B, A, f"{DAY} 10:00"),
                                 call(E, "internet", f"{DAY} 11:00", service="data", volume=10)])
    land_consents(lake, "a", [(n, "granted", datetime(2026, 11, 1, 9)) for n in (A, B, E)])
    build_profiles(lake, policy, keyring, [DAY], date(2026, 11, 5), work_dir)
    assert len(profiles(lake, DAY)) == 3
    land_consents(lake, "b", [(A, "withdrawn", datetime(2026, 11, 10, 9))])
    return lake


def _tokens(lake, policy, keyring) -> set[bytes]:
    return {r["subscriber_token"] for r in profiles(lake, DAY)}


def _tok(number, policy, keyring) -> bytes:
    return bytes.fromhex(marketing_tokens(number, keyring, policy)[keyring.current.key_id])


def test_kept_through_the_withdrawal_day_gone_the_next(marketing_lake, policy, keyring):
    lake = marketing_lake
    kept = sweep(lake, policy, keyring, date(2026, 11, 10))
    assert _tokens(lake, policy, keyring) == {_tok(n, policy, keyring) for n in (A, B, E)}
    assert kept.rows("deleted") == 0
    gone = sweep(lake, policy, keyring, date(2026, 11, 11))
    # A's row, and B's, which names A: a row rests on every consent it names. E's stays.
    assert _tokens(lake, policy, keyring) == {_tok(E, policy, keyring)}
    marketing = [a for a in gone.actions if a.dataset == "marketing"]
    assert {(a.action, a.rows, a.due_on) for a in marketing} == {("deleted", 2, "2026-11-11"), ("kept", 1, None)}
    assert {a.category for a in marketing} == {"consent_marketing"}
    proofs = [p for p in gone.proofs if p.dataset == "marketing"]
    assert proofs and all(p.ok for p in proofs)
    assert scan([lake.zone("marketing")], [_tok(A, policy, keyring), _tok(B, policy, keyring)]) == {}


def test_a_regrant_before_the_sweep_revives_nothing(marketing_lake, policy, keyring):
    land_consents(marketing_lake, "c", [(A, "granted", datetime(2026, 11, 10, 15))])
    sweep(marketing_lake, policy, keyring, date(2026, 11, 11))
    assert _tok(A, policy, keyring) not in _tokens(marketing_lake, policy, keyring)


def test_a_withdrawal_from_a_late_extract_counts_from_its_own_day(lake, policy, keyring, work_dir):
    # The profile was made while the consent stood as far as anyone knew; the extract saying it was withdrawn
    # on 3 Nov landed later: the row was due on 4 Nov and goes at the next sweep.
    write_billing(lake, policy, [call(E, "internet", f"{DAY} 11:00", service="data", volume=10)])
    land_consents(lake, "a", [(E, "granted", datetime(2026, 11, 1, 9))])
    build_profiles(lake, policy, keyring, [DAY], date(2026, 11, 5), work_dir)
    land_consents(lake, "late", [(E, "withdrawn", datetime(2026, 11, 3, 9))])
    result = sweep(lake, policy, keyring, date(2026, 11, 6))
    assert profiles(lake, DAY) == []
    assert [(a.action, a.due_on) for a in result.actions if a.dataset == "marketing"] == [("deleted", "2026-11-04")]


def test_a_legal_hold_keeps_the_rows(marketing_lake, policy, keyring):
    place(marketing_lake, policy, keyring, reason="complaint case 7", placed_by="dpo", dataset="marketing",
          subscriber=A)
    result = sweep(marketing_lake, policy, keyring, date(2026, 11, 11))
    assert _tok(A, policy, keyring) in _tokens(marketing_lake, policy, keyring)
    held = [a for a in result.actions if a.dataset == "marketing" and a.action == "held"]
    assert [(a.rows, a.due_on) for a in held] == [(1, "2026-11-11")]
