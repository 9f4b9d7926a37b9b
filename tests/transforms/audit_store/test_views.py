"""transforms/audit_store/views.py: the compliance views on an empty store and on hand-made rows, the chain's
link check, the roaming status over the zone's files, and the reporting horizons the policy sets."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest

from tests.transforms.audit_store.conftest import AT, NIGHT, rows, source_file
from tests.transforms.policy.conftest import load_edited
from transforms.audit_store import LogEvent, append_log, connect, insert
from transforms.audit_store.tables import (
    AggregateRelease, FieldFinding, LegalHold, RejectionReason, RetentionActionRow, RoamingRun, Run, ValidationResult,
)
from transforms.audit_store.views import SQL_DIR, VIEW_NAMES, define_views, view_doc, view_sql
from transforms.roaming.schema import STATUS_COLUMNS, STATUS_DIR

SWEEP = date(2026, 6, 1)


@pytest.fixture()
def vcon(con, lake, policy):
    """The store with its views defined for the real policy."""
    define_views(con, lake, policy)
    return con


def columns(con, name: str) -> list[tuple[str, str]]:
    return rows(con, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?"
                     " ORDER BY ordinal_position", [name])


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


@pytest.mark.parametrize("view", VIEW_NAMES)
def test_every_view_answers_on_an_empty_store(empty_store, view):
    got = rows(empty_store, f"SELECT * FROM {view}")
    assert got == ([(0, None, None, None, None, True, None)] if view == "v_audit_chain" else [])


def test_every_view_file_is_a_view_and_every_view_has_a_file():
    assert sorted(p.stem for p in SQL_DIR.glob("*.sql")) == sorted(VIEW_NAMES)
    assert len(set(VIEW_NAMES)) == len(VIEW_NAMES)


def test_a_views_description_is_its_first_comment_line(empty_store):
    for name in VIEW_NAMES:
        first = (SQL_DIR / f"{name}.sql").read_text().splitlines()[0]
        assert first.startswith("-- ") and view_doc(name) == first[3:]
        assert rows(empty_store, "SELECT comment FROM duckdb_views() WHERE view_name = ?", [name]) == [
            (view_doc(name),)]


def test_views_survive_reopening_and_redefinition(lake, vcon, policy):
    define_views(vcon, lake, policy)            # idempotent
    vcon.close()
    c = connect(lake, read_only=True)
    try:
        names = {r[0] for r in rows(c, "SELECT view_name FROM duckdb_views() WHERE NOT internal")}
        assert set(VIEW_NAMES) | {"roaming_status"} <= names
        assert rows(c, "SELECT comment FROM duckdb_views() WHERE view_name = 'v_last_run'")[0][0]
        define_views(c, lake, policy, temp=True)   # a read-only reader defines its own copies
        assert rows(c, "SELECT entries FROM v_audit_chain") == [(0,)]
    finally:
        c.close()


def test_empty_roaming_status_has_the_real_columns(empty_store):
    assert columns(empty_store, "roaming_status") == list(STATUS_COLUMNS)


def test_roaming_status_reads_the_zones_files_and_an_older_file_lacks_nothing(vcon, lake, policy, pq_write):
    # A window file written before `longest_inactive_days` and `long_inactivity` existed.
    older = [(c, t) for c, t in STATUS_COLUMNS if c not in ("longest_inactive_days", "long_inactivity")]
    values = {"as_of_month": "'2026-10'", "window_start_month": "'2026-07'", "window_months": "4",
              "hmac_key_id": "'k1'", "state": "s.state", "subscriber_token": "s.token"}
    select = ", ".join(f"CAST({values.get(c, 'NULL')} AS {t}) AS {c}" for c, t in older)
    folder = lake.zone("roaming") / STATUS_DIR / "as_of=2026-10"
    folder.mkdir(parents=True)
    pq_write(folder / "part.parquet", f"SELECT {select} FROM (VALUES ('flagged', '\\xAB\\x01'::BLOB),"
                                      " ('not_flagged', '\\x02'::BLOB), ('flagged', '\\x03'::BLOB)) s(state, token)")
    define_views(vcon, lake, policy)
    assert columns(vcon, "roaming_status") == list(STATUS_COLUMNS)
    assert rows(vcon, "SELECT count(*), count(long_inactivity) FROM roaming_status") == [(3, 0)]
    assert rows(vcon, "SELECT as_of_month, state, subscribers FROM v_roaming_states") == [
        ("2026-10", "flagged", 2), ("2026-10", "not_flagged", 1)]
    assert rows(vcon, "SELECT subscriber_token_hex FROM v_roaming_flagged") == [("03",), ("ab01",)]


def _run(con, run_id, night, started, files):
    insert(con, [Run(run_id=run_id, night=night, trigger="cli", started_at=started, finished_at=started,
                     status="completed", policy_id="p", policy_version="1", policy_sha256="a" * 64, code_version="c",
                     files_seen=len(files), files_processed=len(files), files_skipped_known=0, files_rejected=0,
                     files_failed=0, rows_read=sum(f[2] for f in files), rows_loaded=sum(f[3] for f in files),
                     rows_rejected=sum(f[4] for f in files))])
    insert(con, [source_file(run_id=run_id, night=night, file_name=name, sha256=name * 8, bytes=10, lines=5,
                             status=status, rows_read=read, rows_loaded=loaded, rows_rejected=rejected,
                             processed_at=started, **{"profile": "billing_csv", **(more[0] if more else {})})
                 for name, status, read, loaded, rejected, *more in files])


def test_nightly_volumes_count_each_file_once_across_reruns(vcon):
    _run(vcon, "r1", NIGHT, datetime(2026, 11, 23, 1, tzinfo=timezone.utc),
         [("a.csv", "loaded", 10, 7, 3), ("b.csv", "loaded", 5, 5, 0)])
    # The re-run skips both as known (0 rows) and audits a late file.
    _run(vcon, "r2", NIGHT, datetime(2026, 11, 23, 2, tzinfo=timezone.utc),
         [("a.csv", "known", 0, 0, 0), ("b.csv", "known", 0, 0, 0), ("c.csv", "loaded", 4, 2, 2)])
    assert rows(vcon, "SELECT night, runs, files, rows_read, rows_loaded, rows_quarantined FROM v_nightly_volumes") == [
        (NIGHT, 2, 3, 19, 14, 5)]
    assert rows(vcon, "SELECT run_id, rows_read, rows_quarantined FROM v_last_run") == [("r2", 4, 2)]


def _night_of(vcon, day: int, *formats: str, run: str = "", status: str = "loaded") -> date:
    """Night 2026-11-<day>, its files read as `formats` (one file each, named by format and night)."""
    night = date(2026, 11, day)
    _run(vcon, f"r{day}{run}", night, datetime(2026, 11, day + 1, 1 + len(run), tzinfo=timezone.utc),
         [(f"{f}-{day}.csv", status, 4, 4 if status == "loaded" else 0, 0 if status == "loaded" else 4,
           {"profile": f if status == "loaded" else None}) for f in formats])
    return night


def test_missing_sources_are_regular_formats_not_read_on_a_night_until_read_again_or_a_week_on(vcon):
    missing = "SELECT night, source, last_read_on, nights_without FROM v_missing_sources ORDER BY night, source"
    nov = lambda day: date(2026, 11, day)        # noqa: E731
    _night_of(vcon, 1, "mediation", "asterisk", "freeswitch")
    _night_of(vcon, 2, "mediation", "asterisk")
    # freeswitch was read once, then not: not regular, never missing. Nothing is regular before 3 nights running.
    assert rows(vcon, missing) == []
    _night_of(vcon, 3, "mediation", "asterisk")
    _night_of(vcon, 4, "mediation")
    assert rows(vcon, missing) == [(nov(4), "asterisk", nov(3), 1)]
    # A night where nothing landed: every regular source is missing; asterisk for the second night.
    _night_of(vcon, 5)
    assert rows(vcon, missing)[1:] == [(nov(5), "asterisk", nov(3), 2), (nov(5), "mediation", nov(4), 1)]
    # A file of the format that came and failed (no profile) is not a file read as it.
    _night_of(vcon, 6, "asterisk", "mediation", status="failed")
    assert rows(vcon, missing)[3:] == [(nov(6), "asterisk", nov(3), 3), (nov(6), "mediation", nov(4), 2)]
    # A re-run of the night that reads the late mediation file ends its absence there.
    _night_of(vcon, 6, "mediation", run="b")
    assert rows(vcon, missing)[3:] == [(nov(6), "asterisk", nov(3), 3)]
    # asterisk is missing on the nights after, up to 7 audited nights without it; then taken as retired.
    for day in range(7, 12):
        _night_of(vcon, day, "mediation")
    assert [r[2:] for r in rows(vcon, missing)[4:]] == [(nov(3), n) for n in range(4, 8)]
    # Read again after that, it is expected anew only once regular again (3 nights with files running).
    _night_of(vcon, 12, "mediation", "asterisk")
    _night_of(vcon, 13, "mediation")
    assert rows(vcon, missing)[8:] == []
    # asterisk, read on 12 and 14 but not 13, is not regular again; mediation, read on every night with files
    # from 7 to 14, is missing on 20, whatever the calendar gap (the nights running are nights with files).
    _night_of(vcon, 14, "mediation", "asterisk")
    _night_of(vcon, 20, "asterisk")
    assert rows(vcon, missing)[8:] == [(nov(20), "mediation", nov(14), 1)]


def test_policy_violations_list_columns_rules_and_other_reasons_once(vcon):
    _run(vcon, "r1", NIGHT, AT, [("a.csv", "loaded", 10, 7, 3)])
    file = {"run_id": "r1", "sha256": "a.csv" * 8, "file_name": "a.csv"}
    insert(vcon, [FieldFinding(**file, column_index=3, source_column="email", classification="not_allowed",
                               action="dropped", canonical_columns="", clause="§3.2"),
                  FieldFinding(**file, column_index=1, source_column="imsi", classification="allowed",
                               action="kept", canonical_columns="imsi", clause="§3.2")])
    insert(vcon, [ValidationResult(**file, rule="imsi_shape", expectation="regex", column_name="imsi",
                                   clause="§3.2 ¶3", success=False, element_count=10, unexpected_count=2,
                                   rows_quarantined=2),
                  ValidationResult(**file, rule="duration_s_range", expectation="between", column_name="duration_s",
                                   clause="§3.2 ¶3", success=True, element_count=10, unexpected_count=0,
                                   rows_quarantined=0)])
    insert(vcon, [RejectionReason(**file, reason="imsi_shape", rows=2),
                  RejectionReason(**file, reason="duplicate_row", rows=1)])
    got = rows(vcon, "SELECT kind, column_name, clause, rule, rows_affected FROM v_policy_violations ORDER BY kind")
    assert got == [("failed_rule", "imsi", "§3.2 ¶3", "imsi_shape", 2),
                   ("off_list_column", "email", "§3.2", "not_allowed", None),
                   ("quarantine_reason", None, None, "duplicate_row", 1)]


# docs/design.md §9: rows read = loaded + quarantined + refused whole + failed; a refused file keeps nothing.
NIGHT_OF_EVERY_OUTCOME = [
    ("a.csv", "loaded", 10, 7, 3, {"rows_failing": 1, "rows_duplicate": 1, "rows_unparseable": 1,
                                   "lateness_window_days": 7, "rows_before_lateness_window": 2,
                                   "rows_after_night": 1}),
    ("b.csv", "quarantined", 4, 0, 4, {"rows_failing": 0, "rows_duplicate": 0, "rows_unparseable": 4,
                                       "lateness_window_days": 7, "rows_before_lateness_window": 0,
                                       "rows_after_night": 0}),
    ("c.csv", "rejected_file", 6, 0, 6),
    ("d.csv", "duplicate_file", 10, 0, 10),
    ("e.csv", "failed", 5, 0, 5),
    ("f.csv", "empty", 0, 0, 0),
]


def test_nightly_volumes_tell_quarantined_from_refused_and_count_lateness(vcon):
    _run(vcon, "r1", NIGHT, AT, NIGHT_OF_EVERY_OUTCOME)
    got = rows(vcon, "SELECT files, files_loaded, files_quarantined, files_rejected, files_failed, rows_read,"
                     " rows_loaded, rows_quarantined, rows_refused, rows_failed, lateness_window_days,"
                     " rows_before_lateness_window, rows_after_night FROM v_nightly_volumes")
    assert got == [(6, 1, 1, 2, 1, 35, 7, 3 + 4, 6 + 10, 5, 7, 2, 1)]
    (read, loaded, quarantined, refused, failed), = rows(
        vcon, "SELECT rows_read, rows_loaded, rows_quarantined, rows_refused, rows_failed FROM v_nightly_volumes")
    assert read == loaded + quarantined + refused + failed
    assert rows(vcon, "SELECT rows_read, rows_loaded, rows_quarantined, rows_refused, rows_failed,"
                      " rows_before_lateness_window, rows_after_night FROM v_last_run") == [(35, 7, 7, 16, 5, 2, 1)]


def test_night_files_name_each_files_main_reason(vcon):
    _run(vcon, "r1", NIGHT, AT, [("a.csv", "loaded", 10, 7, 3), ("c.csv", "rejected_file", 6, 0, 6),
                                 ("g.csv", "loaded", 5, 5, 0)])
    a = {"run_id": "r1", "sha256": "a.csv" * 8, "file_name": "a.csv"}
    c = {"run_id": "r1", "sha256": "c.csv" * 8, "file_name": "c.csv"}
    # a.csv: 3 rows quarantined, two of them (one also a duplicate) failing imsi_shape; a tie goes by name.
    insert(vcon, [RejectionReason(**a, reason="imsi_shape", rows=2), RejectionReason(**a, reason="duplicate_row", rows=1),
                  RejectionReason(**a, reason="apn_shape", rows=2),
                  RejectionReason(**c, reason="no known source format", rows=6)])
    assert rows(vcon, "SELECT file_name, main_reason, main_reason_rows FROM v_night_files ORDER BY 1") == [
        ("a.csv", "apn_shape", 2), ("c.csv", "no known source format", 6), ("g.csv", None, None)]


def test_policy_violations_list_a_refused_files_reason_as_refused_not_quarantined(vcon):
    _run(vcon, "r1", NIGHT, AT, [("a.csv", "loaded", 10, 7, 3), ("c.csv", "rejected_file", 6, 0, 6),
                                 ("d.csv", "duplicate_file", 10, 0, 10)])
    insert(vcon, [RejectionReason(run_id="r1", sha256="a.csv" * 8, file_name="a.csv", reason="duplicate_row", rows=3),
                  RejectionReason(run_id="r1", sha256="c.csv" * 8, file_name="c.csv", reason="no known format", rows=6),
                  RejectionReason(run_id="r1", sha256="d.csv" * 8, file_name="d.csv", reason="duplicate_file",
                                  rows=10)])
    got = rows(vcon, "SELECT file_name, kind, rule, outcome, rows_affected, rows_quarantined FROM v_policy_violations"
                     " ORDER BY file_name")
    assert got == [("a.csv", "quarantine_reason", "duplicate_row", "quarantined", 3, 3),
                   ("c.csv", "refused_file", "no known format", "refused_whole", 6, 0),
                   ("d.csv", "refused_file", "duplicate_file", "refused_whole", 10, 0)]


def test_roaming_windows_keep_a_window_with_nobody_to_assess(vcon):
    _run(vcon, "r1", date(2026, 10, 10), datetime(2026, 10, 11, 2, tzinfo=timezone.utc), [])
    _run(vcon, "r2", NIGHT, datetime(2026, 11, 23, 2, tzinfo=timezone.utc), [])
    _run(vcon, "r3", NIGHT, datetime(2026, 11, 23, 3, tzinfo=timezone.utc), [])      # a re-run of the night
    insert(vcon, [
        RoamingRun(run_id="r1", month="2026-09", kind="window", subscribers=3, flagged=1, not_flagged=2,
                   insufficient_history=0, long_inactivity=0, path="roaming/status/as_of=2026-09/part.parquet"),
        RoamingRun(run_id="r2", month="2026-10", kind="window", subscribers=5, flagged=5, not_flagged=0,
                   insufficient_history=0, long_inactivity=0, path="roaming/status/as_of=2026-10/part.parquet"),
        RoamingRun(run_id="r3", month="2026-10", kind="window", subscribers=0, flagged=0, not_flagged=0,
                   insufficient_history=0, long_inactivity=0, path=None),
        RoamingRun(run_id="r3", month="2026-11", kind="month", rows_read=9, subscribers=2, path="roaming/x")])
    # Each window as its latest run left it: 2026-10 had nobody to assess when r3 assessed it again.
    assert rows(vcon, "SELECT as_of_month, run_id, subscribers, flagged, not_flagged, insufficient_history,"
                      " status_file_written FROM v_roaming_windows") == [
        ("2026-09", "r1", 3, 1, 2, 0, True), ("2026-10", "r3", 0, 0, 0, 0, False)]


def sweep_rows(*rows_: tuple) -> list[RetentionActionRow]:
    """(as_of, partition, action, rows, due_on[, dry_run]) → billing_cdr rows of the billing data set."""
    return [RetentionActionRow(run_id=f"retention-{as_of}", as_of=as_of, dataset="billing", partition=partition,
                               category="billing_cdr", action=action, rows=n, due_on=due, legal_basis="law",
                               clause="§5", hold_ids=None, files=1, dry_run=bool(dry[0]) if dry else False)
            for as_of, partition, action, n, due, *dry in rows_]


def test_retention_due_counts_the_latest_sweeps_kept_rows(vcon):
    insert(vcon, sweep_rows(
        (date(2026, 1, 1), "event_date=2026-01-01", "kept", 999, date(2026, 1, 5)),   # older sweep: ignored
        (SWEEP, "event_date=2026-01-01", "kept", 10, date(2026, 6, 20)),               # due in 19 days
        (SWEEP, "event_date=2026-02-01", "kept", 20, date(2026, 8, 1)),                # in 61 days
        (SWEEP, "event_date=2026-03-01", "kept", 40, date(2026, 12, 1)),               # in 183 days
        (SWEEP, "event_date=2026-01-01", "deleted", 5, date(2026, 5, 1)),
    ))
    (as_of, kept, d30, d90, nxt), = rows(vcon, "SELECT as_of, rows_kept, rows_due_30d_after_sweep,"
                                               " rows_due_90d_after_sweep, next_due_on FROM v_retention_due")
    assert (as_of, kept, d30, d90, nxt) == (SWEEP, 70, 10, 30, date(2026, 6, 20))
    assert rows(vcon, "SELECT as_of, action, rows FROM v_retention_actions WHERE as_of = '2026-06-01'"
                      " ORDER BY action") == [(SWEEP, "deleted", 5), (SWEEP, "kept", 70)]


def test_retention_due_has_a_column_pair_per_policy_horizon(con, lake, tmp_path):
    policy = load_edited(tmp_path, lambda d: d["reporting"].update(retention_due_within_days=[7, 30, 365]))
    define_views(con, lake, policy)
    assert [c for c, _ in columns(con, "v_retention_due")] == [
        "as_of", "dataset", "category", "clause", "partitions", "rows_kept", "next_due_on",
        "rows_due_7d_after_sweep", "rows_due_30d_after_sweep", "rows_due_365d_after_sweep", "rows_overdue_today",
        "rows_due_7d_from_today", "rows_due_30d_from_today", "rows_due_365d_from_today"]
    assert {t for c, t in columns(con, "v_retention_due") if c.startswith("rows_")} == {"BIGINT"}
    # Kept rows due 7, 8, 30, 31, 365 and 366 days after the sweep: "within N days" includes day N.
    due = {7: 10, 8: 20, 30: 40, 31: 80, 365: 160, 366: 320}
    insert(con, sweep_rows(
        *((SWEEP, f"event_date=2025-01-{i + 1:02d}", "kept", n, SWEEP + timedelta(days=d))
          for i, (d, n) in enumerate(due.items())),
        (SWEEP, "event_date=2025-02-01", "deleted", 1000, SWEEP),                           # not kept
        (SWEEP + timedelta(days=10), "event_date=2025-03-01", "kept", 2000, SWEEP, True),    # a later dry run
    ))
    (got,) = rows(con, "SELECT * FROM v_retention_due")
    def due_by(day: date) -> int:
        return sum(n for d, n in due.items() if SWEEP + timedelta(days=d) <= day)

    today = utc_today()
    expected = {
        "as_of": SWEEP, "partitions": 6, "rows_kept": 630, "next_due_on": SWEEP + timedelta(days=7),
        "rows_due_7d_after_sweep": 10, "rows_due_30d_after_sweep": 10 + 20 + 40,
        "rows_due_365d_after_sweep": 10 + 20 + 40 + 80 + 160,
        "rows_overdue_today": due_by(today),
        **{f"rows_due_{h}d_from_today": due_by(today + timedelta(days=h)) for h in (7, 30, 365)},
    }
    named = dict(zip([c for c, _ in columns(con, "v_retention_due")], got))
    assert {k: named[k] for k in expected} == expected


def test_view_sql_of_the_horizons_leaves_no_marker(policy):
    sql = view_sql("v_retention_due", policy)
    assert "/*" not in sql
    assert sql.count("AS rows_due_") == 2 * len(policy.reporting.retention_due_within_days)
    for name in VIEW_NAMES:
        if name not in ("v_retention_due", "v_subject_requests"):
            assert view_sql(name, policy) == (SQL_DIR / f"{name}.sql").read_text()


def test_active_holds_show_key_ids_never_tokens(vcon):
    insert(vcon, [
        LegalHold(hold_id="H-000000000001", reason="dispute", placed_by="dpo", placed_at=AT,
                  subject_kind="subscriber", subject_tokens='{"k2": "' + "b" * 64 + '", "k1": "' + "c" * 64 + '"}'),
        LegalHold(hold_id="H-000000000002", reason="old", placed_by="dpo", placed_at=AT, dataset="billing",
                  released_by="dpo", released_at=AT, release_reason="settled"),
    ])
    got = rows(vcon, "SELECT * FROM v_legal_holds_active")
    assert [(r[0], r[8]) for r in got] == [("H-000000000001", "k1,k2")]
    assert "b" * 64 not in repr(got)
    assert rows(vcon, "SELECT days_active FROM v_legal_holds_active") == [((utc_today() - AT.date()).days,)]


def test_audit_chain_view_spots_a_broken_link(vcon):
    append_log(vcon, [LogEvent(f"e{i}", "pipeline", "x", "t", {"n": i}) for i in range(1, 5)], at=AT)
    assert rows(vcon, "SELECT entries, last_seq, links_ok, first_bad_seq FROM v_audit_chain") == [(4, 4, True, None)]
    vcon.execute("UPDATE audit_log SET prev_hash = ? WHERE seq = 3", ["f" * 64])
    assert rows(vcon, "SELECT links_ok, first_bad_seq FROM v_audit_chain") == [(False, 3)]


def test_a_read_only_reader_of_an_older_store_sees_the_added_columns_as_null(lake, policy):
    # A store written before source_files had its row account and lateness columns, opened read-only (as the
    # report and `cdr-audit summary` do): the views still answer, the missing figures NULL / 0.
    from tests.transforms.audit_store.test_store import _old_store
    from transforms.audit_store import reading

    _old_store(lake)
    with reading(lake) as c:
        with pytest.raises(duckdb.BinderException):                  # the table itself lacks them
            c.execute("SELECT rows_failing FROM source_files")
        define_views(c, lake, policy, temp=True)
        assert rows(c, "SELECT file_name, rows_failing, rows_before_lateness_window FROM source_files") == [
            ("old.csv", None, None)]
        assert rows(c, "SELECT file_name, status, rows_rejected, main_reason FROM v_night_files") == [
            ("old.csv", "loaded", 3, None)]
        assert rows(c, "SELECT rows_quarantined, rows_refused, rows_before_lateness_window, lateness_window_days"
                       " FROM v_nightly_volumes") == [(3, 0, 0, None)]


def test_a_read_only_reader_of_a_store_without_zone_permissions_sees_no_check(lake, policy):
    # A store written before zone_permissions existed, opened read-only (the report, `cdr-audit summary`):
    # the table is stood in for, empty, and v_zone_permissions answers with no rows.
    from tests.transforms.audit_store.test_store import _old_store
    from transforms.audit_store import reading

    _old_store(lake)
    old = duckdb.connect(str(lake.audit_db))
    old.execute("DROP TABLE zone_permissions")
    old.close()
    with reading(lake) as c:
        define_views(c, lake, policy, temp=True)
        assert rows(c, "SELECT count(*) FROM v_zone_permissions") == [(0,)]


def test_zone_permissions_view_shows_the_latest_check(vcon):
    from datetime import timedelta

    from transforms.audit_store import insert
    from transforms.audit_store.tables import ZonePermission

    def row(run_id, zone, at, open_=0, allowed=False):
        return ZonePermission(run_id=run_id, zone=zone, access="owner", group_role=None, unix_group=None,
                              group_on_host=None, dir_mode="0700", file_mode="0600", entries_checked=5,
                              entries_open=open_, entries_other_group=None, allowed_open=allowed, clause="§4",
                              checked_at=at)
    insert(vcon, [row("r1", "billing", AT, 3, True), row("r1", "quarantine", AT),
                  row("r2", "billing", AT + timedelta(hours=1)), row("r2", "lake_root", AT + timedelta(hours=1))])
    assert rows(vcon, "SELECT run_id, zone, entries_open, allowed_open, as_declared FROM v_zone_permissions") == [
        ("r2", "lake_root", 0, False, True), ("r2", "billing", 0, False, True)]


def test_aggregate_releases_per_release_and_table_from_the_run_that_made_it(vcon):
    def release(run_id, table, cells, released, events, events_released, number=1, kind="day"):
        return AggregateRelease(run_id=run_id, event_date=date(2026, 11, 22), dataset="aggregates", k=10,
                                groups_total=cells, groups_released=released, groups_suppressed_primary=cells - released,
                                groups_suppressed_secondary=0, rows_suppressed=events - events_released,
                                release_table=table, clause="§3.3", other_cells_released=1, events=events,
                                events_released=events_released, share_events_released=events_released / events,
                                release_kind=kind, release_number=number, parts=2, rows_aggregated=events,
                                late_rows_pending=0, window_closes_on=date(2026, 11, 25))
    night, later = date(2026, 11, 25), date(2026, 11, 27)
    _run(vcon, "r1", night, datetime(2026, 11, 26, 1, tzinfo=timezone.utc), [("a.csv", "loaded", 10, 10, 0)])
    _run(vcon, "r2", night, datetime(2026, 11, 26, 2, tzinfo=timezone.utc), [("b.csv", "loaded", 10, 10, 0)])
    _run(vcon, "r3", later, datetime(2026, 11, 28, 1, tzinfo=timezone.utc), [("c.csv", "loaded", 10, 10, 0)])
    insert(vcon, [release("r1", "day_service", 5, 5, 120, 120), release("r1", "hour_area_service", 40, 25, 120, 78)])
    # A row the same release already has (a release is made once: the first run's row is the one shown).
    insert(vcon, [release("r2", "day_service", 5, 4, 130, 90)])
    insert(vcon, [release("r3", "day_service", 2, 1, 30, 20, number=2, kind="late")])
    # A row recorded before releases were numbered stays in the table only.
    insert(vcon, [AggregateRelease(run_id="r0", event_date=date(2026, 11, 21), dataset="aggregates", k=10,
                                   groups_total=9, groups_released=1, groups_suppressed_primary=8,
                                   groups_suppressed_secondary=0, rows_suppressed=50)])
    _run(vcon, "r0", date(2026, 11, 21), datetime(2026, 11, 22, 1, tzinfo=timezone.utc), [])
    assert rows(vcon, "SELECT night, run_id, release_number, release_kind, release_table, cells, cells_released,"
                      " events_released, share_events_released FROM v_aggregate_releases") == [
        (night, "r1", 1, "day", "day_service", 5, 5, 120, 1.0),
        (night, "r1", 1, "day", "hour_area_service", 40, 25, 78, 0.65),
        (later, "r3", 2, "late", "day_service", 2, 1, 20, 20 / 30)]
    assert rows(vcon, "SELECT aggregate_groups_released FROM v_nightly_volumes WHERE night = ?", [later]) == [(1,)]
