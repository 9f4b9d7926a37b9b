"""transforms/subjects/requests.py: the last day to answer a request from §6 ¶1 and GDPR Art. 12(3), extensions
within their limits, one subject whatever the number's spelling, tokens under every key held, and the view's
states on a fixed day.

Expected dates are worked out by hand from the text: "within one month of receipt" ends on the same date of the
next month, or on the last day of that month when it has no such date (GDPR Art. 12(3) with Reg. 1182/71
Art. 3(2)(c)); "by at most two further months" gives three months counted from receipt.
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from tests.transforms.policy.conftest import load_edited
from tests.transforms.privacy.conftest import KEY_A, KEY_B, ROTATED, by_hand
from transforms.audit_store import connect, reading, verify_chain, writing
from transforms.audit_store.views import local_today_sql, view_sql
from transforms.privacy.keys import demo_keyring
from transforms.subjects import requests
from transforms.subjects.requests import SubjectRequestError

RING = demo_keyring()
NUMBER = "+38640123456"                   # E.164; the other spellings of it below
SPELLINGS = ("+386 40 123 456", "0038640123456", "040 123 456", "38640123456", NUMBER)
IMSI = "293401234567890"
TODAY = date(2026, 3, 1)


def record(lake, policy, received: date, *, ring=RING, right="access", kind="msisdn", value=NUMBER, today=None,
           **kw):
    return requests.record(lake, policy, ring, right=right, kind=kind, value=value, received=received,
                           today=today or received, **kw)


# ---------------------------------------------------------------- the last day to answer

@pytest.mark.parametrize("received, last_day", [
    (date(2026, 1, 31), date(2026, 2, 28)),     # February has no 31st: its last day
    (date(2028, 1, 31), date(2028, 2, 29)),     # ... in a leap year the 29th
    (date(2028, 2, 29), date(2028, 3, 29)),     # the same date of the next month
    (date(2026, 4, 30), date(2026, 5, 30)),     # not the month's end: the same date
    (date(2026, 12, 31), date(2027, 1, 31)),    # across the year
    (date(2026, 3, 31), date(2026, 4, 30)),     # April has no 31st
    (date(2026, 11, 15), date(2026, 12, 15)),
])
def test_the_last_day_to_answer_is_the_same_date_a_month_later_or_that_months_last(lake, policy, received, last_day):
    assert policy.subject_rights.due_on(received) == last_day
    r = record(lake, policy, received)
    assert (r.due, r.status, r.extended_to, r.due_effective) == (last_day, "open", None, last_day)
    assert [(x.request_id, x.due) for x in requests.list_requests(lake)] == [(r.request_id, last_day)]


@pytest.mark.parametrize("received, furthest", [
    (date(2026, 1, 31), date(2026, 4, 30)),     # three months from receipt, not 28 Feb + two months (28 Apr)
    (date(2026, 11, 30), date(2027, 2, 28)),
    (date(2027, 11, 30), date(2028, 2, 29)),
    (date(2026, 4, 30), date(2026, 7, 30)),
])
def test_an_extension_reaches_at_most_three_months_from_receipt(policy, received, furthest):
    assert policy.subject_rights.latest_extension(received) == furthest


def test_a_request_received_today_is_recorded_one_received_tomorrow_is_not(lake, policy):
    record(lake, policy, TODAY, today=TODAY)
    with pytest.raises(SubjectRequestError, match="after today"):
        record(lake, policy, date(2026, 3, 2), today=TODAY)
    assert len(requests.list_requests(lake)) == 1


def test_every_right_of_the_policy_is_recorded_with_its_clause_and_no_other(lake, policy):
    for right in ("access", "rectification", "erasure", "restriction", "portability", "objection"):
        assert record(lake, policy, TODAY, right=right).clause == policy.subject_rights.clause_of(right)
    assert policy.subject_rights.clause_of("erasure").startswith("§6.3")
    with pytest.raises(SubjectRequestError, match="unknown right"):
        record(lake, policy, TODAY, right="complaint")


# ---------------------------------------------------------------- extensions

def test_an_extension_within_the_first_month_moves_the_last_day(lake, policy):
    r = record(lake, policy, date(2026, 1, 31))
    e = requests.extend(lake, policy, r.request_id, to=date(2026, 4, 30), reason="complex: several zones",
                        extended_by="dpo", today=date(2026, 2, 28))          # the first month's last day
    assert (e.status, e.due, e.extended_to, e.due_effective) == ("extended", date(2026, 2, 28), date(2026, 4, 30),
                                                                 date(2026, 4, 30))
    assert e.extension_reason == "complex: several zones" and e.extended_at is not None


def test_an_extension_after_the_first_month_is_refused(lake, policy):
    r = record(lake, policy, date(2026, 1, 31))
    with pytest.raises(SubjectRequestError, match="ended on 2026-02-28"):
        requests.extend(lake, policy, r.request_id, to=date(2026, 3, 31), reason="late", today=date(2026, 3, 1))
    assert requests.list_requests(lake)[0].status == "open"


def test_an_extension_past_three_months_from_receipt_is_refused(lake, policy):
    r = record(lake, policy, date(2026, 1, 31))
    with pytest.raises(SubjectRequestError, match="furthest .* 2026-04-30"):
        requests.extend(lake, policy, r.request_id, to=date(2026, 5, 1), reason="too far", today=date(2026, 2, 1))


def test_extending_again_within_the_first_month_only_moves_later(lake, policy):
    r = record(lake, policy, date(2026, 11, 2))                               # last day 2 Dec, furthest 2 Feb
    requests.extend(lake, policy, r.request_id, to=date(2026, 12, 20), reason="volume", today=date(2026, 11, 10))
    with pytest.raises(SubjectRequestError, match="later"):
        requests.extend(lake, policy, r.request_id, to=date(2026, 12, 20), reason="same", today=date(2026, 11, 11))
    e = requests.extend(lake, policy, r.request_id, to=date(2027, 2, 2), reason="more zones than thought",
                        today=date(2026, 12, 2))
    assert (e.due, e.extended_to, e.extension_reason) == (date(2026, 12, 2), date(2027, 2, 2), "more zones than thought")
    with reading(lake) as con:
        logged = con.execute("SELECT action, target, details FROM audit_log ORDER BY seq").fetchall()
        assert verify_chain(con).ok
    assert [(a, t) for a, t, _ in logged] == [("subject_request_recorded", r.request_id),
                                              ("subject_request_extended", r.request_id),
                                              ("subject_request_extended", r.request_id)]
    assert [json.loads(d).get("extended_to") for _, _, d in logged] == [None, "2026-12-20", "2027-02-02"]


def test_an_extension_not_later_than_the_first_last_day_is_refused(lake, policy):
    r = record(lake, policy, date(2026, 11, 2))
    with pytest.raises(SubjectRequestError, match="later"):
        requests.extend(lake, policy, r.request_id, to=date(2026, 12, 2), reason="x", today=date(2026, 11, 3))


@pytest.mark.parametrize("reason, problem", [
    ("", "required"), ("   ", "required"), (None, "required"),
    ("subscriber +386 40 123 456 asked twice", "digits"), (f"see {IMSI}", "digits"), ("re 040123456", "digits"),
])
def test_an_extension_needs_reasons_without_numbers(lake, policy, reason, problem):
    r = record(lake, policy, date(2026, 11, 2))
    with pytest.raises(SubjectRequestError, match=problem):
        requests.extend(lake, policy, r.request_id, to=date(2026, 12, 20), reason=reason, today=date(2026, 11, 3))


def test_only_an_open_request_is_extended(lake, policy):
    r = record(lake, policy, date(2026, 11, 2))
    with writing(lake) as con:
        con.execute("UPDATE subject_requests SET status = 'fulfilled', fulfilled_at = now() WHERE request_id = ?",
                    [r.request_id])
    with pytest.raises(SubjectRequestError, match="is fulfilled"):
        requests.extend(lake, policy, r.request_id, to=date(2026, 12, 20), reason="x", today=date(2026, 11, 3))
    assert requests.list_requests(lake) == []
    assert [x.status for x in requests.list_requests(lake, include_closed=True)] == ["fulfilled"]
    with pytest.raises(SubjectRequestError, match="no request R-000000000000"):
        requests.extend(lake, policy, "R-000000000000", to=date(2026, 12, 20), reason="x", today=date(2026, 11, 3))
    with pytest.raises(SubjectRequestError, match="looks like"):
        requests.extend(lake, policy, "H-0123456789ab", to=date(2026, 12, 20), reason="x", today=date(2026, 11, 3))


def test_a_policy_without_extension_allows_none(lake, tmp_path):
    policy = load_edited(tmp_path, lambda d: d["subject_rights"].update(extension_at_most="P0D"))
    r = record(lake, policy, date(2026, 11, 2))
    with pytest.raises(SubjectRequestError, match="furthest"):
        requests.extend(lake, policy, r.request_id, to=date(2026, 12, 3), reason="x", today=date(2026, 11, 3))


# ---------------------------------------------------------------- the subject, as tokens only

def test_every_spelling_of_a_number_is_one_subject(lake, policy):
    made = [record(lake, policy, TODAY, value=v) for v in SPELLINGS]
    expected = {RING.current.key_id: by_hand(RING.current.secret, f"msisdn:{NUMBER}")}   # analytics' token of it
    assert [r.tokens for r in made] == [expected] * len(SPELLINGS)
    assert {r.request_id for r in made} == {r.request_id for r in requests.list_requests(lake)}


def test_the_subject_is_held_under_every_key_held(lake, policy):
    r = record(lake, policy, TODAY, ring=ROTATED)
    assert r.tokens == {KEY_B.key_id: by_hand(KEY_B.secret, f"msisdn:{NUMBER}"),
                        KEY_A.key_id: by_hand(KEY_A.secret, f"msisdn:{NUMBER}")}
    i = record(lake, policy, TODAY, ring=ROTATED, kind="imsi", value=f" {IMSI} ")
    assert i.tokens == {k.key_id: by_hand(k.secret, f"imsi:{IMSI}") for k in (KEY_A, KEY_B)}
    with reading(lake) as con:
        logged = [json.loads(d) for (d,) in con.execute("SELECT details FROM audit_log ORDER BY seq").fetchall()]
    assert [d["key_ids"] for d in logged] == [sorted([KEY_A.key_id, KEY_B.key_id])] * 2


@pytest.mark.parametrize("kind, value", [
    ("msisdn", "12ab"), ("msisdn", "040"), ("msisdn", ""), ("msisdn", "*123#"), ("msisdn", "+0123456789"),
    ("msisdn", "+3864012345678901"),                       # 16 digits: longer than E.164 allows
    ("imsi", "2934012345"), ("imsi", "29340123456789O"), ("imsi", "2934012345678901"),
])
def test_a_subject_that_is_no_number_or_imsi_is_refused_without_repeating_it(lake, policy, kind, value):
    with pytest.raises(SubjectRequestError) as err:
        record(lake, policy, TODAY, kind=kind, value=value)
    assert "nothing was recorded" in str(err.value)
    assert not value or value not in str(err.value)
    assert requests.list_requests(lake) == []


def test_an_imsi_is_not_a_number_and_other_kinds_are_refused(lake, policy):
    with pytest.raises(SubjectRequestError, match="one of msisdn, imsi"):
        record(lake, policy, TODAY, kind="imei", value="35693803564380")


@pytest.mark.parametrize("reference, kept", [("letter 2026/114", "letter 2026/114"), ("  DPO-2026-0007 ", "DPO-2026-0007"),
                                             ("", None), (None, None)])
def test_a_reference_is_kept_trimmed(lake, policy, reference, kept):
    assert record(lake, policy, TODAY, reference=reference).reference == kept


def test_a_reference_with_a_number_in_it_is_refused(lake, policy):
    with pytest.raises(SubjectRequestError, match="digits"):
        record(lake, policy, TODAY, reference="call back on 040 123 456")
    assert requests.list_requests(lake) == []


def test_the_store_and_the_log_hold_no_spelling_of_the_number(lake, policy):
    for v in SPELLINGS:
        record(lake, policy, TODAY, value=v, reference="letter 2026/114", recorded_by="dpo")
    record(lake, policy, TODAY, kind="imsi", value=IMSI)
    raw = lake.audit_db.read_bytes()
    with reading(lake) as con:
        dump = repr([con.execute(f"SELECT * FROM {t}").fetchall() for t in ("subject_requests", "audit_log")])
    for needle in (*SPELLINGS, "40123456", "040123456", IMSI):
        assert needle not in dump and needle.encode() not in raw


# ---------------------------------------------------------------- the view, on a fixed day

def states_on(con, policy, today: date) -> list[tuple]:
    """v_subject_requests as it reads on `today` (its SQL with today fixed instead of the clock)."""
    sql = view_sql("v_subject_requests", policy)
    assert local_today_sql(policy) in sql
    con.execute("CREATE OR REPLACE TEMP VIEW fixed AS " + sql.replace(local_today_sql(policy), f"DATE '{today}'"))
    return con.execute("SELECT request_id, due_effective, days_left, state FROM fixed").fetchall()


def test_view_states_on_a_fixed_day(lake, policy):
    # Received on these days, the last day to answer is a month later; today is 1 March 2026.
    overdue = record(lake, policy, date(2026, 1, 31))            # last day 28 Feb: one day over
    last_day_today = record(lake, policy, date(2026, 2, 1))      # 1 Mar
    in_7 = record(lake, policy, date(2026, 2, 8))                # 8 Mar: 7 days left, still due soon
    in_8 = record(lake, policy, date(2026, 2, 9))                # 9 Mar: open
    extended = record(lake, policy, date(2026, 1, 30))           # 28 Feb, extended to 30 Apr: open
    requests.extend(lake, policy, extended.request_id, to=date(2026, 4, 30), reason="complex", today=date(2026, 2, 2))
    done = record(lake, policy, date(2026, 1, 5))
    refused = record(lake, policy, date(2026, 1, 6))
    with writing(lake) as con:
        con.execute("UPDATE subject_requests SET status = 'fulfilled' WHERE request_id = ?", [done.request_id])
        con.execute("UPDATE subject_requests SET status = 'refused' WHERE request_id = ?", [refused.request_id])
    con = connect(lake)
    try:
        got = {rid: (due, left, state) for rid, due, left, state in states_on(con, policy, TODAY)}
        columns = [c[0] for c in con.execute("SELECT * FROM v_subject_requests LIMIT 0").description]
        edited = load_edited(lake.root.parent, lambda d: d["subject_rights"].update(due_soon_within_days=1))
        one_day = {rid: state for rid, _, _, state in states_on(con, edited, TODAY)}
    finally:
        con.close()
    assert got == {
        overdue.request_id: (date(2026, 2, 28), -1, "overdue"),
        last_day_today.request_id: (date(2026, 3, 1), 0, "due_soon"),
        in_7.request_id: (date(2026, 3, 8), 7, "due_soon"),
        in_8.request_id: (date(2026, 3, 9), 8, "open"),
        extended.request_id: (date(2026, 4, 30), 60, "open"),
        done.request_id: (date(2026, 2, 5), None, "fulfilled"),
        refused.request_id: (date(2026, 2, 6), None, "refused"),
    }
    assert (one_day[in_7.request_id], one_day[last_day_today.request_id]) == ("open", "due_soon")
    assert "subject_tokens" not in columns and not any("token" in c for c in columns)


def test_the_view_counts_days_from_the_operators_today(lake, policy):
    today = requests.local_today(policy)
    r = record(lake, policy, today)
    con = connect(lake)
    try:
        (left, state), = con.execute("SELECT days_left, state FROM v_subject_requests").fetchall()
    finally:
        con.close()
    assert (left, state) == ((r.due - today).days, "open")
