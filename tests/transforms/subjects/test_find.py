"""transforms/subjects/find.py: one subject found in every zone of a hand-made lake (conftest), from tokens only.

What must be found is what conftest put in: the subject's own rows whole, the rows of other people's
communications they were only the other party of without those people's identifiers, nothing of anyone else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

import duckdb
import pytest

from tests.transforms.privacy.conftest import KEY_A, KEY_B, RING_A, ROTATED, SECRET_A, SECRET_B, by_hand
from tests.transforms.subjects.conftest import (CALLERS, OTHER_PARTY, S_IMSI, S_INVOICE_ROWS, S_NATIONAL, S_NUMBER,
                                                SERVED)
from transforms.lake.connection import connect
from transforms.privacy.keys import KeyRing
from transforms.subjects.find import ABSENT, ANONYMOUS, EXPORTED, OTHER_PARTY_KEEPS, ZONES, find_subject
from transforms.subjects.subject import Subject, SubjectError

RING_B = KeyRing(KEY_B)          # key A dropped


def search(lake, policy, keyring, subject) -> dict[str, tuple]:
    """zone -> (ZoneFound, rows as dicts)."""
    con = connect()
    try:
        out = {}
        for z in find_subject(con, lake, policy, keyring, subject):
            rows = []
            if z.table:
                cur = con.execute(f"SELECT * FROM {z.table}")
                cols = [d[0] for d in cur.description]
                rows = [dict(zip(cols, r)) for r in cur.fetchall()]
            out[z.zone] = (z, rows)
        return out
    finally:
        con.close()


def by_hand_subject(value: str, kind: str, *secrets) -> Subject:
    """A subject as a stored request holds it: tokens worked out by hand, no raw value."""
    ids = {SECRET_A: KEY_A.key_id, SECRET_B: KEY_B.key_id}
    return Subject(kind, {ids[s]: by_hand(s, f"{kind}:{value}") for s in secrets})


def roles(rows: list[dict], time_column: str = "start_time") -> set[tuple]:
    return {(r[time_column].strftime("%Y-%m-%d %H:%M:%S"), r["duration_s"], r["subject_role"]) for r in rows}


EXPECTED_ROLES = {(*k, "served") for k in SERVED} | {(*k, "other_party") for k in OTHER_PARTY}


def test_every_zone_is_searched_in_the_summary_order():
    assert ZONES == ("billing", "invoices", "analytics", "roaming", "marketing", "quarantine", "consents", "aggregates")


@pytest.mark.parametrize("spelling", [S_NUMBER, S_NATIONAL, "00386 40 123 456"])
def test_billing_finds_own_and_other_party_rows(subject_lake, policy, spelling):
    found = search(subject_lake, policy, ROTATED, Subject.of(spelling, "msisdn", ROTATED, policy))
    zone, rows = found["billing"]
    assert zone.rows == len(rows) == 6 and zone.action == EXPORTED
    assert roles(rows) == EXPECTED_ROLES


def test_other_party_rows_keep_only_the_communication_and_the_subjects_number(subject_lake, policy):
    _, rows = search(subject_lake, policy, ROTATED, Subject.of(S_NUMBER, "msisdn", ROTATED, policy))["billing"]
    callers = {v for values in CALLERS.values() for v in values}
    for r in (r for r in rows if r["subject_role"] == "other_party"):
        filled = {c for c, v in r.items() if v is not None}
        number_columns = {c for c in filled if r[c] == S_NUMBER}
        assert filled - number_columns <= {"subject_role", "event_date", *OTHER_PARTY_KEEPS}, filled
        assert len(number_columns) == 1 and not callers & set(map(str, r.values()))
    served = [r for r in rows if r["subject_role"] == "served"]
    # The subject's own rows are whole: their IMSI, device and cell, and the number they called.
    assert all(r["imsi"] == S_IMSI and r["cell_id"] in ("CELLS001", None) and r["record_id"] for r in served)


def test_imsi_subject_finds_the_rows_of_their_sim_and_through_them_their_number(subject_lake, policy):
    found = search(subject_lake, policy, ROTATED, Subject.of(S_IMSI, "imsi", ROTATED, policy))
    # The IMSI finds the SIM's own rows; their number then finds the calls of others to them.
    assert roles(found["billing"][1]) == EXPECTED_ROLES
    assert found["analytics"][0].rows == found["billing"][0].rows
    # Invoices know a subscriber by number only: found through the number of the IMSI's own rows.
    assert found["invoices"][0].rows == S_INVOICE_ROWS


def test_a_subject_of_tokens_alone_is_found_like_one_made_from_the_value(subject_lake, policy):
    from_tokens = search(subject_lake, policy, ROTATED, by_hand_subject(S_NUMBER, "msisdn", SECRET_A, SECRET_B))
    from_value = search(subject_lake, policy, ROTATED, Subject.of(S_NUMBER, "msisdn", ROTATED, policy))
    assert {z: f.rows for z, (f, _) in from_tokens.items()} == {z: f.rows for z, (f, _) in from_value.items()}
    assert roles(from_tokens["billing"][1]) == EXPECTED_ROLES


def test_analytics_rows_before_and_after_a_rotation(subject_lake, policy):
    # June's analytics were made with key A, July's with key B; the ring holds both.
    found, rows = search(subject_lake, policy, ROTATED, by_hand_subject(S_NUMBER, "msisdn", SECRET_A, SECRET_B))[
        "analytics"]
    assert {(r["hmac_key_id"], str(r["event_date"])) for r in rows} == {
        ("k2026-01", "2026-06-30"), ("k2026-07", "2026-07-02")}
    assert roles(rows, "event_hour") == {
        (t[:13] + ":00:00", d, role) for t, d, role in EXPECTED_ROLES}
    # Other-party rows: no token but the subject's own, no device model, no area.
    own = {bytes.fromhex(by_hand(SECRET_A, f"msisdn:{S_NUMBER}"))}
    for r in (r for r in rows if r["subject_role"] == "other_party"):
        assert {v for v in r.values() if isinstance(v, bytes)} == own
        assert r["imei_tac"] is None and r["area"] is None and r["source_file_sha256"] is None


def test_a_request_keeps_finding_token_zones_after_its_key_is_dropped(subject_lake, policy):
    # The request was made while key A was held; A is gone now. Raw zones can only be tokenized with B, but
    # the June analytics rows still carry A's tokens, which the request holds.
    subject = by_hand_subject(S_NUMBER, "msisdn", SECRET_A, SECRET_B)
    found = search(subject_lake, policy, RING_B, subject)
    assert found["billing"][0].rows == 6
    assert {str(r["event_date"]) for r in found["analytics"][1]} == {"2026-06-30", "2026-07-02"}
    # A request made with key A only, searched with B only: its tokens find A's rows, raw zones nothing.
    only_a = search(subject_lake, policy, RING_B, by_hand_subject(S_NUMBER, "msisdn", SECRET_A))
    assert only_a["billing"][0].rows == 0 and only_a["invoices"][0].rows == 0
    assert {str(r["event_date"]) for r in only_a["analytics"][1]} == {"2026-06-30"}


def test_a_key_not_held_when_asked_finds_nothing_of_its_rows(subject_lake, policy):
    found = search(subject_lake, policy, RING_B, Subject.of(S_NUMBER, "msisdn", RING_B, policy))
    assert {str(r["event_date"]) for r in found["analytics"][1]} == {"2026-07-02"}
    # Roaming was made with key A: the IMSI of the subject's own rows is tokenized with B only.
    assert found["roaming"][0].rows == 0
    ring_a = search(subject_lake, policy, RING_A, Subject.of(S_NUMBER, "msisdn", RING_A, policy))
    assert {str(r["event_date"]) for r in ring_a["analytics"][1]} == {"2026-06-30"}


def test_roaming_by_the_imsi_token_of_the_subjects_own_rows(subject_lake, policy):
    s_token = by_hand(SECRET_A, f"imsi:{S_IMSI}")
    for subject in (Subject.of(S_NUMBER, "msisdn", ROTATED, policy), Subject.of(S_IMSI, "imsi", ROTATED, policy)):
        zone, rows = search(subject_lake, policy, ROTATED, subject)["roaming"]
        assert {(r["roaming_record"], r["subscriber_token"].hex()) for r in rows} == {
            ("month", s_token), ("window_status", s_token)}
        assert zone.rows == 2


def test_invoices_by_subscriber_number(subject_lake, policy):
    zone, rows = search(subject_lake, policy, ROTATED, Subject.of(S_NATIONAL, "msisdn", ROTATED, policy))["invoices"]
    assert zone.rows == S_INVOICE_ROWS
    assert sorted((r["invoice_id"], str(r["as_of"])) for r in rows) == [
        ("INV-1", "2026-07-05"), ("INV-1", "2026-07-06"), ("INV-2", "2026-07-05")]
    assert {r["subscriber_number"] for r in rows} == {S_NUMBER}


def test_quarantine_rows_of_the_subject(subject_lake, policy):
    _, rows = search(subject_lake, policy, ROTATED, Subject.of(S_NUMBER, "msisdn", ROTATED, policy))["quarantine"]
    cdrs = {r["record_id"]: r for r in rows if r.get("origin_number") or r.get("destination_number")}
    assert {r["source_row"] for r in rows if r["subject_role"] == "served"} >= {5}
    assert cdrs["q1"]["subject_role"] == "served" and cdrs["q1"]["imsi"] == S_IMSI
    # C1's quarantined call to S: S's number, the time and the reason; nothing of C1.
    (q2,) = [r for r in rows if r["subject_role"] == "other_party"]
    assert q2["destination_number"] == S_NUMBER and q2["reason"] == "duration_negative"
    assert q2["origin_number"] is None and q2["imsi"] is None and q2["imei"] is None and q2["record_id"] is None
    # The payments extract's rejected invoice of S (a date that does not exist).
    assert [r["invoice_id"] for r in rows if r.get("invoice_id")] == ["INV-4"]
    assert len(rows) == 3


def test_zones_of_later_releases(subject_lake, policy):
    for zone in ("consents", "marketing"):          # a lake written before these zones existed
        (subject_lake.root / zone).rmdir()
    found = search(subject_lake, policy, ROTATED, Subject.of(S_NUMBER, "msisdn", ROTATED, policy))
    assert found["consents"][0].action == found["marketing"][0].action == ABSENT
    assert found["aggregates"][0].action == ANONYMOUS and found["aggregates"][0].rows == 0

    folder = subject_lake.root / "consents" / "part-1.parquet"
    folder.parent.mkdir()
    duckdb.execute(f"""COPY (SELECT * FROM (VALUES ('{S_NUMBER}', 'marketing_sms', 'given', TIMESTAMP '2026-06-01 10:00',
                                  'web'), ('{CALLERS["C1"][0]}', 'marketing_sms', 'given', TIMESTAMP '2026-06-02 10:00', 'web'))
                   t(subscriber_number, purpose, status, recorded_at, channel)) TO '{folder}' (FORMAT parquet)""")
    (subject_lake.root / "marketing").mkdir()
    found = search(subject_lake, policy, ROTATED, Subject.of(S_NATIONAL, "msisdn", ROTATED, policy))
    zone, rows = found["consents"]
    assert zone.action == EXPORTED and [(r["subscriber_number"], r["purpose"]) for r in rows] == [
        (S_NUMBER, "marketing_sms")]
    assert found["marketing"][0].action == EXPORTED and found["marketing"][0].rows == 0     # there, empty


def marketing_token(secret: bytes, purpose: str, number: str) -> str:
    """A marketing token by hand: HMAC under the purpose key HMAC(secret, "cdr-audit purpose:<purpose>")."""
    purpose_key = hmac.new(secret, f"cdr-audit purpose:{purpose}".encode(), hashlib.sha256).digest()
    return by_hand(purpose_key, f"msisdn:{number}")


def test_marketing_profiles_by_the_purpose_token(subject_lake, policy):
    purpose = policy.consent.profiling_purpose
    folder = subject_lake.root / "marketing" / "event_date=2026-06-30"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [(marketing_token(SECRET_A, purpose, S_NUMBER), KEY_A.key_id, 11),
            (marketing_token(SECRET_B, purpose, S_NUMBER), KEY_B.key_id, 12),
            (marketing_token(SECRET_A, purpose, CALLERS["C1"][0]), KEY_A.key_id, 13),
            (by_hand(SECRET_A, f"msisdn:{S_NUMBER}"), KEY_A.key_id, 14)]     # the analytics token: not marketing's
    duckdb.execute("COPY (SELECT unhex(t) AS subscriber_token, k AS hmac_key_id, e AS events FROM (VALUES "
                   + ", ".join(f"('{t}', '{k}', {e})" for t, k, e in rows) + f") v(t, k, e)) TO "
                   f"'{folder / 'part.parquet'}' (FORMAT parquet)")
    for subject in (Subject.of(S_NATIONAL, "msisdn", ROTATED, policy), Subject.of(S_IMSI, "imsi", ROTATED, policy)):
        zone, found = search(subject_lake, policy, ROTATED, subject)["marketing"]
        assert zone.action == EXPORTED and sorted(r["events"] for r in found) == [11, 12]


def test_nobody_found(subject_lake, policy):
    found = search(subject_lake, policy, ROTATED, Subject.of("+38670000000", "msisdn", ROTATED, policy))
    assert {z: f.rows for z, (f, _) in found.items()} == dict.fromkeys(ZONES, 0)


def test_an_empty_lake(lake, policy):
    found = search(lake, policy, ROTATED, Subject.of(S_NUMBER, "msisdn", ROTATED, policy))
    assert {z: f.rows for z, (f, _) in found.items()} == dict.fromkeys(ZONES, 0)


@pytest.mark.parametrize("kind, tokens", [("imei", {"k": "0" * 32}), ("msisdn", {}), ("msisdn", {"k": "xyz"}),
                                          ("msisdn", {"k": "A" * 32}), ("msisdn", {"": "0" * 32})])
def test_a_subject_is_a_kind_and_well_formed_tokens(kind, tokens):
    with pytest.raises(SubjectError):
        Subject(kind, tokens)


def test_a_subject_of_a_value_never_keeps_it(policy):
    subject = Subject.of(S_NATIONAL, "msisdn", ROTATED, policy)
    assert subject.tokens == {"k2026-07": by_hand(SECRET_B, f"msisdn:{S_NUMBER}"),
                              "k2026-01": by_hand(SECRET_A, f"msisdn:{S_NUMBER}")}
    assert S_NATIONAL not in repr(subject) and S_NUMBER not in repr(subject)
    assert dataclasses.fields(subject)[0].name == "kind"
    with pytest.raises(SubjectError):
        Subject.of("  ", "msisdn", ROTATED, policy)
