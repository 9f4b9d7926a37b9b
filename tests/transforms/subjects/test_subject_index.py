"""transforms/privacy/subject_index.py: the tokens of each billing and analytics part, committed beside it, and
the search that reads them first (transforms/subjects/find.py).

Expected index contents are the identifiers put into the tiny lake (conftest), tokenized by hand (`stored`); a
search with the index must find what the same search finds by scanning every part.
"""

from __future__ import annotations

import os
import stat

import duckdb
import pytest

from tests.transforms.privacy.conftest import KEY_A, KEY_B, RING_A, ROTATED, SECRET_A, SECRET_B, stored
from tests.transforms.subjects.conftest import (CALLERS, DAY1_ROWS, DAY2_ROWS, O_NUMBER, S_DAY1, S_DAY2, S_IMSI,
                                               S_INVOICE_ROWS, S_NUMBER, X_NUMBER)
from tests.transforms.subjects.test_find import by_hand_subject, search
from transforms.lake.connection import connect
from transforms.lake.permissions import file_mode_under
from transforms.lake.partitions import index_path, part_files, withdraw_parts
from transforms.privacy.keys import KeyRing
from transforms.privacy.subject_index import INDEXED_ZONES, build_missing, candidate_parts
from transforms.subjects.find import FINDERS, Search, find_billing
from transforms.subjects.subject import Subject

INDEXED = ("billing", "analytics")       # the zones whose parts the analytics step indexes


def index_rows(part, columns: str = "token, hmac_key_id") -> list[tuple]:
    """The index's rows, in file order (a billing index has a row per spelling of a token: distinct here)."""
    con = duckdb.connect()
    try:
        return con.execute(f"SELECT {columns} FROM (SELECT DISTINCT ON (token) * FROM read_parquet($p)) ORDER BY token"
                           if columns == "token, hmac_key_id" else f"SELECT {columns} FROM read_parquet($p)",
                           {"p": str(index_path(part))}).fetchall()
    finally:
        con.close()


def expected_tokens(rows: list[dict], secret: bytes) -> list[bytes]:
    """The distinct tokens of a day's identifiers (numbers in E.164, IMSIs), worked out by hand, sorted."""
    numbers = {"040123456": S_NUMBER}           # the national spelling of S (conftest S_NATIONAL)
    out = set()
    for r in rows:
        for c in ("origin_number", "destination_number", "redirection_number"):
            if r[c]:
                out.add(stored(secret, f"msisdn:{numbers.get(r[c], r[c])}"))
        if r["imsi"]:
            out.add(stored(secret, f"imsi:{r['imsi']}"))
    return sorted(out)


def test_each_part_gets_its_index_of_the_distinct_tokens_under_the_key_it_was_made_with(subject_lake):
    for zone in INDEXED:
        parts = {p.parent.name: p for p in part_files(subject_lake, zone)}
        assert set(parts) == {f"event_date={S_DAY1}", f"event_date={S_DAY2}"}
        for day, rows, secret, key in ((S_DAY1, DAY1_ROWS, SECRET_A, KEY_A), (S_DAY2, DAY2_ROWS, SECRET_B, KEY_B)):
            got = index_rows(parts[f"event_date={day}"])
            # Sorted by token (row-group statistics prune a lookup), one row per distinct identifier.
            assert got == [(t, key.key_id) for t in expected_tokens(rows, secret)]
    # The billing index maps each token to the spellings its part holds (S is 040123456 and +38640123456 in June,
    # 040123456 in July); the analytics zone holds no raw identifier, nor does its index.
    for day, secret, spelled in ((S_DAY1, SECRET_A, {"040123456", S_NUMBER}), (S_DAY2, SECRET_B, {"040123456"})):
        billing = next(p for p in part_files(subject_lake, "billing") if p.parent.name == f"event_date={day}")
        pairs = index_rows(billing, "token, raw")
        assert pairs == sorted(pairs)
        assert {r for t, r in pairs if t == stored(secret, f"msisdn:{S_NUMBER}")} == spelled
        analytics = next(p for p in part_files(subject_lake, "analytics") if p.parent.name == f"event_date={day}")
        assert [d[0] for d in duckdb.connect().execute("SELECT * FROM read_parquet($p, hive_partitioning = false)"
                                                       " LIMIT 0", {
            "p": str(index_path(analytics))}).description] == ["token", "hmac_key_id"]


