"""transforms/audit.py compliance views: defined on an empty store, hand-made rows, the chain's link check."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from transforms import audit
from transforms.audit import LogEvent, append_log

AT = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)


@pytest.fixture()
def con(lake):
    c = audit.connect(lake)
    audit.define_views(c, lake)
    yield c
    c.close()


def rows(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()


@pytest.mark.parametrize("view", list(audit.VIEWS))
def test_every_view_answers_on_an_empty_store(con, view):
    got = rows(con, f"SELECT * FROM {view}")
    assert got == ([(0, None, None, None, None, True, None)] if view == "v_audit_chain" else [])


def test_views_survive_reopening_and_redefinition(lake, con):
    audit.define_views(con, lake)            # idempotent
    con.close()
    c = audit.connect(lake, read_only=True)
    try:
        names = {r[0] for r in rows(c, "SELECT view_name FROM duckdb_views() WHERE NOT internal")}
        assert set(audit.VIEWS) | {"roaming_status"} <= names
        assert rows(c, "SELECT comment FROM duckdb_views() WHERE view_name = 'v_last_run'")[0][0]
        audit.define_views(c, lake, temp=True)   # a read-only reader defines its own copies
        assert rows(c, "SELECT entries FROM v_audit_chain") == [(0,)]
    finally:
        c.close()


def test_empty_roaming_status_has_the_real_columns(con):
    cols = [(c, t) for c, t in rows(con, "SELECT column_name, data_type FROM information_schema.columns"
                                         " WHERE table_name = 'roaming_status' ORDER BY ordinal_position")]
    assert cols == list(audit.ROAMING_STATUS_COLUMNS)


def _run(con, run_id, night, started, files):
    con.execute("INSERT INTO runs VALUES (?, ?, 'cli', ?, ?, 'completed', 'p', '1', ?, 'c', ?, ?, 0, 0, 0, ?, ?, ?)",
                [run_id, night, started, started, "a" * 64, len(files), len(files),
                 sum(f[2] for f in files), sum(f[3] for f in files), sum(f[4] for f in files)])
    for name, status, read, loaded, rejected in files:
        con.execute("INSERT INTO source_files VALUES (?, ?, ?, ?, 10, 5, 'billing_csv', ?, NULL, ?, ?, ?, NULL, 1, ?)",
                    [run_id, night, name, name * 8, status, read, loaded, rejected, started])


def test_nightly_volumes_count_each_file_once_across_reruns(con):
    _run(con, "r1", date(2026, 11, 22), datetime(2026, 11, 23, 1, tzinfo=timezone.utc),
         [("a.csv", "loaded", 10, 7, 3), ("b.csv", "loaded", 5, 5, 0)])
    # The re-run skips both as known (0 rows) and audits a late file.
    _run(con, "r2", date(2026, 11, 22), datetime(2026, 11, 23, 2, tzinfo=timezone.utc),
         [("a.csv", "known", 0, 0, 0), ("b.csv", "known", 0, 0, 0), ("c.csv", "loaded", 4, 2, 2)])
    assert rows(con, "SELECT night, runs, files, rows_read, rows_loaded, rows_quarantined FROM v_nightly_volumes") == [
        (date(2026, 11, 22), 2, 3, 19, 14, 5)]
    assert rows(con, "SELECT run_id, rows_read, rows_quarantined FROM v_last_run") == [("r2", 4, 2)]


def test_policy_violations_list_columns_rules_and_other_reasons_once(con):
    _run(con, "r1", date(2026, 11, 22), AT, [("a.csv", "loaded", 10, 7, 3)])
    sha = "a.csv" * 8
    con.execute("INSERT INTO field_findings VALUES ('r1', ?, 'a.csv', 3, 'email', 'not_allowed', 'dropped', '', '§3.2')",
                [sha])
    con.execute("INSERT INTO field_findings VALUES ('r1', ?, 'a.csv', 1, 'imsi', 'allowed', 'kept', 'imsi', '§3.2')",
                [sha])
    con.execute("INSERT INTO validation_results VALUES ('r1', ?, 'a.csv', 'imsi_shape', 'regex', 'imsi', '§3.2 ¶3',"
                " false, 10, 2, 2)", [sha])
    con.execute("INSERT INTO validation_results VALUES ('r1', ?, 'a.csv', 'duration_s_range', 'between',"
                " 'duration_s', '§3.2 ¶3', true, 10, 0, 0)", [sha])
    con.executemany("INSERT INTO rejection_reasons VALUES ('r1', ?, 'a.csv', ?, ?)",
                    [[sha, "imsi_shape", 2], [sha, "duplicate_row", 1]])
    got = rows(con, "SELECT kind, column_name, clause, rule, rows_affected FROM v_policy_violations ORDER BY kind")
    assert got == [("failed_rule", "imsi", "§3.2 ¶3", "imsi_shape", 2),
                   ("off_list_column", "email", "§3.2", "not_allowed", None),
                   ("quarantine_reason", None, None, "duplicate_row", 1)]


def test_retention_due_counts_the_latest_sweeps_kept_rows(con):
    base = ["billing", "event_date=2026-01-01", "billing_cdr"]
    con.executemany("INSERT INTO retention_actions VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'law', '§5', NULL, 1, false)", [
        ["retention-2026-01-01", date(2026, 1, 1), *base, "kept", 999, date(2026, 1, 5)],   # older sweep: ignored
        ["retention-2026-06-01", date(2026, 6, 1), *base, "kept", 10, date(2026, 6, 20)],   # due in 19 days
        ["retention-2026-06-01", date(2026, 6, 1), "billing", "event_date=2026-02-01", "billing_cdr", "kept", 20,
         date(2026, 8, 1)],                                                                   # in 61 days
        ["retention-2026-06-01", date(2026, 6, 1), "billing", "event_date=2026-03-01", "billing_cdr", "kept", 40,
         date(2026, 12, 1)],                                                                  # in 183 days
        ["retention-2026-06-01", date(2026, 6, 1), *base, "deleted", 5, date(2026, 5, 1)],
    ])
    (as_of, kept, d30, d90, nxt), = rows(con, "SELECT as_of, rows_kept, rows_due_30d_after_sweep,"
                                              " rows_due_90d_after_sweep, next_due_on FROM v_retention_due")
    assert (as_of, kept, d30, d90, nxt) == (date(2026, 6, 1), 70, 10, 30, date(2026, 6, 20))
    assert rows(con, "SELECT as_of, action, rows FROM v_retention_actions WHERE as_of = '2026-06-01'"
                     " ORDER BY action") == [(date(2026, 6, 1), "deleted", 5), (date(2026, 6, 1), "kept", 70)]


def test_active_holds_show_key_ids_never_tokens(con):
    con.execute("INSERT INTO legal_holds VALUES ('H-000000000001', 'dispute', 'dpo', ?, NULL, NULL, NULL,"
                " 'subscriber', ?, NULL, NULL, NULL)", [AT, '{"k2": "' + "b" * 64 + '", "k1": "' + "c" * 64 + '"}'])
    con.execute("INSERT INTO legal_holds VALUES ('H-000000000002', 'old', 'dpo', ?, 'billing', NULL, NULL,"
                " NULL, NULL, 'dpo', ?, 'settled')", [AT, AT])
    got = rows(con, "SELECT * FROM v_legal_holds_active")
    assert [(r[0], r[8]) for r in got] == [("H-000000000001", "k1,k2")]
    assert "b" * 64 not in repr(got)


def test_audit_chain_view_spots_a_broken_link(con):
    append_log(con, [LogEvent(f"e{i}", "pipeline", "x", "t", {"n": i}) for i in range(1, 5)], at=AT)
    assert rows(con, "SELECT entries, last_seq, links_ok, first_bad_seq FROM v_audit_chain") == [(4, 4, True, None)]
    con.execute("UPDATE audit_log SET prev_hash = ? WHERE seq = 3", ["f" * 64])
    assert rows(con, "SELECT links_ok, first_bad_seq FROM v_audit_chain") == [(False, 3)]
