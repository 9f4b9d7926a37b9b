"""transforms/audit.py: schema, the hash-chained log and its tamper checks, Parquet exports."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest

from transforms import audit
from transforms.audit import GENESIS, LogEvent, append_log, verify_chain

AT = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)
TABLES = {"runs", "source_files", "field_findings", "validation_results", "rejection_reasons", "audit_log",
          "pseudonymization_log", "analytics_findings", "aggregate_releases", "legal_holds", "retention_actions",
          "retention_proofs", "roaming_runs"}


def events(n: int, prefix: str = "e") -> list[LogEvent]:
    return [LogEvent(f"{prefix}{i}", "pipeline", "file_loaded", f"billing_{i}.csv", {"rows_read": i * 10})
            for i in range(1, n + 1)]


@pytest.fixture()
def con(lake):
    c = audit.connect(lake)
    yield c
    c.close()


@pytest.fixture()
def chained(con):
    """A log of five entries, all written at AT."""
    assert append_log(con, events(5), at=AT) == 5
    return con


def log_rows(con):
    return con.execute("SELECT seq, event_key, prev_hash, hash, details FROM audit_log ORDER BY seq").fetchall()


def test_schema_creates_every_table(con, lake):
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert TABLES <= names
    assert lake.audit_db.is_file()


def test_schema_is_idempotent(lake):
    audit.connect(lake).close()
    c = audit.connect(lake)      # CREATE TABLE IF NOT EXISTS: reopening must not fail or wipe
    try:
        assert c.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
    finally:
        c.close()


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
    assert verify_chain(con) == audit.ChainCheck(True, 0)


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


def test_chain_continues_across_appends_and_times(chained):
    append_log(chained, events(2, "later"), at=AT + timedelta(days=1, microseconds=123456))
    check = verify_chain(chained)
    assert check.ok and check.entries == 7


def test_tamper_update_details_of_a_middle_row(chained):
    chained.execute("""UPDATE audit_log SET details = '{"rows_read":0}' WHERE seq = 3""")
    check = verify_chain(chained)
    assert check.ok is False
    assert check.first_bad_seq == 3
    assert check.problem == "entry content does not match its hash"


def test_tamper_update_with_recomputed_hash_breaks_the_next_link(chained):
    # A forger who also rewrites row 3's own hash still breaks row 4's prev_hash.
    chained.execute("UPDATE audit_log SET details = '{\"rows_read\":0}', hash = repeat('f', 64) WHERE seq = 3")
    check = verify_chain(chained)
    assert check.first_bad_seq in (3, 4)
    chained.execute("UPDATE audit_log SET hash = ? WHERE seq = 3", [
        audit._event_hash(log_rows(chained)[1][3], 3, AT.isoformat(),
                          LogEvent("e3", "pipeline", "file_loaded", "billing_3.csv", {"rows_read": 0}))])
    check = verify_chain(chained)
    assert check.ok is False and check.first_bad_seq == 4
    assert check.problem == "previous-hash link does not match the entry before it"


def test_tamper_delete_a_middle_row(chained):
    chained.execute("DELETE FROM audit_log WHERE seq = 3")
    check = verify_chain(chained)
    assert check.ok is False
    assert check.first_bad_seq == 4          # the first row after the gap
    assert check.problem == "sequence gap: expected 3"


def test_tamper_delete_the_first_row(chained):
    chained.execute("DELETE FROM audit_log WHERE seq = 1")
    check = verify_chain(chained)
    assert check.ok is False and check.first_bad_seq == 2


def test_tamper_change_prev_hash(chained):
    chained.execute("UPDATE audit_log SET prev_hash = repeat('0', 64) WHERE seq = 4")
    check = verify_chain(chained)
    assert check.ok is False
    assert check.first_bad_seq == 4
    assert check.problem == "previous-hash link does not match the entry before it"


def test_tamper_change_actor_or_time(chained):
    chained.execute("UPDATE audit_log SET actor = 'someone' WHERE seq = 2")
    assert verify_chain(chained).first_bad_seq == 2


def test_tamper_change_logged_at(chained):
    chained.execute("UPDATE audit_log SET logged_at = logged_at + INTERVAL 1 SECOND WHERE seq = 5")
    assert verify_chain(chained).first_bad_seq == 5


def test_append_with_a_non_utc_time_still_verifies(con):
    # 03:30 in Ljubljana (CET, +01:00) is 02:30 UTC; the stored instant is the same either way.
    cet = timezone(timedelta(hours=1))
    append_log(con, events(2), at=datetime(2026, 11, 23, 3, 30, tzinfo=cet))
    assert con.execute("SELECT logged_at FROM audit_log WHERE seq = 1").fetchone()[0] == AT
    assert verify_chain(con).ok


def test_details_with_dates_and_dataclasses_verify(con):
    # append_log documents JSON normalisation of details (datetimes, dataclasses): the chain must hold.
    details = {"started_at": AT, "check": audit.ChainCheck(True, 3), "files": ("a.csv", "b.csv")}
    assert append_log(con, [LogEvent("d1", "pipeline", "run_started", "r1", details)], at=AT) == 1
    stored = json.loads(log_rows(con)[0][4])
    assert stored == {"started_at": "2026-11-23T02:30:00+00:00",
                      "check": {"ok": True, "entries": 3, "first_bad_seq": None, "problem": ""},
                      "files": ["a.csv", "b.csv"]}
    assert verify_chain(con).ok


def source_file_row(**overrides):
    row = dict(run_id="r1", night="2026-11-22", file_name="billing.csv", sha256="a" * 64, bytes=100,
               profile="canonical_csv", status="loaded", rows_read=10, rows_loaded=7, rows_rejected=3,
               billing_partitions=1, processed_at=AT)
    row.update(overrides)
    return row


def insert(con, table, row):
    cols = ", ".join(row)
    con.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))


def test_source_files_accepts_a_balanced_row(con):
    insert(con, "source_files", source_file_row())      # 10 = 7 + 3
    assert con.execute("SELECT rows_read, rows_loaded, rows_rejected FROM source_files").fetchall() == [(10, 7, 3)]


@pytest.mark.parametrize("read, loaded, rejected", [(10, 7, 2), (10, 8, 3), (0, 1, 0)])
def test_source_files_check_rejects_unbalanced_counts(con, read, loaded, rejected):
    with pytest.raises(duckdb.ConstraintException):
        insert(con, "source_files", source_file_row(rows_read=read, rows_loaded=loaded, rows_rejected=rejected))
    assert con.execute("SELECT count(*) FROM source_files").fetchone()[0] == 0


DAY = date(2026, 11, 23)


def test_export_parquet_writes_one_snapshot_per_table_and_view(chained, lake, pq_read):
    insert(chained, "source_files", source_file_row())
    written = audit.export_parquet(chained, lake, run_date=DAY)
    names = TABLES | set(audit.VIEWS) - {"v_roaming_flagged"}
    assert sorted(written) == sorted(f"audit/parquet/{t}/run_date=2026-11-23/part.parquet" for t in names)
    folder = lake.zone("audit") / "parquet"
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    assert all(sorted(f.name for f in (folder / t / "run_date=2026-11-23").iterdir()) == ["part.parquet"]
               for t in names)   # no temp files left
    day = "run_date=2026-11-23/part.parquet"
    assert pq_read(folder / "audit_log" / day, "SELECT count(*), max(seq) FROM t") == [(5, 5)]
    assert pq_read(folder / "source_files" / day, "SELECT rows_read, rows_loaded, rows_rejected FROM t") == [
        (10, 7, 3)]
    assert pq_read(folder / "runs" / day, "SELECT count(*) FROM t") == [(0,)]
    assert pq_read(folder / "v_audit_chain" / day, "SELECT entries, last_seq, links_ok FROM t") == [(5, 5, True)]


def test_export_parquet_replaces_the_same_day_and_keeps_earlier_days(chained, lake, pq_read):
    audit.export_parquet(chained, lake, run_date=DAY - timedelta(days=1))
    audit.export_parquet(chained, lake, run_date=DAY)
    append_log(chained, events(2, "more"), at=AT)
    audit.export_parquet(chained, lake, run_date=DAY)
    folder = lake.zone("audit") / "parquet" / "audit_log"
    assert sorted(p.name for p in folder.iterdir()) == ["run_date=2026-11-22", "run_date=2026-11-23"]
    # Each day is a snapshot of the whole table as of that day's last export.
    assert pq_read(folder / "*" / "*.parquet", "SELECT run_date, count(*) FROM t GROUP BY 1 ORDER BY 1",
                   hive=True) == [(date(2026, 11, 22), 5), (date(2026, 11, 23), 7)]


def test_export_parquet_removes_the_old_flat_files(chained, lake):
    old = lake.zone("audit") / "parquet" / "runs.parquet"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"stale")
    audit.export_parquet(chained, lake, run_date=DAY)
    assert not old.exists()


def test_write_json_atomic_and_read_fragments(lake):
    run = "manual__2026-11-22T00:00:00+00:00"
    folder = lake.fragments_dir(run)
    audit.write_json_atomic(folder / "file-b.json", {"n": 2, "at": AT})
    audit.write_json_atomic(folder / "file-a.json", {"n": 1})
    audit.write_json_atomic(folder / "plan.json", {"ignored": True})
    assert audit.read_fragments(lake, run) == [{"n": 1}, {"n": 2, "at": "2026-11-23T02:30:00+00:00"}]
    assert [p.name for p in sorted(folder.iterdir())] == ["file-a.json", "file-b.json", "plan.json"]
    assert ":" not in folder.name and "+" not in folder.name