def test_the_index_has_its_zones_mode_and_no_reader_of_the_zone_sees_it(subject_lake):
    for zone in INDEXED:
        for part in part_files(subject_lake, zone):
            # the mode the zone's folder gives a committed file (owner-only here: no group reads billing)
            assert stat.S_IMODE(os.stat(index_path(part)).st_mode) == file_mode_under(part.parent) == 0o600
    # `*.parquet` globs (every reader of a zone) do not list it
    assert not list(subject_lake.zone("billing").glob("*/*.parquet.tokens"))
    assert all(p.suffix == ".parquet" for p in subject_lake.zone("billing").glob("*/*.parquet"))


@pytest.mark.parametrize("value, kind", [(S_NUMBER, "msisdn"), (S_IMSI, "imsi"), (O_NUMBER, "msisdn"),
                                         (CALLERS["C2"][0], "msisdn"), (X_NUMBER, "msisdn"),
                                         ("+38699999999", "msisdn")])
@pytest.mark.parametrize("keyring", [ROTATED, RING_A, KeyRing(KEY_B)], ids=["both", "A only", "B only"])
def test_a_search_with_the_index_finds_what_a_search_of_every_part_finds(subject_lake, policy, value, kind, keyring):
    subject = Subject.of(value, kind, keyring, policy)
    indexed = search(subject_lake, policy, keyring, subject)
    for zone in INDEXED_ZONES:
        for part in part_files(subject_lake, zone):
            index_path(part).unlink()
    scanned = search(subject_lake, policy, keyring, subject)
    # the same rows (as a multiset: invoices have no order) with the same columns, zone by zone
    assert {z: (f.rows, f.action, f.note, sorted(map(repr, rows))) for z, (f, rows) in indexed.items()} == \
        {z: (f.rows, f.action, f.note, sorted(map(repr, rows))) for z, (f, rows) in scanned.items()}


def test_the_index_rules_out_the_parts_that_do_not_hold_the_subject(subject_lake, policy):
    con = connect()
    try:
        # X is only in the June rows of C3 (and July's X calls O): both days; O's number likewise; C1 only June.
        s = Search(con, subject_lake, policy, ROTATED, Subject.of(CALLERS["C1"][0], "msisdn", ROTATED, policy))
        found = find_billing(s)
        assert found.rows == 1 and s.parts_scanned["billing"] == (1, 2)
        nobody = Search(con, subject_lake, policy, ROTATED, Subject.of("+38699999999", "msisdn", ROTATED, policy))
        found = find_billing(nobody)
        assert found.rows == 0 and nobody.parts_scanned["billing"] == (0, 2)
        # the table keeps the zone's columns though no part was read
        assert "origin_number" in {d[0] for d in con.execute(f"SELECT * FROM {found.table} LIMIT 0").description}
    finally:
        con.close()


def test_a_part_without_an_index_is_scanned(subject_lake, policy):
    july = next(p for p in part_files(subject_lake, "billing") if p.parent.name == f"event_date={S_DAY2}")
    index_path(july).unlink()
    con = connect()
    try:
        # nobody's tokens are in June's index; July has none, so it is read
        Search(con, subject_lake, policy, ROTATED, Subject.of("+38699999999", "msisdn", ROTATED, policy))
        assert candidate_parts(con, [str(p) for p in part_files(subject_lake, "billing")],
                               {KEY_A.key_id, KEY_B.key_id}) == [str(july)]
        # C1 is in June's index, and July is read as well
        s = Search(con, subject_lake, policy, ROTATED, Subject.of(CALLERS["C1"][0], "msisdn", ROTATED, policy))
        assert find_billing(s).rows == 1 and s.parts_scanned["billing"] == (2, 2)
    finally:
        con.close()
    # S's July data session is found by scanning that part
    found = search(subject_lake, policy, ROTATED, Subject.of(S_NUMBER, "msisdn", ROTATED, policy))
    assert ("2026-07-02 08:00:00", 300) in {(r["start_time"].strftime("%Y-%m-%d %H:%M:%S"), r["duration_s"])
                                           for r in found["billing"][1]}


