"""The night's roaming step: rebuild the months tonight's files touched, then assess the fair-use window.

Each touched month is recomputed whole from billing, so a late file for an earlier month updates that
month and a re-run gives the same files. The window assessed ends with the last complete month before
the night's (the night's own month is still running). docs/design.md §5.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.audit_store.tables import RoamingRun
from transforms.lake import Lake
from transforms.nightly.facts import ROAMING, analytics_event_dates, write_night_rows
from transforms.nightly.plan import load_plan
from transforms.policy import Policy
from transforms.privacy.keys import KeyRing
from transforms.privacy.restricted import ROAMING as ROAMING_ZONE
from transforms.privacy.restricted import read_restricted, write_skipped
from transforms.roaming.months import RoamingMonthsResult, build_months
from transforms.roaming.periods import affected_months, shift_month
from transforms.roaming.window import RoamingWindowResult, assess_window


@dataclass(frozen=True)
class RoamingNight:
    """What the night's roaming step did: months rebuilt (None: no month touched) and the window."""

    months: RoamingMonthsResult | None
    window: RoamingWindowResult


def roaming_night(lake: Lake, policy: Policy, keyring: KeyRing, *, run_id: str) -> RoamingNight:
    """Rebuild tonight's roaming months and assess the window; leave their `roaming_runs` rows."""
    plan = load_plan(lake, run_id)
    months = affected_months(analytics_event_dates(lake, run_id))
    built = build_months(lake, policy, keyring, months, lake.work_dir(run_id) / "roaming",
                         read_restricted(lake, run_id)) if months else None
    write_skipped(lake, run_id, ROAMING_ZONE, {ROAMING_ZONE: built.rows_restricted if built else 0})
    window = assess_window(lake, policy, shift_month(plan.night[:7], -1), lake.work_dir(run_id) / "roaming-window")
    rows = [RoamingRun(run_id=run_id, month=m.month, kind="month", rows_read=m.rows_read,
                       rows_counted=m.rows_counted, rows_without_imsi=m.rows_without_imsi,
                       rows_unclassified=m.rows_unclassified, subscribers=m.subscribers, key_ids=built.key_id,
                       path=m.path) for m in (built.months if built else ())]
    rows.append(RoamingRun(run_id=run_id, month=window.as_of_month, kind="window", subscribers=window.subscribers,
                           flagged=window.flagged, not_flagged=window.not_flagged,
                           insufficient_history=window.insufficient_history,
                           long_inactivity=window.long_inactivity, key_ids=",".join(window.key_ids) or None,
                           path=window.path))
    write_night_rows(lake, run_id, ROAMING, tuple(rows))
    return RoamingNight(built, window)
