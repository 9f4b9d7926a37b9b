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
        assert set(gather(con, policy)) == {"run", "generated_at", "horizons"}
    finally:
        con.close()


def test_horizons_in_words():
    assert in_words((30, 90)) == "30 and 90" and in_words((7, 30, 365)) == "7, 30 and 365" and in_words((9,)) == "9"