def test_an_index_under_a_key_the_subject_has_no_token_under_is_not_trusted(subject_lake, policy):
    # A request recorded with key B only: June's index (key A) cannot list its tokens; June is scanned and S's
    # June rows are found by their spellings under B, as without the index.
    subject = by_hand_subject(S_NUMBER, "msisdn", SECRET_B)
    con = connect()
    try:
        s = Search(con, subject_lake, policy, ROTATED, subject)
        look = s.candidates("billing", [str(p) for p in part_files(subject_lake, "billing")])
        june = [str(p) for p in part_files(subject_lake, "billing") if p.parent.name == f"event_date={S_DAY1}"]
        # June is read and hashed (its index cannot be matched); July's index lists S under B
        assert look.unindexed == june and look.parts == [str(p) for p in part_files(subject_lake, "billing")]
    finally:
        con.close()
    with_b = search(subject_lake, policy, ROTATED, subject)
    assert {r["start_time"].strftime("%Y-%m-%d") for r in with_b["billing"][1]} == {S_DAY1, S_DAY2}


def test_missing_indexes_are_built_under_the_current_key_and_match_the_pipelines(subject_lake, policy, tmp_path):
    june = {z: next(p for p in part_files(subject_lake, z) if p.parent.name == f"event_date={S_DAY1}")
            for z in INDEXED}
    made = {z: index_rows(p) for z, p in june.items()}
    for p in june.values():
        index_path(p).unlink()
    con = connect()
    try:
        built = build_missing(con, subject_lake, policy, RING_A)
    finally:
        con.close()
    assert built.written == {"billing": 1, "analytics": 1, "invoices": 0} and built.skipped == 0
    # Billing is hashed anew under the current key (A here), analytics read from its own tokens: the same index.
    assert {z: index_rows(p) for z, p in june.items()} == made


def test_a_failed_files_parts_leave_with_their_index(subject_lake):
    parts = part_files(subject_lake, "billing")
    withdraw_parts(subject_lake, ("billing", "analytics"), "a" * 64)
    gone = [p for p in parts if p.parent.name == f"event_date={S_DAY1}"]
    assert gone and not any(p.exists() or index_path(p).exists() for p in gone)
    assert all(index_path(p).exists() for p in part_files(subject_lake, "billing"))


def test_invoice_parts_are_indexed_by_their_subscriber_number_and_searched_through_it(subject_lake, policy):
    # The fixture indexes the payments extracts' invoice parts as the night does, under the key current then (B).
    parts = part_files(subject_lake, "invoices")
    assert parts and all(index_path(p).exists() for p in parts)
    listed = {(t, r) for p in parts for t, r in index_rows(p, "token, raw")}
    assert listed == {(stored(SECRET_B, f"msisdn:{n}"), n) for n in (S_NUMBER, O_NUMBER)}
    con = connect()
    try:
        # C1 has no invoice: no invoice part is read for them
        s = Search(con, subject_lake, policy, ROTATED, Subject.of(CALLERS["C1"][0], "msisdn", ROTATED, policy))
        assert FINDERS["invoices"](s).rows == 0 and s.parts_scanned["invoices"] == (0, len(parts))
    finally:
        con.close()
    # and S's are found through it (S_INVOICE_ROWS, conftest), as by hashing every subscriber number
    assert search(subject_lake, policy, ROTATED, Subject.of(S_NUMBER, "msisdn", ROTATED, policy))[
        "invoices"][0].rows == S_INVOICE_ROWS
