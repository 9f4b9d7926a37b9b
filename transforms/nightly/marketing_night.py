"""The night's marketing step: rebuild the marketing profiles of every event date tonight's files touched.

Each day is rebuilt whole from billing and the consent register as known at the end of the night
(`transforms.marketing.profiles`), so a late file updates its day, a re-run gives the same files, and a
subscriber who withdrew is gone from every day the night rebuilds (policy §3.4 ¶3, ¶5; docs/design.md §11).
Days tonight did not touch keep their rows until the retention sweep's due date (`consent_marketing`).
"""

from __future__ import annotations

from datetime import date

from transforms.audit_store.tables import MarketingProfile
from transforms.lake import Lake
from transforms.marketing.profiles import MarketingProfilesResult, build_profiles
from transforms.nightly.facts import MARKETING, analytics_event_dates, write_night_rows
from transforms.nightly.plan import load_plan
from transforms.policy import Policy
from transforms.privacy.keys import KeyRing
from transforms.privacy.restricted import MARKETING as MARKETING_ZONE
from transforms.privacy.restricted import read_restricted, write_skipped


def marketing_night(lake: Lake, policy: Policy, keyring: KeyRing, *, run_id: str) -> MarketingProfilesResult:
    """Rebuild tonight's marketing days; leave their `marketing_profiles` rows."""
    plan = load_plan(lake, run_id)
    built = build_profiles(lake, policy, keyring, analytics_event_dates(lake, run_id),
                           date.fromisoformat(plan.night), lake.work_dir(run_id) / "marketing",
                           read_restricted(lake, run_id))
    write_skipped(lake, run_id, MARKETING_ZONE, {MARKETING_ZONE: built.rows_restricted},
                  cells_blanked={MARKETING_ZONE: built.cells_blanked})
    write_night_rows(lake, run_id, MARKETING, tuple(MarketingProfile(
        run_id=run_id, event_date=date.fromisoformat(d.event_date), purpose=built.purpose,
        billing_rows=d.billing_rows, rows_profiled=d.rows_profiled, subscribers=d.subscribers,
        called_named=d.called_named, called_counted=d.called_counted, rows_removed=d.rows_removed,
        consents_standing=built.consents_standing, key_id=built.key_id, path=d.path) for d in built.days))
    return built
