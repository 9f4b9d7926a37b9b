"""Aggregates: k-anonymous release tables per event date, coarse to fine (docs/design.md §4).

The policy's `analytics.release_tables` name each table's grain. The analytics rows are grouped once into
*atoms* — one per event date and value of every dimension any table groups by — and every table's cell is a
union of atoms: its sums come from the atoms', its subscribers from one table of distinct (atom, key id,
subscriber) pairs, never from a pairs table per release table. Each cell carries subscribers (distinct
origin tokens), events, minutes, data volume and revenue, and the cell of its parent table that contains it.
What may be released is decided by `suppression`; subscriber tokens are only counted, never written.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from transforms.lake.commit import remove_tree
from transforms.lake.connection import connect, execute, in_pass, pass_count, sql_literal
from transforms.policy import Policy
from transforms.policy.model import RELEASE_DIMENSIONS
from transforms.privacy.generalize import UNKNOWN_AREA
from transforms.privacy.served import served_party_sql
from transforms.privacy.suppression import TableRelease, suppress, write_released
from transforms.privacy.tokens import KEY_ID_COLUMN

# Columns of the analytics rows the dimensions are made of; one an older or narrower file lacks reads as NULL.
SOURCE_COLUMNS = ("event_hour", "service_type", "area", "service_area", "called_country_code", "direction",
                  "origin_network", "termination_network", KEY_ID_COLUMN, "origin_number", "duration_s",
                  "data_volume_bytes", "charged_amount")
# Each release dimension as SQL over the analytics rows (joined to the zone look-ups `cz`, `vz`).
DIMENSION_SQL = {
    "event_hour": "r.event_hour",
    "service_type": "r.service_type",
    "area": f"coalesce(r.area, {sql_literal(UNKNOWN_AREA)})",
    "service_area": "r.service_area",
    "called_country_code": "r.called_country_code",
    # The called country's zone by calling code (policy roaming.reference_table); a code not listed is never
    # home nor EU/EEA. No called country (data sessions): no zone.
    "called_zone": "CASE WHEN r.called_country_code IS NOT NULL THEN coalesce(cz.zone, 'rest_of_world') END",
    # Where the served subscriber was: the visited network's MCC, as the roaming aggregates classify it
    # (an MCC not listed is never home); no network on the row: home when served at home, else unknown.
    "visited_zone": "CASE WHEN r.visited IS NOT NULL THEN coalesce(vz.zone, 'rest_of_world')"
                    " WHEN r.service_area = 'home' THEN 'home' ELSE 'unknown' END",
}
DIMENSION_TYPES = {"event_hour": "TIMESTAMP"}        # every other dimension is VARCHAR
# The distinct (atom, key id, subscriber) pairs are built, and counted per cell, in passes over ranges of the
# subscriber's hash, each pass at most this many analytics rows: a day's distinct set grows with its rows and
# went ~200 MB over DuckDB's memory ceiling at 30M rows (benchmarks/README.md, issue 17). Each pass's pairs are
# written to a work file, not held as a table. Distinct subscribers in disjoint ranges add up, so the counts are
# those of one pass.
PAIRS_ROWS_PER_PASS = 12_000_000
if set(DIMENSION_SQL) != set(RELEASE_DIMENSIONS):
    raise TypeError("every release dimension of the policy model needs its SQL here")


@dataclass(frozen=True)
class AggregateResult:
    """What one aggregate run released and suppressed; counts only (recorded in `aggregate_releases`)."""

    k: int
    clause: str
    event_dates: tuple[str, ...]
    rows_in: int                          # analytics rows read
    tables: tuple[TableRelease, ...]      # one per event date and release table, coarse to fine
    files: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def cells_released(self) -> int:
        return sum(t.cells_released for t in self.tables)

    @property
    def cells_suppressed(self) -> int:
        return sum(t.cells_suppressed_primary + t.cells_suppressed_secondary for t in self.tables)


def aggregate_day(analytics_path: str | Sequence[str], policy: Policy, work_dir: Path,
                  out_dir: Path) -> AggregateResult:
    """Aggregate the analytics rows at `analytics_path` (a glob, or a list of Parquet files), suppress, and
    write `out_dir/event_date=…/` (one Parquet file per release table)."""
    started = time.monotonic()
    work_dir = Path(work_dir)
    remove_tree(work_dir / "aggregate_stage")
    con = connect(work_dir / "tmp")
    con.execute("SET preserve_insertion_order = false")   # every output is ordered explicitly
    try:
        rows_in = build_cells(con, analytics_path, policy)
        released = suppress(con, policy, work_dir / "aggregate_stage")
    finally:
        con.close()
        remove_tree(work_dir / "tmp")
    files = write_released(released, Path(out_dir))
    remove_tree(work_dir / "aggregate_stage")
    return AggregateResult(k=released.k, clause=policy.analytics_clause,
                           event_dates=tuple(p.event_date for p in released.partitions), rows_in=rows_in,
                           tables=released.tables, files=files, seconds=round(time.monotonic() - started, 3))


def _rows_view(con: duckdb.DuckDBPyConnection, analytics_path: str | Sequence[str], policy: Policy,
               dims: Sequence[str]) -> None:
    """`analytics_rows`: the event date, the dimensions `dims`, key id, subscriber and measures of each row."""
    paths = [analytics_path] if isinstance(analytics_path, (str, Path)) else list(analytics_path)
    if not paths:
        raise ValueError("no analytics files to aggregate")
    src = "[" + ", ".join(sql_literal(p) for p in paths) + "]"
    have = {d[0] for d in con.execute(
        f"SELECT * FROM read_parquet({src}, hive_partitioning = true, union_by_name = true) LIMIT 0").description}
    cols = ", ".join(f"{c}" if c in have else f"CAST(NULL AS VARCHAR) AS {c}" for c in SOURCE_COLUMNS)
    execute(con, """
        CREATE OR REPLACE TEMP TABLE reference_zones AS
        SELECT mcc, country_calling_code, zone FROM read_csv($path, header = true, all_varchar = true)""",
            {"path": str(policy.roaming.reference_table)})
    bad = con.execute("SELECT count(DISTINCT mcc) < count(*) OR EXISTS (SELECT country_calling_code FROM"
                      " reference_zones GROUP BY ALL HAVING count(DISTINCT zone) > 1) FROM reference_zones").fetchone()
    if bad[0]:
        raise ValueError(f"{policy.roaming.reference_table}: an MCC listed twice, or a calling code in two zones")
    select = ", ".join(f"{DIMENSION_SQL[d]} AS {d}" for d in dims)
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW analytics_rows AS
        SELECT r.event_date, {select}, r.{KEY_ID_COLUMN} AS kid, r.origin_number, r.duration_s,
               r.data_volume_bytes, r.charged_amount
        FROM (SELECT *, nullif(trim({served_party_sql('termination_network', 'origin_network')}), '') AS visited
              FROM (SELECT event_date, {cols}
                    FROM read_parquet({src}, hive_partitioning = true, union_by_name = true))) r
        LEFT JOIN (SELECT DISTINCT country_calling_code, zone FROM reference_zones) cz
               ON cz.country_calling_code = r.called_country_code
        LEFT JOIN reference_zones vz ON vz.mcc = left(r.visited, 3)""")


