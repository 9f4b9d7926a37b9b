"""Retention of the consent register (policy `consent_register`; §3.4 ¶3, §5; docs/design.md §3, §11).

Worked out from the rule, not from a run: the event that stands is kept while it stands; an event a later
one of the same subscriber and purpose superseded is kept as the proof of consent (GDPR Art. 7(1)) for the
category's `keep` (P5Y) after the day it was superseded, through the last day, and is due the next.
"""

from __future__ import annotations

import duckdb

from tests.transforms.retention.conftest import KEYRING, run_sweep
from transforms.retention import holds
from transforms.steps.consents import CONSENT_COLUMNS, load_consents

WITHDREW = "+38640700001"    # granted June 2025, withdrew on 10 March 2026
STANDS = "+38640700002"      # granted in 2019, never changed
DISPUTED = "+38640700003"    # granted and withdrew in 2020, under a legal hold
HEADER = ",".join(CONSENT_COLUMNS) + "\n"


def land(tmp_path, lake, policy, night: str, rows: list[str]) -> None:
    path = tmp_path / f"consents_{night}.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    result = load_consents(path, policy, lake, tmp_path / f"work-{night}", night=night, run_id=f"r-{night}")
    assert (result.rows_loaded, result.rows_quarantined) == (len(rows), 0)


def events(lake) -> list[tuple]:
    files = [str(p) for p in lake.zone("consents").rglob("*.parquet")]
    if not files:
        return []
    return duckdb.execute("SELECT subscriber_number, status, CAST(recorded_at AS DATE)::VARCHAR, count(*)"
                          " FROM read_parquet(?) GROUP BY ALL ORDER BY ALL", [files]).fetchall()


def test_the_register_keeps_what_stands_and_proof_of_what_was_superseded_for_five_years(tmp_path, lake, policy):
    rule = policy.retention_of("consents")
    assert (rule.category, rule.anchor, rule.action, str(rule.keep)) == ("consent_register", "consent_superseded",
                                                                         "delete", "P5Y")
    # The withdrawal's extract lands before the grant's (out of order), and a later extract repeats it.
    withdrawal = f"{WITHDREW},marketing_profiling,withdrawn,2026-03-10T08:00:00Z,email"
    land(tmp_path, lake, policy, "2026-03-10", [withdrawal])
    land(tmp_path, lake, policy, "2026-03-11", [
        f"{WITHDREW},marketing_profiling,granted,2025-06-01T10:00:00Z,self_care_app",
        f"{STANDS},value_added_services,granted,2019-05-01T09:00:00Z,point_of_sale",
        f"{DISPUTED},partner_offers,granted,2020-01-01T12:00:00Z,contact_centre",
        f"{DISPUTED},partner_offers,withdrawn,2020-02-01T12:00:00Z,contact_centre"])
    land(tmp_path, lake, policy, "2026-03-12", [withdrawal.replace(WITHDREW, "040 700 001")])   # spelt nationally
    hold = holds.place(lake, policy, KEYRING, reason="complaint about partner offers", placed_by="dpo",
                       subscriber=DISPUTED)
    everything = [(WITHDREW, "granted", "2025-06-01", 1), (WITHDREW, "withdrawn", "2026-03-10", 2),
                  (STANDS, "granted", "2019-05-01", 1),
                  (DISPUTED, "granted", "2020-01-01", 1), (DISPUTED, "withdrawn", "2020-02-01", 1)]
    assert events(lake) == everything
    # DISPUTED's grant was superseded on 1 Feb 2020: due 2 Feb 2025, but the hold keeps it.
    result = run_sweep(lake, policy, "2025-02-02")
    assert events(lake) == everything
    assert [(a.action, a.rows, a.due_on, a.hold_ids) for a in result.actions
            if a.dataset == "consents" and a.action == "held"] == [("held", 1, "2025-02-02", hold.hold_id)]
    # WITHDREW's grant, superseded on 10 March 2026, is kept through 10 March 2031 ...
    run_sweep(lake, policy, "2031-03-10")
    assert events(lake) == everything
    # ... and deleted on 11 March 2031. Every withdrawal and the 2019 grant stand: never due.
    result = run_sweep(lake, policy, "2031-03-11")
    assert events(lake) == [e for e in everything if e[:2] != (WITHDREW, "granted")]
    deleted = [a for a in result.actions if a.dataset == "consents" and a.action == "deleted"]
    assert [(a.partition, a.rows, a.due_on, a.category) for a in deleted] == [
        ("recorded_month=2025-06", 1, "2031-03-11", "consent_register")]
    kept = [a for a in result.actions if a.dataset == "consents" and a.action == "kept"]
    assert sum(a.rows for a in kept) == 4 and all(a.due_on is None for a in kept)   # standing: no due date
    assert [p.ok for p in result.proofs if p.dataset == "consents"] == [True]
    # Released, the hold keeps nothing: the 2020 grant goes; what stands stays, decades on.
    holds.release(lake, policy, hold.hold_id, released_by="dpo", reason="complaint closed")
    run_sweep(lake, policy, "2060-01-01")
    assert events(lake) == [(WITHDREW, "withdrawn", "2026-03-10", 2), (STANDS, "granted", "2019-05-01", 1),
                            (DISPUTED, "withdrawn", "2020-02-01", 1)]


def test_a_grant_and_a_withdrawal_at_one_instant_the_grant_is_superseded(tmp_path, lake, policy):
    # define_standing lets the withdrawal stand; so the sweep treats the grant as superseded that day.
    land(tmp_path, lake, policy, "2026-03-10", [
        f"{WITHDREW},marketing_contact,granted,2026-03-10T08:00:00Z,email"])
    land(tmp_path, lake, policy, "2026-03-11", [
        f"{WITHDREW},marketing_contact,withdrawn,2026-03-10T08:00:00Z,contact_centre"])
    run_sweep(lake, policy, "2031-03-10")
    assert len(events(lake)) == 2
    run_sweep(lake, policy, "2031-03-11")
    assert events(lake) == [(WITHDREW, "withdrawn", "2026-03-10", 1)]
