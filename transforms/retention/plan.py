"""The sweep's plan: every row's due date and holds, per (file, subject key), and from those the files
to rewrite (`Job`) and what happens to each category's rows per partition (`RetentionAction`).

All set-based in DuckDB: subject keys of every part file, their due dates (`due`), the holds that cover
them (`hold_scope`); nothing is read into Python row by row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from transforms.lake import Lake
from transforms.lake.connection import execute
from transforms.policy import Policy, RetentionRule
from transforms.privacy.keys import KeyRing
from transforms.retention.due import (
    consent_succession, create_subject_keys, due_sql, invoice_state, marketing_due, read_subject_keys, subject_due,
)
from transforms.retention.hold_scope import active_holds, hold_scope, known_tokens
from transforms.retention.holds import Hold
from transforms.retention.rows import part_files


@dataclass(frozen=True)
class RetentionAction:
    """What happened to one category's rows in one partition (a `retention_actions` row, less the sweep)."""

    dataset: str
    partition: str
    category: str
    action: str                 # deleted | anonymized | held | kept
    rows: int
    due_on: str | None          # earliest due date (kept: the next one)
    legal_basis: str
    clause: str
    hold_ids: str | None
    files: int


@dataclass(frozen=True)
class Job:
    """One part file to rewrite without its due rows (or to remove when none stay)."""

    dataset: str
    partition: str
    category: str
    action: str                 # deleted | anonymized
    file: str                   # relative to the lake root
    rows_before: int
    rows_removed: int
    due_on: str
    legal_basis: str
    clause: str


@dataclass(frozen=True)
class SweepPlan:
    actions: tuple[RetentionAction, ...]
    jobs: tuple[Job, ...]


def plan_sweep(con, lake: Lake, policy: Policy, keyring: KeyRing, categories: dict[str, RetentionRule],
               holds: list[Hold], as_of: date, say: Callable[[str], None]) -> SweepPlan:
    """Every row's due date and holds, per (file, subject key); the jobs and the actions they make.

    Leaves the table `removal` (file, key) in `con`: the keys whose rows go, which the rewrite reads.
    """
    billing_rule = policy.billing_retention
    create_subject_keys(con)
    consent_succession(con, lake)
    for dataset in categories:
        files = part_files(lake, dataset)
        if not files:
            continue
        say(f"reading {dataset}: {len(files)} file(s)")
        for f in files:
            read_subject_keys(con, lake, policy, dataset, f)
    invoice_state(con, lake)
    subject_due(con, billing_rule)
    if "marketing" in categories:
        marketing_due(con, policy, keyring, lake, as_of, categories["marketing"])
    active_holds(con, keyring, holds)
    known_tokens(con, keyring)
    hold_scope(con)
    # Analytics rows carry tokens: their number is found by tokenizing the lake's numbers with their key.
    con.execute("""UPDATE subject_keys k SET number = t.number FROM known_tokens t
                   WHERE k.dataset = 'analytics' AND t.number IS NOT NULL AND t.key_id = k.key_id
                     AND t.token = k.token""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE key_due AS
        SELECT k.*, {due_sql(categories, billing_rule)} AS due_on
        FROM subject_keys k
        LEFT JOIN subject_due d ON k.dataset IN ('billing', 'analytics') AND d.number = k.number
             AND d.period = strftime(k.day_from, '%Y-%m')
        {"LEFT JOIN marketing_due m ON k.dataset = 'marketing' AND m.file = k.file AND m.key = k.key"
         if "marketing" in categories else ""}""")
    # Holds: a due key is held when an active hold's data set, dates and subject all cover it.
    execute(con, """
        CREATE OR REPLACE TEMP TABLE key_status AS
        SELECT k.dataset, k.file, k.part, k.key, k.rows, k.due_on,
               coalesce(list(DISTINCT h.hold_id ORDER BY h.hold_id) FILTER (WHERE h.hold_id IS NOT NULL),
                        []) AS hold_ids
        FROM key_due k
        LEFT JOIN hold_scope h
          ON k.due_on <= $as_of
         AND (h.dataset IS NULL OR h.dataset = k.dataset)
         AND (h.date_from IS NULL OR k.day_to >= h.date_from)
         AND (h.date_to IS NULL OR k.day_from <= h.date_to)
         AND (h.any_subject OR h.number = k.number OR h.account = k.account
              OR (h.token = k.token AND h.key_id = k.key_id))
        GROUP BY ALL""", {"as_of": as_of})
    rows = con.execute("""
        SELECT dataset, part, file,
               sum(rows) FILTER (WHERE due_on <= $as_of AND len(hold_ids) = 0) AS due,
               sum(rows) FILTER (WHERE due_on <= $as_of AND len(hold_ids) > 0) AS held,
               sum(rows) FILTER (WHERE coalesce(due_on > $as_of, true)) AS kept,   -- NULL: no due date (yet,
                                                                                     -- or a consent that stands)
               min(due_on) FILTER (WHERE due_on <= $as_of AND len(hold_ids) = 0),
               min(due_on) FILTER (WHERE due_on <= $as_of AND len(hold_ids) > 0),
               min(due_on) FILTER (WHERE due_on > $as_of),
               list_sort(list_distinct(flatten(list(hold_ids))))
        FROM key_status GROUP BY ALL ORDER BY ALL""", {"as_of": as_of}).fetchall()
    # The keys whose rows go, per file; the rewrite reads them from here.
    execute(con, """CREATE OR REPLACE TEMP TABLE removal AS SELECT file, key FROM key_status
                    WHERE due_on <= $as_of AND len(hold_ids) = 0""", {"as_of": as_of})
    actions: dict[tuple, dict] = {}
    jobs = []
    for dataset, part, file, due, held, kept, due_on, held_on, next_on, hold_ids in rows:
        rule = categories[dataset]
        removal = "anonymized" if rule.action == "anonymize" else "deleted"
        for action, n, on, ids in ((removal, due, due_on, None), ("held", held, held_on, hold_ids),
                                   ("kept", kept, next_on, None)):
            if not n:
                continue
            a = actions.setdefault((dataset, part, rule.category, action),
                                   {"rows": 0, "due_on": None, "files": 0, "hold_ids": set()})
            a["rows"] += n
            a["files"] += 1
            a["due_on"] = min(filter(None, (a["due_on"], on)), default=None)
            a["hold_ids"] |= set(ids or ())
        if due:
            jobs.append(Job(dataset=dataset, partition=part, category=rule.category, action=removal, file=file,
                            rows_before=int((due or 0) + (held or 0) + (kept or 0)), rows_removed=int(due),
                            due_on=due_on.isoformat(), legal_basis=rule.legal_basis, clause=rule.clause))
    out = [RetentionAction(dataset=d, partition=p, category=c, action=act, rows=int(v["rows"]),
                           due_on=v["due_on"].isoformat() if v["due_on"] else None,
                           legal_basis=categories[d].legal_basis, clause=categories[d].clause,
                           hold_ids=",".join(sorted(v["hold_ids"])) or None, files=v["files"])
           for (d, p, c, act), v in actions.items()]
    return SweepPlan(tuple(out), tuple(jobs))


def drop_key_tables(con) -> None:
    """The plan's lake-wide per-key tables, gone once a sweep needs only `removal`: its rewrites and proofs then
    run in the memory they need, not beside the whole lake's keys (a subject request's fulfilment reads
    `key_due` after the plan, and keeps them)."""
    for table in ("key_status", "key_due", "subject_keys", "known_tokens", "marketing_named"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
