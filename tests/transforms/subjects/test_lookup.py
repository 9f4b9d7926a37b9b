"""transforms/subjects/find.py `analytics_hits` (`cdr-audit lookup`): a subscriber's analytics rows across key
rotations.

Analytics partitions are written by hand with tokens worked out by hand (conftest `stored`), so what is
found follows from the rule: the subject's token under each key held, matched in rows made with that key.
"""

from __future__ import annotations

import duckdb
import pytest

from tests.transforms.privacy.conftest import KEY_B, RING_A, ROTATED, SECRET_A, SECRET_B, stored, write_billing
from transforms.privacy.analytics import build_analytics
from transforms.privacy.keys import KeyRing
from transforms.subjects.find import SubjectHit, analytics_hits
from transforms.subjects.subject import Subject, SubjectError

SUBJECT, OTHER = "+38640123456", "+38651987654"
IMSI = "293401234567890"
RING_B = KeyRing(KEY_B)                   # the current key only: the retired one is no longer held


def analytics_part(lake, day: str, name: str, key_id: str, rows: list[tuple]) -> None:
    """analytics/event_date=<day>/<name>.parquet: rows of (origin, destination, imsi) tokens and the key id
    (the other columns the policy tokenizes are left out, as in files written before it listed them)."""
    path = lake.zone("analytics") / f"event_date={day}" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE t (origin_number BLOB, destination_number BLOB, imsi BLOB, hmac_key_id VARCHAR)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(*r, key_id) for r in rows])
        con.execute("COPY t TO $p (FORMAT parquet)", {"p": str(path)})
    finally:
        con.close()


def under_a(kind: str, value: str) -> bytes:
    return stored(SECRET_A, f"{kind}:{value}")


def under_b(kind: str, value: str) -> bytes:
    return stored(SECRET_B, f"{kind}:{value}")


@pytest.fixture()
def rotated_lake(lake):
    """June made with key A (now retired), July with key B (current)."""
    analytics_part(lake, "2026-06-30", "part-a", "k2026-01", [
        (under_a("msisdn", SUBJECT), under_a("msisdn", OTHER), under_a("imsi", IMSI)),
        (under_a("msisdn", SUBJECT), under_a("msisdn", "100"), None),
        (under_a("msisdn", OTHER), under_a("msisdn", SUBJECT), None),
    ])
    analytics_part(lake, "2026-07-02", "part-b", "k2026-07", [
        (under_b("msisdn", SUBJECT), None, under_b("imsi", IMSI)),
        (under_b("msisdn", OTHER), under_b("msisdn", "112"), None),
        # A key-A token in a row made with key B: a token is only matched in rows of its own key.
        (under_a("msisdn", SUBJECT), None, None),
    ])
    return lake


def found(hits: list[SubjectHit]) -> set[tuple]:
    return {(h.key_id, h.event_date, h.column, h.rows) for h in hits}


def find_subject(lake, policy, keyring, value: str, kind: str) -> list[SubjectHit]:
    """The subject of a raw value, as a request holds it (tokens under every key held), looked up."""
    return analytics_hits(lake, policy, keyring, Subject.of(value, kind, keyring, policy))


@pytest.mark.parametrize("spelling", ["040123456", "+386 40 123 456", "0038640123456"])
def test_found_across_a_rotation_with_the_retired_key_held(rotated_lake, policy, spelling):
    assert found(find_subject(rotated_lake, policy, ROTATED, spelling, "msisdn")) == {
        ("k2026-01", "2026-06-30", "origin_number", 2),
        ("k2026-01", "2026-06-30", "destination_number", 1),
        ("k2026-07", "2026-07-02", "origin_number", 1),
    }


def test_rows_of_a_retired_key_not_held_are_not_found(rotated_lake, policy):
    assert found(find_subject(rotated_lake, policy, RING_B, SUBJECT, "msisdn")) == {
        ("k2026-07", "2026-07-02", "origin_number", 1)}
    assert found(find_subject(rotated_lake, policy, RING_A, SUBJECT, "msisdn")) == {
        ("k2026-01", "2026-06-30", "origin_number", 2), ("k2026-01", "2026-06-30", "destination_number", 1)}


def test_imsi_is_looked_up_in_imsi_columns_only(rotated_lake, policy):
    assert found(find_subject(rotated_lake, policy, ROTATED, IMSI, "imsi")) == {
        ("k2026-01", "2026-06-30", "imsi", 1), ("k2026-07", "2026-07-02", "imsi", 1)}
    # The same digits as a number are another identifier.
    assert find_subject(rotated_lake, policy, ROTATED, "38640123456", "imsi") == []


def test_nothing_to_find(rotated_lake, policy):
    assert find_subject(rotated_lake, policy, ROTATED, "+38641000000", "msisdn") == []
    with pytest.raises(SubjectError):       # a cell names a place, not a subscriber
        find_subject(rotated_lake, policy, ROTATED, "x", "cell")


def test_files_without_a_tokenized_column_are_searched_in_the_others(rotated_lake, policy):
    # None of the files holds redirection_number (the policy lists it): the lookup searches the columns
    # they do hold instead of failing the request.
    assert "redirection_number" in policy.columns_treated("tokenize")
    assert ("k2026-07", "2026-07-02", "origin_number", 1) in found(
        find_subject(rotated_lake, policy, ROTATED, SUBJECT, "msisdn"))


def test_empty_zone(lake, policy):
    assert find_subject(lake, policy, ROTATED, SUBJECT, "msisdn") == []


def test_finds_what_build_analytics_wrote_before_and_after_a_rotation(lake, policy, tmp_path):
    june = write_billing(lake, policy, "2026-06-30", [{"origin_number": "040123456", "imsi": IMSI}], "a" * 64)
    july = write_billing(lake, policy, "2026-07-02", [{"destination_number": SUBJECT}], "b" * 64)
    build_analytics([june], lake, policy, RING_A, tmp_path / "w1", source_sha256="a" * 64)
    build_analytics([july], lake, policy, ROTATED, tmp_path / "w2", source_sha256="b" * 64)
    assert found(find_subject(lake, policy, ROTATED, SUBJECT, "msisdn")) == {
        ("k2026-01", "2026-06-30", "origin_number", 1), ("k2026-07", "2026-07-02", "destination_number", 1)}
    assert found(find_subject(lake, policy, RING_B, SUBJECT, "msisdn")) == {
        ("k2026-07", "2026-07-02", "destination_number", 1)}
