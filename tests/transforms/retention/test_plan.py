"""transforms/retention/plan.py: from every row's due date and holds, the files to rewrite and the actions.

Expected figures are worked out from the golden lake (conftest) and the law, as in test_due.py: on
1 April 2027 the March 2026 calls of the paid invoice (due 21 April 2026), of the open consumer invoice,
of the disputed one and of the subscriber without invoice (all due 1 April 2027) go; the business claim
stays until 1 April 2029. The leap-day call went on 1 March 2025.
"""

from __future__ import annotations

from datetime import date

from tests.transforms.retention.conftest import BUSINESS, DISPUTED, KEYRING
from transforms.lake.connection import connect
from transforms.retention import holds
from transforms.retention.catalog import check_catalog
from transforms.retention.plan import plan_sweep


def _plan(lake, policy, day: str):
    con = connect()
    plan = plan_sweep(con, lake, policy, KEYRING, check_catalog(lake, policy), holds.list_holds(lake, active_only=True),
                      date.fromisoformat(day), lambda _m: None)
    return con, plan


def test_billing_jobs_and_actions_of_a_day(golden_lake, policy):
    con, plan = _plan(golden_lake, policy, "2027-04-01")
    billing = sorted((j.partition, j.action, j.rows_before, j.rows_removed, j.due_on)
                     for j in plan.jobs if j.dataset == "billing")
    assert billing == [("event_date=2024-02-29", "anonymized", 1, 1, "2025-03-01"),
                       ("event_date=2026-03-14", "anonymized", 6, 5, "2026-04-21")]
    kept = [(a.partition, a.rows, a.due_on) for a in plan.actions if a.dataset == "billing" and a.action == "kept"]
    assert kept == [("event_date=2026-03-14", 1, "2029-04-01")]
    # The rewrite reads the keys to remove from `removal`: every served number of the March file but one.
    keys = {k for (k,) in con.execute("SELECT key FROM removal WHERE file LIKE 'billing/event_date=2026-03-14/%'")
            .fetchall()}
    assert len(keys) == 4 and BUSINESS not in keys
    con.close()


def test_a_held_key_is_not_a_job(golden_lake, policy):
    hold = holds.place(golden_lake, policy, KEYRING, reason="dispute INV-4", placed_by="billing-ops",
                       subscriber=DISPUTED)
    con, plan = _plan(golden_lake, policy, "2027-04-01")
    march = next(j for j in plan.jobs if j.dataset == "billing" and j.partition == "event_date=2026-03-14")
    assert (march.rows_before, march.rows_removed) == (6, 4)
    held = [(a.dataset, a.rows, a.hold_ids) for a in plan.actions if a.action == "held"]
    assert sorted(held) == [("analytics", 1, hold.hold_id), ("billing", 1, hold.hold_id)]
    assert DISPUTED not in {k for (k,) in con.execute("SELECT key FROM removal").fetchall()}
    con.close()
