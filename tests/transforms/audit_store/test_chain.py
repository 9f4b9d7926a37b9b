"""transforms/audit_store/chain.py: the hash-chained log, idempotent appends, and its tamper checks."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.transforms.audit_store.conftest import AT, events, log_rows
from transforms import audit_store
from transforms.audit_store import ChainCheck, LogEvent, append_log, outcome_event, verify_chain, verify_store
from transforms.audit_store.chain import GENESIS, _event_hash


def test_first_entry_links_to_64_zeros(chained):
    first = log_rows(chained)[0]
    assert first[0] == 1
    assert first[2] == GENESIS == "0" * 64


def test_each_prev_hash_is_the_hash_before(chained):
    rows = log_rows(chained)
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    for before, after in zip(rows, rows[1:]):
        assert after[2] == before[3]
    assert len({r[3] for r in rows}) == 5                      # every hash differs
    assert all(len(r[3]) == 64 and int(r[3], 16) >= 0 for r in rows)


def test_hash_is_sha256_of_prev_and_canonical_body(chained):
    # Recomputed by hand from the documented construction: sha256(prev_hash | sorted compact JSON).
    seq, key, prev, stored, _ = log_rows(chained)[0]
    body = json.dumps({"seq": 1, "at": AT.isoformat(), "actor": "pipeline", "action": "file_loaded",
                       "target": "billing_1.csv", "details": {"rows_read": 10}, "event_key": "e1"},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert stored == hashlib.sha256(f"{GENESIS}|{body}".encode()).hexdigest()


def test_details_stored_as_sorted_json(con):
    append_log(con, [LogEvent("k", "cli", "run_started", "r1", {"b": 2, "a": 1})], at=AT)
    assert log_rows(con)[0][4] == '{"a":1,"b":2}'


def test_verify_chain_ok(chained):
    check = verify_chain(chained)
    assert check.ok is True
    assert check.entries == 5
    assert check.first_bad_seq is None


def test_verify_empty_log(con):
    assert verify_chain(con) == ChainCheck(True, 0)


def test_appending_an_existing_event_key_adds_nothing(chained):
    before = log_rows(chained)
    assert append_log(chained, [events(5)[2]], at=AT + timedelta(hours=1)) == 0
    assert log_rows(chained) == before


def test_mixed_append_adds_only_new_keys(chained):
    # e2 and e4 exist; f1 is new and becomes seq 6, linked to seq 5.
    added = append_log(chained, [events(5)[1], LogEvent("f1", "pipeline", "x", "y", {}), events(5)[3]], at=AT)
    assert added == 1
    rows = log_rows(chained)
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[5][1] == "f1" and rows[5][2] == rows[4][3]
    assert verify_chain(chained).ok


def test_an_outcome_is_logged_once_and_a_changed_one_after_it(con):
    # A run cleared and re-run keeps its run id: its close states its outcome again under the same key.
    failed = outcome_event("run:r1:finish", "pipeline", "run_finished", "r1", {"status": "completed_with_errors"})
    again = outcome_event("run:r1:finish", "pipeline", "run_finished", "r1", {"status": "completed_with_errors"})
    fixed = outcome_event("run:r1:finish", "pipeline", "run_finished", "r1", {"status": "completed"})
    assert again.event_key == failed.event_key != fixed.event_key
    assert all(e.event_key.startswith("run:r1:finish:") for e in (failed, fixed))
    assert append_log(con, [failed], at=AT) == 1
    assert append_log(con, [again], at=AT + timedelta(hours=1)) == 0          # the same outcome: nothing new
    assert append_log(con, [fixed], at=AT + timedelta(hours=2)) == 1          # a changed one: after the first
    assert [json.loads(d)["status"] for (d,) in con.execute("SELECT details FROM audit_log ORDER BY seq").fetchall()] \
        == ["completed_with_errors", "completed"]
    assert verify_chain(con).ok


def test_a_key_twice_in_one_append_is_added_once(con):
    assert append_log(con, [*events(2), *events(2)], at=AT) == 2
    assert [r[1] for r in log_rows(con)] == ["e1", "e2"]


def test_chain_continues_across_appends_and_times(chained):
    append_log(chained, events(2, "later"), at=AT + timedelta(days=1, microseconds=123456))
    check = verify_chain(chained)
    assert check.ok and check.entries == 7


CONTENT, LINK = "entry content does not match its hash", "previous-hash link does not match the entry before it"


@pytest.mark.parametrize("tampering, first_bad_seq, problem", [
    ("""UPDATE audit_log SET details = '{"rows_read":0}' WHERE seq = 3""", 3, CONTENT),
    ("DELETE FROM audit_log WHERE seq = 3", 4, "sequence gap: expected 3"),      # the first row after the gap
    ("DELETE FROM audit_log WHERE seq = 1", 2, "sequence gap: expected 1"),
    ("UPDATE audit_log SET prev_hash = repeat('0', 64) WHERE seq = 4", 4, LINK),
    ("UPDATE audit_log SET actor = 'someone' WHERE seq = 2", 2, CONTENT),
    ("UPDATE audit_log SET logged_at = logged_at + INTERVAL 1 SECOND WHERE seq = 5", 5, CONTENT),
    ("UPDATE audit_log SET event_key = 'other' WHERE seq = 2", 2, CONTENT),
], ids=["details", "delete_middle", "delete_first", "prev_hash", "actor", "logged_at", "event_key"])
def test_tampering_is_found_at_the_first_entry_it_touches(chained, tampering, first_bad_seq, problem):
    chained.execute(tampering)
    check = verify_chain(chained)
    assert check.ok is False
    assert check.first_bad_seq == first_bad_seq
    assert check.problem == problem


def test_tamper_update_with_recomputed_hash_breaks_the_next_link(chained):
    # A forger who also rewrites row 3's own hash still breaks row 4's prev_hash.
    chained.execute("UPDATE audit_log SET details = '{\"rows_read\":0}', hash = repeat('f', 64) WHERE seq = 3")
    check = verify_chain(chained)
    assert check.first_bad_seq in (3, 4)
    chained.execute("UPDATE audit_log SET hash = ? WHERE seq = 3", [
        _event_hash(log_rows(chained)[1][3], 3, AT.isoformat(),
                    LogEvent("e3", "pipeline", "file_loaded", "billing_3.csv", {"rows_read": 0}))])
    check = verify_chain(chained)
    assert check.ok is False and check.first_bad_seq == 4
    assert check.problem == LINK


def test_append_with_a_non_utc_time_still_verifies(con):
    # 03:30 in Ljubljana (CET, +01:00) is 02:30 UTC; the stored instant is the same either way.
    cet = timezone(timedelta(hours=1))
    append_log(con, events(2), at=datetime(2026, 11, 23, 3, 30, tzinfo=cet))
    assert con.execute("SELECT logged_at FROM audit_log WHERE seq = 1").fetchone()[0] == AT
    assert verify_chain(con).ok


def test_append_without_a_time_stamps_now(con):
    before = datetime.now(timezone.utc)
    append_log(con, events(1))
    logged = con.execute("SELECT logged_at FROM audit_log").fetchone()[0]
    assert before - timedelta(seconds=1) <= logged <= datetime.now(timezone.utc)
    assert verify_chain(con).ok


def test_details_with_dates_and_dataclasses_verify(con):
    # append_log documents JSON normalisation of details (datetimes, dataclasses): the chain must hold.
    details = {"started_at": AT, "check": ChainCheck(True, 3), "files": ("a.csv", "b.csv")}
    assert append_log(con, [LogEvent("d1", "pipeline", "run_started", "r1", details)], at=AT) == 1
    stored = json.loads(log_rows(con)[0][4])
    assert stored == {"started_at": "2026-11-23T02:30:00+00:00",
                      "check": {"ok": True, "entries": 3, "first_bad_seq": None, "problem": ""},
                      "files": ["a.csv", "b.csv"]}
    assert verify_chain(con).ok


# ---------------------------------------------------------------- verify_store: the lake's store, read-only

def test_verify_store_reads_the_lakes_store(lake, chained):
    chained.close()
    check = verify_store(lake)
    assert check.chain == ChainCheck(True, 5) and check.ok
    assert check.anchors.checked == 0          # written without `writing`: nothing anchored it


def test_verify_store_finds_a_break(lake, chained):
    chained.execute("DELETE FROM audit_log WHERE seq = 2")
    chained.close()
    check = verify_store(lake)
    assert (check.ok, check.chain.first_bad_seq, check.chain.problem) == (False, 3, "sequence gap: expected 2")
    assert check.problems() == ["audit log chain BROKEN at seq 3: sequence gap: expected 2"]


def test_verify_store_never_writes(lake, chained):
    chained.close()
    before = lake.audit_db.read_bytes()
    verify_store(lake)
    assert lake.audit_db.read_bytes() == before


def test_verify_store_without_a_store(lake):
    with pytest.raises(FileNotFoundError):
        verify_store(lake)
    assert not lake.audit_db.exists()


def test_the_package_exports_the_chain():
    assert audit_store.verify_chain is verify_chain and audit_store.LogEvent is LogEvent


def test_after_a_deleted_tail_the_next_entry_follows_the_last_one_left(lake, chained):
    chained.close()
    con = audit_store.connect(lake)
    con.execute("DELETE FROM audit_log WHERE seq > 3")
    con.execute("CHECKPOINT")
    con.close()
    con = audit_store.connect(lake)
    try:
        assert append_log(con, events(2, "n"), at=AT) == 2
        assert [r[0] for r in log_rows(con)] == [1, 2, 3, 4, 5] and verify_chain(con).ok
    finally:
        con.close()
