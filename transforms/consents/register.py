"""The consent register's layout in the lake, and the one question every reader asks of it: which consent
stands for a subscriber and purpose on a given day (policy `consent.latest_counts`; docs/design.md §11).

The consent extract's step (`transforms/steps/consents.py`) writes rows here; the marketing profiles, the
retention sweep and the subscribers' rights read them. A row is one consent event as the operator's consent
system recorded it:

    consents/recorded_month=YYYY-MM/part-<source sha256 prefix>.parquet
    record_id, subscriber_number (E.164), purpose, status (granted | withdrawn), recorded_at (TIMESTAMP, UTC),
    channel, source_file_sha256, source_row, as_of (DATE: the night the extract landed), run_id

"The latest consent received counts" (§3.4 ¶3) is decided by `recorded_at`, never by the order extracts
land in: an extract that arrives late with an older event changes nothing that a newer one decided. Two
events of the same subscriber and purpose at the same instant are a conflict the register cannot resolve;
the withdrawal wins, because processing on a consent that may not stand is the error that cannot be undone.
"""

from __future__ import annotations

from datetime import date

from transforms.lake import Lake
from transforms.lake.connection import execute, sql_literal

ZONE = "consents"
PARTITION = "recorded_month"
STATUSES = ("granted", "withdrawn")
REGISTER_COLUMNS = (
    "record_id", "subscriber_number", "purpose", "status", "recorded_at", "channel",
    "source_file_sha256", "source_row", "as_of", "run_id",
)


def register_files(lake: Lake) -> list[str]:
    """The register's part files, sorted (none: no extract has landed yet)."""
    return sorted(str(p) for p in lake.zone(ZONE).glob(f"{PARTITION}=*/*.parquet"))


def register_relation(lake: Lake) -> str | None:
    """The register's rows as a DuckDB relation over its part files (None: no extract has landed yet).
    Paths are the lake's own, written as literals."""
    files = register_files(lake)
    return "read_parquet([" + ", ".join(sql_literal(f) for f in files) + "], union_by_name = true)" if files else None


def register_table(con, lake: Lake, name: str, columns: str, select: str, params: dict) -> int:
    """Create temp table `name` AS `select` over the register's rows (`{register}` in `select` stands for them);
    with no extract landed yet, an empty `name` of `columns` (a column list with types). Returns its row count.
    The one place a reader of the register meets an empty one."""
    source = register_relation(lake)
    if source is None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({columns})")
        return 0
    execute(con, f"CREATE OR REPLACE TEMP TABLE {name} AS {select.format(register=source)}", params)
    return con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]


def define_standing(con, lake: Lake, as_of: date, name: str = "consent_standing") -> int:
    """Create temp table `name`: per subscriber and purpose, the consent event that stands at the end of
    `as_of` (UTC), with `granted` true or false. Returns its row count (0 and an empty table when the
    register is empty).

    Columns: subscriber_number, purpose, granted, recorded_at, status_since (DATE of the standing event).
    A subscriber with no event for a purpose has no row: no consent was given.
    """
    return register_table(con, lake, name, "subscriber_number VARCHAR, purpose VARCHAR, granted BOOLEAN,"
                          " recorded_at TIMESTAMP, status_since DATE", """
        SELECT subscriber_number, purpose, status = 'granted' AS granted, recorded_at,
               CAST(recorded_at AS DATE) AS status_since
        FROM (
            SELECT subscriber_number, purpose, status, recorded_at,
                   row_number() OVER (PARTITION BY subscriber_number, purpose
                                      ORDER BY recorded_at DESC, status = 'withdrawn' DESC) AS latest
            FROM {register}
            WHERE recorded_at < CAST($as_of AS DATE) + INTERVAL 1 DAY)
        WHERE latest = 1""", {"as_of": as_of})
