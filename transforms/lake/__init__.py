"""The lake on disk: zone folders, the one DuckDB connection setup, and how anything is committed into
view (a file, a folder, a JSON record) in one rename. docs/design.md §2."""

from transforms.lake.zones import DATA_ZONES, ZONE_NAMES, Lake, safe_run_id

__all__ = ["DATA_ZONES", "ZONE_NAMES", "Lake", "safe_run_id"]
