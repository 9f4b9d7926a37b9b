"""Step 4 — billing zone: a file's valid rows into `billing/event_date=…/`, and what a billing row means.

Allowed columns plus lineage, hive-partitioned by event date (UTC). Each source file owns one part file
per partition, named by its sha256 (`transforms.lake.partitions`), so a re-run overwrites the same files
with the same rows and nothing is counted twice.
"""

from __future__ import annotations

from pathlib import Path

from transforms.lake import Lake
from transforms.lake.partitions import ZoneWrite, commit_partitions

# Directions in which the served subscriber (the operator's customer the record is about) is the called
# party; in every other direction it is the calling party.
SERVED_IS_CALLED = ("incoming", "forwarded")


def served_party_sql(called: str, calling: str) -> str:
    """SQL over a billing row: `called` when the served subscriber is the called party, else `calling`."""
    return f"CASE WHEN direction IN {SERVED_IS_CALLED!r} THEN {called} ELSE {calling} END"


def load_billing(valid_dir: str, lake: Lake, *, source_sha256: str) -> ZoneWrite:
    """Commit a file's valid rows (already laid out by event date) to the billing zone."""
    return commit_partitions(Path(valid_dir), lake, "billing", source_sha256)
