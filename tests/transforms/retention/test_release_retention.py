"""transforms/retention/release_retention.py: when the policy gives aggregate releases a category, the sweep
deletes a day's releases whole once due, journaled and proven gone; the day is never released again.

By default releases are anonymous (policy anonymous_datasets: §3.2 says anonymized traffic data is no
longer personal data, §5 sets periods for personal data only); these tests declare a category, as an
operator may: kept two years from the event date (P2Y), deleted the day after.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from tests.transforms.policy.conftest import load_edited
from tests.transforms.privacy.test_releases import add_part, people
from transforms.lake import Lake
from transforms.policy.period import PolicyError
from transforms.privacy.releases import RETIRED, release_night
from transforms.retention.journal import Journal
from transforms.retention.proof import prove
from transforms.retention.release_retention import delete_releases, plan_releases
from transforms.retention.holds import Hold

D = "2026-11-10"


def with_category(doc: dict, **rule) -> None:
    # The list may not be empty: another (made-up) anonymous data set stays in it.
    doc["anonymous_datasets"] = [{"dataset": "network_kpis", "clause": "§3.3"}]
    doc["retention"].append({"category": "aggregate_release", "datasets": ["aggregates"], "keep": "P2Y",
                             "anchor": "event_date", "action": "delete", "legal_basis": "operator setting",
                             "clause": "§3.3 ¶1", **rule})


@pytest.fixture()
def released(tmp_path, policy) -> Lake:
    lake = Lake.at(tmp_path / "lake")
    add_part(lake, "a", people(0, 12))
    release_night(lake, policy, date(2026, 11, 13), run_id="n1")
    add_part(lake, "b", people(20, 11))
    release_night(lake, policy, date(2026, 11, 14), run_id="n2")        # a late release too
    return lake


def hold(**scope) -> Hold:
    return Hold(hold_id="H-0123456789ab", reason="dispute", placed_by="dpo", placed_at=None, released_at=None,
                released_by=None, subject_tokens=None, **{"dataset": None, "date_from": None, "date_to": None,
                                                          "subject_kind": None, **scope})


def test_a_category_for_releases_must_count_from_the_event_date_and_delete(tmp_path):
    assert load_edited(tmp_path, with_category).retention_of("aggregates").anchor == "event_date"
    with pytest.raises(PolicyError, match="covers aggregates, whose releases are deleted whole per day"):
        load_edited(tmp_path, lambda d: with_category(d, anchor="request_date"))


def test_releases_are_kept_until_due_then_deleted_whole_proven_and_never_released_again(released, tmp_path,
                                                                                      policy):
    rule = load_edited(tmp_path, with_category).retention_of("aggregates")
    # Kept through 10 Nov 2028 (P2Y from the event date), due on 11 Nov 2028.
    (kept,) = plan_releases(released, rule, [], date(2028, 11, 10))
    assert (kept.action, kept.due_on, kept.partition) == ("kept", "2028-11-11", f"event_date={D}")
    (due,) = plan_releases(released, rule, [], date(2028, 11, 11))
    assert (due.action, due.files) == ("deleted", 2 * (len(policy.release_tables) + 1))   # per release: its tables and manifest

    journal = Journal(tmp_path / "journal.json", released.root)
    delete_releases(released, [due], journal, lambda _m: None)
    folder = released.zone("aggregates") / f"event_date={D}"
    assert [p.name for p in folder.iterdir()] == [RETIRED]
    con = duckdb.connect()
    proofs = [prove(con, released, policy, e) for e in journal.done()]
    assert len(proofs) == due.files and all(p.ok and p.outcome == "removed" for p in proofs)
    assert sum(p.rows_removed for p in proofs) == due.rows > 0

    # The analytics rows are still there (their own category), and a late part arrives: the day stays closed.
    add_part(released, "c", people(40, 12))
    night = release_night(released, policy, date(2028, 11, 12), run_id="n3")
    assert night.released == () and night.waiting == () and night.already_released == 1
    assert [p.name for p in folder.iterdir()] == [RETIRED]


def test_a_hold_on_the_releases_or_every_data_set_keeps_them(released, tmp_path):
    rule = load_edited(tmp_path, with_category).retention_of("aggregates")
    late = date(2029, 1, 1)
    for scope in ({}, {"dataset": "aggregates"}, {"date_from": date(2026, 11, 1), "date_to": date(2026, 11, 30)}):
        (a,) = plan_releases(released, rule, [hold(**scope)], late)
        assert (a.action, a.hold_ids) == ("held", "H-0123456789ab"), scope
    for scope in ({"dataset": "billing"}, {"date_from": date(2026, 11, 11)}):
        (a,) = plan_releases(released, rule, [hold(**scope)], late)
        assert a.action == "deleted", scope
