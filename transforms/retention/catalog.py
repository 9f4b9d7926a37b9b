"""Which retention category covers each data set in the lake; the sweep refuses to run without one.

A data set holds personal data unless the policy names it anonymous (`anonymous_datasets`); each one with
rows in the lake needs a category in the policy's retention catalog, or nothing is deleted at all
(docs/design.md §3).
"""

from __future__ import annotations

from transforms.lake import DATA_ZONES, ZONE_NAMES, Lake
from transforms.policy import Policy, RetentionRule


class RetentionError(RuntimeError):
    """The sweep cannot run safely (e.g. the policy's catalog misses a data set in the lake)."""


def datasets_in_lake(lake: Lake) -> list[str]:
    """Data zones that hold at least one Parquet file."""
    return [z for z in DATA_ZONES
            if lake.zone(z).exists() and next(lake.zone(z).rglob("*.parquet"), None) is not None]


def check_catalog(lake: Lake, policy: Policy) -> dict[str, RetentionRule]:
    """The category of every personal data set present in the lake; refuses when one has none."""
    present = [d for d in datasets_in_lake(lake) if not policy.is_anonymous(d)]
    missing = [d for d in present if policy.retention_of(d) is None]
    unknown = [p.name for p in lake.root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
               and p.name not in ZONE_NAMES]
    if missing or unknown:
        raise RetentionError(
            "the policy's retention catalog has no category for data set(s) in the lake: "
            + ", ".join(sorted(missing + unknown)) + f" (policy {policy.id} {policy.version}); nothing was deleted")
    return {d: policy.retention_of(d) for d in present}
