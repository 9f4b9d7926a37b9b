"""The landing formats' profiles and column lists, as the ingest reads them.

This is the generator's one import from transforms: the other modules take the
profiles from here.
"""

from __future__ import annotations

from transforms.steps.profiles import (
    ASTERISK_18,
    CANONICAL,
    CANONICAL_COLUMNS,
    CANONICAL_PARQUET,
    FREESWITCH,
    MEDIATION,
    PAYMENTS_COLUMNS,
    PAYMENTS_PROFILE,
)

__all__ = [
    "ASTERISK_18", "BILLING_CSV_COLUMNS", "CANONICAL", "CANONICAL_COLUMNS", "CANONICAL_PARQUET", "FREESWITCH",
    "HOSTILE_COLUMNS", "MEDIATION", "PAYMENTS_COLUMNS", "PAYMENTS_PROFILE",
]

# Canonical CSV as a billing/CRM export: canonical columns plus off-list ones
# (docs/design.md §1: names, e-mail, IP addresses are never kept) between them.
BILLING_CSV_COLUMNS = (
    "origin_number", "caller_name", "email", *CANONICAL_COLUMNS[1:10], "ip_address", *CANONICAL_COLUMNS[10:],
)
# Column names of the hostile-header file: SQL-ish, newline-ish, very long.
HOSTILE_COLUMNS = ('x"; DROP TABLE runs; --', "remark\u2028line\u0085break", "very_long_" + "column_" * 700)
