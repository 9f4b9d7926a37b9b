"""Aggregates: k-anonymous daily counts and sums from the analytics rows (docs/design.md §4).

Cells are grouped by (event_date, event_hour, service_type, area, service_area, called_country_code);
each carries subscribers (distinct origin tokens), events, minutes, data volume and revenue. Two levels of
marginal totals are released beside them: per (event_date, service_type) and per event_date. What may be
released is decided by `suppression`; subscriber tokens are only counted, never written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from transforms.lake.commit import remove_tree
from transforms.lake.connection import connect, execute, sql_literal
from transforms.policy import Policy
from transforms.privacy.generalize import UNKNOWN_AREA
from transforms.privacy.suppression import CELL_KEYS, suppress, write_released
from transforms.privacy.tokens import KEY_ID_COLUMN


@dataclass(frozen=True)
class AggregateResult:
    """What one aggregate run released and suppressed; counts only (recorded in `aggregate_releases`)."""

    k: int
    clause: str
    event_dates: tuple[str, ...]
    rows_in: int                         # analytics rows read
    groups_total: int                    # cells before suppression
    groups_released: int
    groups_suppressed_primary: int       # fewer than k subscribers
    groups_suppressed_secondary: int     # suppressed so no total minus its parts reveals a small cell
    rows_suppressed: int                 # events in suppressed cells
    totals_total: int                    # marginal totals (per date × service type, per date)
    totals_released: int
    totals_suppressed_primary: int
    totals_suppressed_secondary: int
    files: tuple[str, ...] = ()
    seconds: float = 0.0


def aggregate_day(analytics_path: str, policy: Policy, work_dir: Path, out_dir: Path) -> AggregateResult:
    """Aggregate the analytics rows at `analytics_path`, suppress, and write `out_dir/event_date=…/`."""
    started = time.monotonic()
    work_dir = Path(work_dir)
    remove_tree(work_dir / "aggregate_stage")
    con = connect(work_dir / "tmp")
    con.execute("SET preserve_insertion_order = false")   # every output is ordered explicitly
    try:
        rows_in = build_groups(con, analytics_path)
        released = suppress(con, policy.k_anonymity, work_dir / "aggregate_stage")
    finally:
        con.close()
        remove_tree(work_dir / "tmp")
    files = write_released(released, Path(out_dir))
    remove_tree(work_dir / "aggregate_stage")
    return AggregateResult(
        k=released.k, clause=policy.analytics_clause,
        event_dates=tuple(p.event_date for p in released.partitions), rows_in=rows_in,
        groups_total=released.groups_total, groups_released=released.groups_released,
        groups_suppressed_primary=released.groups_suppressed_primary,
        groups_suppressed_secondary=released.groups_suppressed_secondary,
        rows_suppressed=released.rows_suppressed, totals_total=released.totals_total,
        totals_released=released.totals_released, totals_suppressed_primary=released.totals_suppressed_primary,
        totals_suppressed_secondary=released.totals_suppressed_secondary,
        files=files, seconds=round(time.monotonic() - started, 3))


def build_groups(con: duckdb.DuckDBPyConnection, analytics_path: str, *, exact_cell_keys: bool = False) -> int:
    """Tables `cells`, `totals` and `pairs` (cell × key id × subscriber) in `con`; returns the rows read.

    Sums need no subscribers, so they come from one grouping of the rows into cells; subscribers come
    from `pairs`, the distinct (cell, key id, subscriber) triples, held as 64-bit hashes: `ck` of the
    cell's keys, `dk` of its date and service type, `kh` of the key id, `sub` of the token. The hashes
    of cells, services and key ids are exact when no two share one (checked; otherwise, or with
    `exact_cell_keys`, they are the keys and ids themselves: slower, same result).

    A subscriber is held as hash(token): the token itself is not kept. Two tokens sharing a 64-bit
    hash would count once — fewer subscribers, so more suppression, never less.

    Tokens made with different keys (`hmac_key_id`; a day's late rows may come after a key rotation)
    cannot be matched, so one person may hold two tokens. Subscribers are then counted per key and the
    largest count is used: a lower bound of the people in the group, never more than there are.
    """
    cols = [d[0] for d in execute(
        con, "SELECT * FROM read_parquet($src, hive_partitioning = true) LIMIT 0", {"src": analytics_path}
    ).description]
    kid = KEY_ID_COLUMN if KEY_ID_COLUMN in cols else "CAST(NULL AS VARCHAR)"
    execute(con, f"""
        CREATE OR REPLACE TEMP VIEW analytics_rows AS
        SELECT event_date, event_hour, service_type, coalesce(area, $unknown) AS area, service_area,
               called_country_code, {kid} AS kid, origin_number, duration_s, data_volume_bytes, charged_amount
        FROM read_parquet($src, hive_partitioning = true)""".replace("$unknown", sql_literal(UNKNOWN_AREA))
        .replace("$src", sql_literal(analytics_path)), {})
    keys = ", ".join(("event_date", *CELL_KEYS))
    cell_key = f"struct_pack({keys})" if exact_cell_keys else f"hash({keys})"
    # The (date, service type) a cell counts towards, for the service totals' subscribers.
    service_key = "struct_pack(event_date, service_type)" if exact_cell_keys else "hash(event_date, service_type)"
    # Two key ids sharing a hash would pool their subscribers, so the exact path is taken then too.
    key_hash = "kid" if exact_cell_keys else "hash(kid)"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cell_sums AS
        SELECT {cell_key} AS ck, {service_key} AS dk, *
        FROM (SELECT {keys}, count(*) AS events, coalesce(sum(duration_s), 0) AS duration_s,
                     coalesce(sum(data_volume_bytes), 0) AS data_volume_bytes,
                     coalesce(sum(charged_amount), 0) AS revenue
              FROM analytics_rows GROUP BY ALL)""")
    if not exact_cell_keys and (
            con.execute("SELECT count(DISTINCT ck) < count(*) OR count(DISTINCT dk)"
                        " < count(DISTINCT struct_pack(event_date, service_type)) FROM cell_sums").fetchone()[0]
            or con.execute("SELECT count(DISTINCT hash(kid)) < count(DISTINCT kid) FROM analytics_rows")
            .fetchone()[0]):
        return build_groups(con, analytics_path, exact_cell_keys=True)   # two cells, services or keys share a hash
    rows_in = con.execute("SELECT coalesce(sum(events), 0) FROM cell_sums").fetchone()[0]
    # Fixed-width columns: half the time of carrying the date, service and key id text along.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE pairs AS
        SELECT DISTINCT {cell_key} AS ck, {service_key} AS dk, {key_hash} AS kh, hash(origin_number) AS sub
        FROM analytics_rows WHERE origin_number IS NOT NULL""")
    measures = """CAST(events AS BIGINT) AS events,
                  CAST(round(duration_s / 60.0, 2) AS DECIMAL(18, 2)) AS minutes,
                  CAST(data_volume_bytes AS BIGINT) AS data_volume_bytes,
                  CAST(revenue AS DECIMAL(18, 4)) AS revenue"""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cells AS
        SELECT row_number() OVER (ORDER BY {keys}) AS cell_id, ck, {keys},
               coalesce(n.subscribers, 0) AS subscribers, {measures}
        FROM cell_sums LEFT JOIN (SELECT ck, max(n) AS subscribers      -- one pair per subscriber
                                  FROM (SELECT ck, kh, count(*) AS n FROM pairs GROUP BY ck, kh)
                                  GROUP BY ck) n USING (ck)""")
    # Marginal totals over all rows (suppressed cells included: that is what makes differencing a risk).
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE totals AS
        SELECT row_number() OVER (ORDER BY s.event_date, s.is_day DESC, s.service_type) AS total_id,
               s.event_date, s.service_type, s.is_day, coalesce(n.subscribers, 0) AS subscribers, {measures}
        FROM (SELECT event_date, service_type, grouping(service_type) = 1 AS is_day,
                     sum(events) AS events, sum(duration_s) AS duration_s,
                     sum(data_volume_bytes) AS data_volume_bytes, sum(revenue) AS revenue
              FROM cell_sums GROUP BY GROUPING SETS ((event_date, service_type), (event_date))) s
        LEFT JOIN (WITH people AS (SELECT event_date, service_type, kh, sub
                                   FROM (SELECT DISTINCT dk, kh, sub FROM pairs)
                                   JOIN (SELECT DISTINCT dk, event_date, service_type FROM cell_sums) USING (dk))
                   SELECT event_date, service_type, false AS is_day, max(n) AS subscribers
                   FROM (SELECT event_date, service_type, kh, count(*) AS n FROM people GROUP BY ALL) GROUP BY ALL
                   UNION ALL
                   SELECT event_date, NULL, true, max(n)
                   FROM (SELECT event_date, kh, count(DISTINCT sub) AS n FROM people GROUP BY ALL) GROUP BY ALL
                  ) n   -- a service may be NULL, and the day total's service always is
        ON n.event_date = s.event_date AND n.is_day = s.is_day AND n.service_type IS NOT DISTINCT FROM s.service_type""")
    return int(rows_in)
