"""transforms/report/queries.py: the report's figures from the views, by the policy's horizons."""

from __future__ import annotations

from datetime import date

from tests.transforms.policy.conftest import load_edited
from transforms.audit_store import connect, insert
from transforms.audit_store.tables import RetentionActionRow
from transforms.audit_store.views import define_views
from transforms.report.queries import due_rows, gather, in_words

AS_OF = date(2027, 4, 1)


def _kept(dataset: str, rows: int, due: date) -> RetentionActionRow:
    return RetentionActionRow(run_id="retention-2027-04-01", as_of=AS_OF, dataset=dataset, partition=f"p={due}",
                              category="billing_cdr", action="kept", rows=rows, due_on=due, legal_basis="b",
                              clause="§5", hold_ids=None, files=1, dry_run=False)


def test_rows_due_within_each_horizon_of_the_sweep(lake, tmp_path):
    policy = load_edited(tmp_path, lambda d: d["reporting"].update(retention_due_within_days=[7, 30, 365]))
    con = connect(lake)
    try:
        # Due 3, 20, 200 and 1,000 days after the sweep.
        insert(con, [_kept("billing", 1, date(2027, 4, 4)), _kept("billing", 10, date(2027, 4, 21)),
                     _kept("billing", 100, date(2027, 10, 18)), _kept("billing", 1000, date(2029, 12, 27))])
        define_views(con, lake, policy)
        (due,) = due_rows(con, policy.reporting.retention_due_within_days)
    finally:
        con.close()
    assert (due.dataset, due.kept, due.after_sweep, due.next_due_on) == ("billing", 1111, (1, 11, 111),
                                                                         date(2027, 4, 4))
    assert len(due.from_today) == 3


def test_no_run_means_nothing_else_is_gathered(lake, policy):
    con = connect(lake)
    try:
        define_views(con, lake, policy)
        assert set(gather(con, policy)) == {"run", "generated_at", "horizons", "warning", "sources_missing"}
    finally:
        con.close()


def test_horizons_in_words():
    assert in_words((30, 90)) == "30 and 90" and in_words((7, 30, 365)) == "7, 30 and 365" and in_words((9,)) == "9"


def test_file_outcomes_keep_refused_rows_out_of_quarantine_and_name_the_main_reason():
    from transforms.report.queries import file_outcomes

    rows = [  # file, status, profile, read, loaded, not loaded, reason, main reason, its rows, late, after
        ("a.csv", "loaded", "canonical_csv", 100, 96, 4, "", "duplicate_row", 3, 5, 1),
        ("b.csv", "quarantined", "canonical_csv", 20, 0, 20, "", "unparseable: invalid encoding", 20, 0, 0),
        ("c.csv", "rejected_file", "-", 30, 0, 30, "no known source format", "no known source format", 30, None, None),
        ("d.csv", "duplicate_file", "-", 100, 0, 100, "byte-identical to a.csv", "duplicate_file", 100, None, None),
        ("e.csv", "empty", "-", 0, 0, 0, "file is empty (0 bytes)", None, None, None, None),
        ("f.csv", "loaded", "canonical_csv", 9, 9, 0, "", None, None, 0, 0),
    ]
    a, b, c, d, e, f = file_outcomes(rows, 7)
    assert (a.outcome, a.rows_quarantined, a.why) == ("loaded", 4, "main reason: duplicate_row (3 of 4 quarantined)")
    assert a.lateness == "5 rows dated more than 7 day(s) before the night, 1 after it"
    assert (b.outcome, b.rows_quarantined, b.why) == (
        "quarantined", 20, "main reason: unparseable: invalid encoding (20 of 20 quarantined)")
    assert (c.outcome, c.rows_quarantined, c.why) == ("refused whole", None, "nothing kept: no known source format")
    assert (d.outcome, d.rows_quarantined, d.why) == ("refused whole", None, "nothing kept: byte-identical to a.csv")
    assert (e.outcome, e.rows_quarantined, e.why, e.lateness) == ("empty", None, "file is empty (0 bytes)", "")
    assert (f.why, f.lateness) == ("", "")


def test_roaming_words_and_the_headline_is_the_last_runs_window():
    from transforms.report.queries import roaming_headline, roaming_window_words, roaming_windows

    assert roaming_window_words("2026-10", 4, {"flagged": 2, "not_flagged": 1}) == (
        "window 2026-07…2026-10: 2 flagged, 1 not flagged, 0 insufficient history")
    assert roaming_window_words("2026-02", 4, {}).startswith("window 2025-11…2026-02: ")
    windows = roaming_windows([("2026-09", "r1", 3, 1, 2, 0), ("2026-10", "r2", 0, 0, 0, 0),
                               ("2026-11", "r0", 7, 7, 0, 0)], "r2", 4)
    # The last run (r2) assessed 2026-10 with nobody in it: that is the headline, not a newer or fuller window.
    head = roaming_headline(windows)
    assert (head.as_of_month, head.subscribers, head.by_last_run) == ("2026-10", 0, True)
    assert head.words == "window 2026-07…2026-10: 0 flagged, 0 not flagged, 0 insufficient history"
    assert roaming_headline(roaming_windows([("2026-09", "r1", 3, 1, 2, 0)], "r9", 4)).as_of_month == "2026-09"
    assert roaming_headline([]) is None


def test_permissions_in_words():
    from datetime import datetime, timezone

    from transforms.report.queries import ZoneAccessRow, permissions_words

    at = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)

    def zone(name, access, open_=0, on_host=None, role="", group=""):
        return ZoneAccessRow(name, access, role, group, on_host, "0700", "0600", 10, open_, bool(open_), at, "r1")

    assert permissions_words([]) == "no permissions check recorded yet"
    fine = [zone("lake_root", "traverse"), zone("billing", "owner"),
            zone("audit", "group", on_host=False, role="compliance", group="cdr-compliance")]
    assert permissions_words(fine).startswith("every zone as the policy's access declares, 30 entries (checked"
                                              " 2026-11-23 02:30 UTC by r1)")
    assert fine[0].readers == "anyone may pass through, nobody may list"
    assert fine[1].readers == "the pipeline's account only"
    assert fine[2].readers == "compliance: Unix group cdr-compliance (not on this host: the pipeline account's group)"
    opened = [zone("billing", "owner", open_=4)]
    assert permissions_words(opened).startswith("billing 4 of 10 entries open — the run went on as told")