def build_cells(con: duckdb.DuckDBPyConnection, analytics_path: str | Sequence[str], policy: Policy, *,
                exact_keys: bool = False) -> int:
    """Tables `atoms`, `pairs`, `atom_cells` and `cells` in `con`; returns the rows read.

    `atoms` hold the sums per event date and value of every dimension used; `pairs` the distinct (atom, key
    id, subscriber) triples as 64-bit hashes: `ak` of the atom's keys, `kh` of the key id, `sub` of the token.
    The atoms' and key ids' hashes are exact when no two share one (checked; otherwise, or with `exact_keys`,
    the keys and ids themselves are used: slower, same result). `cells` has one row per release table's cell
    (`cell_id` unique across tables, `table_no` the table's place in the policy, `parent_id` the containing
    cell of its parent table), with every dimension column (NULL outside the table's columns).

    A subscriber is held as hash(token): the token itself is not kept. Two tokens sharing a 64-bit hash would
    count once — fewer subscribers, so more suppression, never less.

    Tokens made with different keys (`hmac_key_id`; a day's late rows may come after a key rotation) cannot be
    matched, so one person may hold two tokens. Subscribers are then counted per key and the largest count is
    used: a lower bound of the people in the group, never more than there are.
    """
    tables = policy.release_tables
    dims = [d for d in RELEASE_DIMENSIONS if any(d in policy.release_columns(t.name) for t in tables)]
    _rows_view(con, analytics_path, policy, dims)
    keys = ", ".join(("event_date", *dims))
    atom_key = f"struct_pack({keys})" if exact_keys else f"hash({keys})"
    # Tables by day (no hour) count their subscribers from the distinct (day atom, key id, subscriber): a person
    # active in several hours is one pair there, so those tables' distinct counts read fewer pairs.
    day_keys = ", ".join(("event_date", *(d for d in dims if d != "event_hour")))
    day_key = f"struct_pack({day_keys})" if exact_keys else f"hash({day_keys})"
    by_day = "event_hour" in dims and sum("event_hour" not in policy.release_columns(t.name) for t in tables) > 1
    key_hash = "kid" if exact_keys else "hash(kid)"   # two key ids sharing a hash would pool their subscribers
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE atoms AS
        SELECT {atom_key} AS ak, {day_key} AS dk, *
        FROM (SELECT {keys}, count(*) AS events, coalesce(sum(duration_s), 0) AS duration_s,
                     coalesce(sum(data_volume_bytes), 0) AS data_volume_bytes,
                     coalesce(sum(charged_amount), 0) AS revenue
              FROM analytics_rows GROUP BY ALL)""")
    if not exact_keys and (
            con.execute(f"SELECT count(DISTINCT ak) < count(*) OR count(DISTINCT dk) < count(DISTINCT"
                        f" struct_pack({day_keys})) FROM atoms").fetchone()[0]
            or con.execute("SELECT count(DISTINCT hash(kid)) < count(DISTINCT kid) FROM analytics_rows")
            .fetchone()[0]):
        return build_cells(con, analytics_path, policy, exact_keys=True)   # two atoms or key ids share a hash
    rows_in = con.execute("SELECT coalesce(sum(events), 0) FROM atoms").fetchone()[0]
    passes = pass_count(rows_in, PAIRS_ROWS_PER_PASS)
    folder = _pairs_folder(con)
    # Fixed-width columns: half the time of carrying the keys and key id text along.
    triples = f"""SELECT {atom_key} AS ak, {key_hash} AS kh, hash(origin_number) AS sub
                  FROM analytics_rows WHERE origin_number IS NOT NULL"""
    if passes > 1:
        # One read of the rows into a file (no distinct yet, so nothing is held); each pass filters it, reading
        # three fixed-width columns. (PARTITION_BY by pass took twice as long as this.)
        execute(con, f"COPY ({triples}) TO $dst (FORMAT parquet, COMPRESSION lz4_raw)",
                {"dst": str(folder / "triples.parquet")})
    for b in range(passes):
        source = triples if passes == 1 else f"""SELECT * FROM read_parquet({sql_literal(folder / 'triples.parquet')})
                                                 WHERE {in_pass('sub', b, passes)}"""
        execute(con, f"COPY (SELECT DISTINCT ak, kh, sub FROM ({source})) TO $dst (FORMAT parquet, COMPRESSION lz4_raw)",
                {"dst": str(folder / f"pairs-{b}.parquet")})
        con.execute(f"CREATE OR REPLACE TEMP VIEW pairs_{b} AS"
                    f" SELECT * FROM read_parquet({sql_literal(folder / f'pairs-{b}.parquet')})")
        if by_day:
            execute(con, f"""COPY (SELECT DISTINCT a.dk, p.kh, p.sub FROM pairs_{b} p JOIN atoms a USING (ak))
                             TO $dst (FORMAT parquet, COMPRESSION lz4_raw)""",
                    {"dst": str(folder / f"day_pairs-{b}.parquet")})
            con.execute(f"CREATE OR REPLACE TEMP VIEW day_pairs_{b} AS"
                        f" SELECT * FROM read_parquet({sql_literal(folder / f'day_pairs-{b}.parquet')})")
    # All passes' pairs, for the few cells the suppression looks into.
    con.execute(f"CREATE OR REPLACE TEMP VIEW pairs AS SELECT * FROM read_parquet({sql_literal(folder / 'pairs-*.parquet')})")
    ak_type = con.execute("SELECT typeof(ak) FROM atoms LIMIT 1").fetchone()
    con.execute(f"CREATE OR REPLACE TEMP TABLE atom_cells (ak {ak_type[0] if ak_type else 'UBIGINT'},"
                " table_no INTEGER, cell_id BIGINT)")
    dim_cols = ", ".join(f"{d} {DIMENSION_TYPES.get(d, 'VARCHAR')}" for d in dims)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE cells (cell_id BIGINT, table_no INTEGER, parent_id BIGINT,
                    event_date DATE, {dim_cols}, subscribers BIGINT, events BIGINT, minutes DECIMAL(18, 2),
                    data_volume_bytes BIGINT, revenue DECIMAL(18, 4))""")
    offset = 0
    for no, table in enumerate(tables):
        grain = ", ".join(("event_date", *policy.release_columns(table.name)))
        execute(con, f"""INSERT INTO atom_cells
                         SELECT ak, $no, $offset + dense_rank() OVER (ORDER BY {grain}) FROM atoms""",
                {"no": no, "offset": offset})
        # Subscribers: the distinct (cell, key id, subscriber) of the table, counted per key (pass by pass, the
        # passes' counts added), the largest kept.
        distinct_pairs = (
            """SELECT DISTINCT m.cell_id, p.kh, p.sub FROM day_pairs_{b} p
               JOIN (SELECT DISTINCT a.dk, ac.cell_id FROM atoms a JOIN atom_cells ac USING (ak)
                     WHERE ac.table_no = $no) m USING (dk)"""
            if by_day and "event_hour" not in policy.release_columns(table.name) else
            "SELECT DISTINCT ac.cell_id, p.kh, p.sub FROM pairs_{b} p JOIN atom_cells ac ON ac.ak = p.ak"
            " AND ac.table_no = $no")
        for b in range(passes):
            execute(con, f"""
                {"CREATE OR REPLACE TEMP TABLE cell_key_subscribers AS" if b == 0 else
                 "INSERT INTO cell_key_subscribers"}
                SELECT cell_id, kh, count(*) AS n FROM ({distinct_pairs.format(b=b)}) GROUP BY ALL""", {"no": no})
        execute(con, f"""
            INSERT INTO cells BY NAME
            SELECT s.*, coalesce(n.subscribers, 0) AS subscribers, $no AS table_no
            FROM (SELECT ac.cell_id, {grain}, sum(events) AS events,
                         CAST(round(sum(duration_s) / 60.0, 2) AS DECIMAL(18, 2)) AS minutes,
                         CAST(sum(data_volume_bytes) AS BIGINT) AS data_volume_bytes,
                         CAST(sum(revenue) AS DECIMAL(18, 4)) AS revenue
                  FROM atoms JOIN atom_cells ac USING (ak) WHERE ac.table_no = $no GROUP BY ALL) s
            LEFT JOIN (SELECT cell_id, max(n) AS subscribers
                       FROM (SELECT cell_id, kh, sum(n) AS n FROM cell_key_subscribers GROUP BY ALL)
                       GROUP BY cell_id) n USING (cell_id)""", {"no": no})
        offset = con.execute("SELECT coalesce(max(cell_id), 0) FROM cells").fetchone()[0]
        if table.within is not None:
            parent_no = next(i for i, t in enumerate(tables) if t.name == table.within)
            execute(con, """
                UPDATE cells SET parent_id = m.parent_id
                FROM (SELECT DISTINCT c.cell_id, p.cell_id AS parent_id FROM atom_cells c JOIN atom_cells p USING (ak)
                      WHERE c.table_no = $no AND p.table_no = $parent) m
                WHERE cells.cell_id = m.cell_id""", {"no": no, "parent": parent_no})
    return int(rows_in)


def _pairs_folder(con: duckdb.DuckDBPyConnection) -> Path:
    """An empty folder for the pairs' Parquet files inside the connection's own spill folder (removed with it)."""
    folder = Path(con.execute("SELECT current_setting('temp_directory')").fetchone()[0]) / "subscriber_pairs"
    remove_tree(folder)
    folder.mkdir(parents=True)
    return folder
