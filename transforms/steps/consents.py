"""Consents step — the consent system's extract → the consent register, `consents/recorded_month=…/`.

Policy §3.4: traffic and location data serve marketing and value-added services only on consent, given per
purpose through a channel, and the latest consent received counts (docs/design.md §11). The operator's
consent system sends an extract of consent events (`consents_*.csv`): one row per grant or withdrawal, with
when it was recorded. Extracts overlap and may arrive out of order; the register keeps every event and
`transforms.consents.register.define_standing` decides which one stands by `recorded_at`, never by landing
order. Not a CDR file: no field check, no CDR suite, no analytics.

It is a fixed-header extract (`steps/extract.py` reads, checks, quarantines and commits it); this module
declares what is its own. `recorded_at` is ISO-8601: with `Z` or an offset (`+01:00`) as written, without
one in the operator's time zone (policy `operator.local_timezone`, where the consent system records); it is
stored as UTC. An event recorded after the end of the night (UTC, as `define_standing` reads days) cannot
have been received yet: `recorded_after_night`. A row with the channel of the withdrawals an answer to a
request records (`consent.request_channel`) is not the consent system's: `channel_request_only`. The same
subscriber, purpose and instant twice in one file is a duplicate (the first stays): one instant can hold one
event, and a second is a conflict the file itself cannot settle.
"""

from __future__ import annotations

import re
from pathlib import Path

from transforms.consents.register import PARTITION, STATUSES, ZONE
from transforms.lake import Lake
from transforms.policy import Policy
from transforms.privacy.numbers import e164_sql
from transforms.steps.extract import Extract, ExtractResult, load_extract, not_e164
from transforms.steps.lines import FileShape

# Not a CDR format: the consent system's extract of consent events. It goes through this step (consents
# zone), never the CDR steps, so it has no source format.
CONSENTS_PROFILE = "consents"
CONSENT_COLUMNS = ("subscriber_number", "purpose", "status", "recorded_at", "channel")
# Identifying columns of a register row (the retention proof looks for their values after a deletion).
IDENTIFYING_COLUMNS = ("record_id", "subscriber_number")
DUPLICATE = "duplicate_consent"
NOT_CONSENTS = "named as a consent extract, but its header is not the consent header"

# ISO-8601 date and time, seconds required, fractions optional; `T` or a space between; an offset optional.
_ISO = "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?"
_OFFSET = "(Z|[+-][0-9]{2}:[0-9]{2})"
TYPED = {
    "subscriber_e164": e164_sql("subscriber_number"),
    "recorded_utc": f"""CASE
        WHEN regexp_full_match(recorded_at, '{_ISO}{_OFFSET}')
            THEN timezone('UTC', TRY_CAST(recorded_at AS TIMESTAMPTZ))
        WHEN regexp_full_match(recorded_at, '{_ISO}')
            THEN timezone('UTC', timezone($local_tz, TRY_CAST(recorded_at AS TIMESTAMP))) END""",
}

# reason, predicate over a typed row (true when the row FAILS), the source column whose value is blanked
# in quarantine. Constants only: values reach the SQL as parameters ($purposes, $statuses, $channels, …).
RULES = (
    ("subscriber_number_invalid", not_e164("subscriber_e164"), "subscriber_number"),
    ("purpose_unknown", "purpose IS NULL OR NOT list_contains($purposes, purpose)", "purpose"),
    ("status_invalid", "status IS NULL OR NOT list_contains($statuses, status)", "status"),
    ("recorded_at_invalid", "recorded_utc IS NULL", "recorded_at"),
    # A consent cannot be received after the extract was taken: the night's end, 00:00 UTC the next day.
    ("recorded_after_night", "recorded_utc >= CAST($night AS DATE) + INTERVAL 1 DAY", "recorded_at"),
    # The channel of the withdrawals an answer to a request records (`consent.request_channel`): only the tool's
    # own answer writes it, so an extract's row claiming it is not believed (docs/design.md §11).
    ("channel_request_only", "channel = $request_channel", "channel"),
    ("channel_unknown", "channel IS NULL OR (channel <> $request_channel AND NOT list_contains($channels, channel))",
     "channel"),
)

CONSENTS = Extract(
    profile=CONSENTS_PROFILE, columns=CONSENT_COLUMNS, file_name=re.compile(r"^consents_.*\.csv$", re.IGNORECASE),
    not_this=NOT_CONSENTS, zone=ZONE, partition=PARTITION, typed=TYPED, rules=RULES,
    duplicate=DUPLICATE, duplicate_key=("subscriber_e164", "purpose", "recorded_utc"),
    # The register's layout (transforms/consents/register.py REGISTER_COLUMNS), then its partition.
    output=f"""subscriber_e164 AS subscriber_number, purpose, status, recorded_utc AS recorded_at, channel,
              $sha AS source_file_sha256, source_row, CAST($night AS DATE) AS as_of, $run_id AS run_id,
              strftime(recorded_utc, '%Y-%m') AS {PARTITION}""",
    parameters=lambda policy: {"purposes": list(policy.consent.purpose_names), "statuses": list(STATUSES),
                               "channels": list(policy.consent.channels),
                               "request_channel": policy.consent.request_channel,
                               "local_tz": policy.operator.local_timezone},
)


def is_consents_extract(head: bytes, file_name: str) -> bool:
    """A file for the consents step: the consent header, or the name `consents_*.csv` (without the header
    the step refuses it)."""
    return CONSENTS.claims(head, file_name)


def load_consents(path: Path, policy: Policy, lake: Lake, work_dir: Path, *, night: str, run_id: str,
                  shape: FileShape | None = None) -> ExtractResult:
    """Validate one consent extract; commit its events to the register (`consents/`), its failing rows to
    `quarantine/`. `shape` comes from the night's plan; it is taken when not given."""
    return load_extract(CONSENTS, path, policy, lake, work_dir, night=night, run_id=run_id, shape=shape)
