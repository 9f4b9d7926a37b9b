"""The differencing attack on released aggregate tables, worked out from the analytics rows themselves.

Independent of the code under test: each row is placed in its cells here (the policy's grains; the zones read
straight from the reference CSV), subscribers are counted from the rows' tokens (per key id, the largest
count: the rule a rotation needs), and the attacker's view is only what the files hold. For every released
cell of a table and every chain of finer tables inside it (each nested in the one before, levels skipped or
not), the attacker subtracts the released cells of the chain; what remains are the cell's rows in no released
cell of the chain, and their events, minutes and volume are known from the subtraction. That remainder must be
empty or describe k subscribers or more. Every released figure must be the rows' own, and every `other` row
the suppressed cells of its parent cell together.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from transforms.policy import Policy

SERVED_IS_CALLED = ("incoming", "forwarded")    # the served subscriber is the called party


def _zones(policy: Policy) -> tuple[dict, dict]:
    with open(policy.roaming.reference_table, newline="") as f:
        table = list(csv.DictReader(f))
    return {r["country_calling_code"]: r["zone"] for r in table}, {r["mcc"]: r["zone"] for r in table}


def row_dimensions(rows: list[dict], policy: Policy) -> list[dict]:
    """Each analytics row ({column: value}) with every release dimension, worked out by hand."""
    by_code, by_mcc = _zones(policy)
    out = []
    for r in rows:
        served_is_called = r.get("direction") in SERVED_IS_CALLED
        visited = (r.get("termination_network") if served_is_called else r.get("origin_network")) or None
        cc = r.get("called_country_code")
        out.append({**r, "event_hour": str(r["event_hour"])[:19], "event_date": str(r["event_date"])[:10],
                    "area": r.get("area") if r.get("area") is not None else "unknown",
                    "called_zone": None if cc is None else by_code.get(cc, "rest_of_world"),
                    "visited_zone": (by_mcc.get(visited[:3], "rest_of_world") if visited
                                     else "home" if r.get("service_area") == "home" else "unknown")})
    return out


def people(rows: list[dict]) -> int:
    """Distinct subscribers of `rows`: tokens per key id, the largest count (a row without a token is no one)."""
    per_key: dict = defaultdict(set)
    for r in rows:
        if r["origin_number"] is not None:
            per_key[r.get("hmac_key_id")].add(r["origin_number"])
    return max((len(s) for s in per_key.values()), default=0)


def chains(policy: Policy, table: str) -> list[tuple[str, ...]]:
    """Every sequence of finer tables inside `table`'s cells, each inside the one before."""
    inside = [t.name for t in policy.release_tables if table in policy.ancestors_of(t.name)]
    return [c for d in inside for c in [(d,), *((d, *rest) for rest in chains(policy, d))]]


def attack(rows: list[dict], output: dict, policy: Policy, k: int) -> list[str]:
    """What the released tables (`output`: {date: {table: [row dict]}}) give away: a line per finding."""
    rows = row_dimensions(rows, policy)
    found = []

    def key(r: dict, table: str) -> tuple:
        return tuple(str(r[d])[:19] if r[d] is not None else None for d in policy.release_columns(table))

    released: dict = defaultdict(set)        # (date, table) -> keys of released cells
    for day, tables in output.items():
        for table, cells in tables.items():
            released[day, table] = {key(c, table) for c in cells if not c["other"]}
    for day, tables in output.items():
        day_rows = [r for r in rows if r["event_date"] == day]
        for table, cells in tables.items():
            parent = policy.release_table(table).within
            for c in cells:
                if c["other"]:    # the parent cell's rows in no released cell of this table
                    pk = tuple(str(c[d])[:19] if c[d] is not None else None
                               for d in policy.release_columns(parent))
                    members = [r for r in day_rows if key(r, parent) == pk and key(r, table)
                               not in released[day, table]]
                else:
                    members = [r for r in day_rows if key(r, table) == key(c, table)]
                n = people(members)
                if n < k or n != c["subscribers"] or len(members) != c["events"]:
                    found.append(f"{day} {table} {key(c, table)}: released {c['subscribers']} subscribers,"
                                 f" {c['events']} events; the rows hold {n}, {len(members)}")
                if c["other"]:
                    continue
                for chain in chains(policy, table):
                    rest = [r for r in members if not any(key(r, t) in released[day, t] for t in chain)]
                    n = people(rest)
                    if rest and n < k:
                        found.append(f"{day} {table} {key(c, table)} minus {' / '.join(chain)}: {len(rest)}"
                                     f" events of {n} subscriber(s)")
    return found


def read_rows(analytics: list[Path] | str) -> list[dict]:
    """Analytics rows from Parquet (the zone's files), as dicts."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        cur = con.execute("SELECT * FROM read_parquet($p, hive_partitioning = true, union_by_name = true)",
                          {"p": analytics if isinstance(analytics, str) else [str(p) for p in analytics]})
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()
