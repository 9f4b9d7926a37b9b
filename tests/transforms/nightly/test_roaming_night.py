"""transforms/nightly/roaming_night.py: tonight's months rebuilt, the window before tonight's month assessed."""

from __future__ import annotations

from tests.transforms.nightly.conftest import CSV
from transforms.audit_store.tables import RoamingRun
from transforms.lake import Lake
from transforms.nightly.audit_file import audit_file
from transforms.nightly.facts import ROAMING, read_night_rows
from transforms.nightly.plan import plan_night
from transforms.nightly.roaming_night import roaming_night
from transforms.privacy.keys import demo_keyring

HEADER = CSV.rstrip(b"\n") + b",imsi,origin_network\n"


def test_months_rebuilt_and_the_previous_month_assessed(landing, tmp_path, policy, formats):
    rows = (b"+38640111222,+38641333444,outgoing,2026-11-21T10:00:00Z,60,call,293401234567890,29340\n"
            b"+38640111222,+38641333444,outgoing,2026-10-30T10:00:00Z,60,call,293401234567890,20801\n")
    (landing / "a.csv").write_bytes(HEADER + rows)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    audit_file(plan.to_audit[0], lake, policy, formats, run_id="r1", night="2026-11-22", keyring=demo_keyring())

    night = roaming_night(lake, policy, demo_keyring(), run_id="r1")
    assert [m.month for m in night.months.months] == ["2026-10", "2026-11"]
    # The window ends with October, the last complete month; the subscriber's history starts inside it.
    assert (night.window.as_of_month, night.window.subscribers, night.window.insufficient_history) == ("2026-10", 1, 1)
    recorded = read_night_rows(lake, "r1", ROAMING, RoamingRun)
    assert [(r.month, r.kind, r.subscribers) for r in recorded] == [
        ("2026-10", "month", 1), ("2026-11", "month", 1), ("2026-10", "window", 1)]
    assert all(r.path and (lake.root / r.path).is_file() for r in recorded)


def test_a_night_with_no_roaming_history_writes_no_status_file(landing, tmp_path, policy):
    lake = Lake.at(tmp_path / "lake")
    plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    night = roaming_night(lake, policy, demo_keyring(), run_id="r1")
    assert night.months is None and night.window.subscribers == 0 and night.window.path is None
    (window,) = read_night_rows(lake, "r1", ROAMING, RoamingRun)
    assert (window.kind, window.subscribers, window.path) == ("window", 0, None)
    assert not list(lake.zone("roaming").rglob("*.parquet"))
