"""Step 4 — billing zone: a file's valid rows into `billing/event_date=…/`, and what a billing row means.

Allowed columns plus lineage, hive-partitioned by event date (UTC). Each source file owns one part file
per partition, named by its sha256 (`transforms.lake.partitions`), so a re-run overwrites the same files
with the same rows and nothing is counted twice.
"""

from __future__ import annotations

from pathlib import Path

from transforms.lake import Lake
from transforms.lake.partitions import ZoneWrite, commit_partitions
from transforms.privacy.restricted import Restricted, RestrictedFilter
from transforms.privacy.served import SERVED_IS_CALLED, served_party_sql  # noqa: F401  (re-exported)

# A forwarded leg's IMSI need not be its served subscriber's: a mediation export writes the leg of the SIM that
# forwarded the call (its IMSI) to the number it was forwarded to, who is then the called, served party. In every
# other direction the record's IMSI is the served subscriber's SIM.
FORWARDED = "forwarded"


def imsi_is_served_sql(direction: str = "direction") -> str:
    """SQL over a billing row: true when its IMSI is for certain its served subscriber's (any direction but a
    forwarded leg's): only then does an IMSI make a row its owner's own (docs/design.md §12)."""
    return f"coalesce({direction} <> '{FORWARDED}', true)"


def restricted_filter(restricted: Restricted, zone: str) -> RestrictedFilter:
    """Who a step deriving `zone` from billing rows leaves out (`privacy.restricted`), with what a billing row's
    served subscriber is."""
    return RestrictedFilter(restricted, zone, served_party_sql("destination_number", "origin_number"),
                            imsi_served=imsi_is_served_sql())


def load_billing(valid_dir: str, lake: Lake, *, source_sha256: str) -> ZoneWrite:
    """Commit a file's valid rows (already laid out by event date) to the billing zone."""
    return commit_partitions(Path(valid_dir), lake, "billing", source_sha256)
