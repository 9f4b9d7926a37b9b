"""transforms/nightly/marketing_night.py: tonight's event dates rebuilt on consent, their counts left for the close."""

from __future__ import annotations

from datetime import datetime

from tests.transforms.marketing.conftest import land_consents
from tests.transforms.nightly.conftest import CSV
from transforms.audit_store.tables import MarketingProfile
from transforms.entry.console import marketing_line
from transforms.lake import Lake
from transforms.nightly.audit_file import audit_file
from transforms.nightly.facts import MARKETING, read_night_rows
from transforms.nightly.marketing_night import marketing_night
from transforms.nightly.plan import plan_night
from transforms.privacy.keys import demo_keyring

A, B, C = "+38640111222", "+38641333444", "+38641555666"


def test_tonights_days_rebuilt_for_the_consenting_only(landing, tmp_path, policy, formats):
    rows = (f"{A},{B},outgoing,2026-11-21T10:00:00Z,60,call\n{A},{C},outgoing,2026-11-20T10:00:00Z,30,call\n"
            f"{C},{A},outgoing,2026-11-21T11:00:00Z,30,call\n").encode()
    (landing / "a.csv").write_bytes(CSV + rows)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    audit_file(plan.to_audit[0], lake, policy, formats, run_id="r1", night="2026-11-22", keyring=demo_keyring())
    land_consents(lake, "a", [(A, "granted", datetime(2026, 11, 1)), (B, "granted", datetime(2026, 11, 1))])

    built = marketing_night(lake, policy, demo_keyring(), run_id="r1")
    recorded = read_night_rows(lake, "r1", MARKETING, MarketingProfile)
    assert [(str(r.event_date), r.subscribers, r.called_named, r.called_counted, r.rows_removed) for r in recorded] == [
        ("2026-11-20", 1, 0, 1, 0), ("2026-11-21", 1, 1, 0, 0)]     # B made no call: named in A's row only
    assert all(r.purpose == "marketing_profiling" and r.consents_standing == 2 and (lake.root / r.path).is_file()
               for r in recorded)
    assert marketing_line(built).startswith("marketing: 2 day(s) rebuilt, 2 profile(s) of 2 subscriber(s) whose"
                                            " consent stands; called parties 1 named, 1 counted; 0 row(s) removed")
