"""Subject access over the analytics zone: where one subscriber's tokens appear, across key rotations
(policy §6; docs/design.md §4)."""

from __future__ import annotations

from dataclasses import dataclass

from transforms.lake import Lake
from transforms.lake.connection import connect, execute, sql_literal
from transforms.policy import Policy
from transforms.privacy.keys import KeyRing
from transforms.privacy.tokens import KEY_ID_COLUMN, derive_tokens


@dataclass(frozen=True)
class SubjectHit:
    """Analytics rows of one subject under one key id, day and column (counts, no values)."""

    key_id: str
    event_date: str
    column: str
    rows: int


def find_subject(lake: Lake, policy: Policy, keyring: KeyRing, value: str, kind: str) -> list[SubjectHit]:
    """Where a subject (a number or IMSI) appears in analytics, across key rotations.

    The token is derived with every key still held and matched only in partitions
    made with that key, so a subject-access request finds rows from before and
    after a rotation.
    """
    columns = [c for c in policy.columns_treated("tokenize") if policy.field(c).identifier == kind]
    files = sorted(str(p) for p in lake.zone("analytics").rglob("*.parquet"))
    if not columns or not files:
        return []
    tokens = derive_tokens(value, kind, keyring, policy.operator)
    con = connect()
    try:
        # Column names come from the policy and paths are the lake's own; key id and token are bound.
        source = ("read_parquet([" + ", ".join(sql_literal(f) for f in files) + "],"
                  " hive_partitioning = true, union_by_name = true)")
        # A column the policy tokenizes now may be missing from every file written before it listed it:
        # nothing of the subject can be there.
        present = {d[0] for d in con.execute(f"SELECT * FROM {source} LIMIT 0").description}
        columns = [c for c in columns if c in present]
        if not columns:
            return []
        union = " UNION ALL ".join(
            f"SELECT {KEY_ID_COLUMN} AS key_id, CAST(event_date AS VARCHAR) AS event_date, '{c}' AS column_name"
            f" FROM {source} WHERE {KEY_ID_COLUMN} = $key AND {c} = unhex($token)" for c in columns)
        hits = []
        for key_id, tok in tokens.items():
            for k, day, column, n in execute(
                    con, f"SELECT key_id, event_date, column_name, count(*) FROM ({union}) GROUP BY ALL"
                         " ORDER BY 2, 3", {"key": key_id, "token": tok}).fetchall():
                hits.append(SubjectHit(key_id=k, event_date=day, column=column, rows=n))
        return hits
    finally:
        con.close()
