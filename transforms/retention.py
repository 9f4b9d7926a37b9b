"""Step — the retention sweep: the policy's catalog enforced over every zone (policy §5, §3.2, §3.3; DESIGN §3).

For an as-of date, every row of every personal data set gets a due date from
its category in the policy (`RetentionRule.due_on`: kept through anchor +
period, due the next day; civil month arithmetic, so 31 Aug + 6 months is 28
Feb):

=============  =========================================================================
billing        until full payment (the invoice of the served subscriber's billing period
               is `paid` in the latest payments extract: due the day after the payment, not
               before the period ends), else the claim type's limitation period after the
               end of the billing period (the policy's default when no invoice is known).
               Action: anonymize — the day's k-anonymous aggregate is made sure of, then
               the rows are deleted.
quarantine     rejected rows were never billed: the default limitation period after the end
               of their event's month (the night's, when the time did not parse).
analytics      never longer than its source: the due date of the billing rows of the same
               subscriber and month, found by re-deriving the subscriber's token with the
               partition's key; a row that cannot be matched (its source is gone, or its key
               is no longer held) is due the day after its billing period ends — the
               earliest its source could have gone.
invoices       10 years after the end of the invoice year.
roaming        6 months after the end of the aggregated month.
=============  =========================================================================

A due row that falls under an active legal hold (`holds.py`) is kept and
recorded as held with the hold's id. The sweep rewrites each affected Parquet
file without its due rows (temp file, then rename), removes files and folders
left empty, then proves the removed rows' identifiers are gone from the
rewritten files' bytes and values, and records one `retention_actions` row per
(data set, partition, category, action) plus `retention_proofs`. The audit log
gets counts, never values, and is only appended to.

Kill-safe: every file rewrite is journaled (intent with the before/after
sha256, then done) under `audit/retention/<as of>/journal.json`, so a re-run
finishes what a killed sweep began, and records what it did exactly once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

from transforms import audit
from transforms import lake as lake_mod
from transforms.aggregate import aggregate_day
from transforms.holds import Hold, list_holds
from transforms.lake import Lake
from transforms.policy import Policy, RetentionRule
from transforms.pseudonymize import KEY_ID_COLUMN, KeyRing, e164_sql, token_sql

# Data sets of the lake with personal data, and what the sweep reads of each.
PERSONAL_DATASETS = ("billing", "quarantine", "analytics", "invoices", "roaming")
# Anonymous by construction (k-anonymous counts): no personal data, so no retention category needed.
ANONYMOUS_DATASETS = ("aggregates",)
# The served subscriber of a CDR: the called party of incoming and forwarded calls, else the calling one.
SERVED_NUMBER = ("CASE WHEN direction IN ('incoming', 'forwarded') THEN destination_number"
                 " ELSE origin_number END")
_PARTITION = re.compile(r"^[a-z_]+=[0-9-]+$")
# A run of the characters identifiers are written with (numbers, IMSIs, record and invoice ids).
_IDENT_RUN = re.compile(rb"[0-9A-Za-z+._-]{5,80}")


class RetentionError(RuntimeError):
    """The sweep cannot run safely (e.g. the policy's catalog misses a data set in the lake)."""


@dataclass(frozen=True)
class RetentionAction:
    """One `retention_actions` row: what happened to one category's rows in one partition."""

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
class Proof:
    """One rewritten or removed file, re-read after the sweep."""

    dataset: str
    partition: str
    file_name: str
    outcome: str                # rewritten | removed
    rows_removed: int
    identifiers_checked: int
    identifiers_found: int

    @property
    def ok(self) -> bool:
        return self.identifiers_found == 0


@dataclass(frozen=True)
class SweepResult:
    run_id: str
    as_of: str
    dry_run: bool
    actions: tuple[RetentionAction, ...]
    proofs: tuple[Proof, ...]
    seconds: float

    def rows(self, action: str) -> int:
        return sum(a.rows for a in self.actions if a.action == action)


def run_id_for(as_of: date) -> str:
    return f"retention-{as_of.isoformat()}"


# ------------------------------------------------------------------------------------------ the catalog

def datasets_in_lake(lake: Lake) -> list[str]:
    """Zones that hold at least one Parquet file."""
    return [z for z in (*PERSONAL_DATASETS, *ANONYMOUS_DATASETS)
            if lake.zone(z).exists() and next(lake.zone(z).rglob("*.parquet"), None) is not None]


def check_catalog(lake: Lake, policy: Policy) -> dict[str, RetentionRule]:
    """The category of every personal data set present in the lake; refuses when one has none."""
    by_dataset = {d: r for r in policy.retention for d in r.datasets}
    present = [d for d in datasets_in_lake(lake) if d not in ANONYMOUS_DATASETS]
    missing = [d for d in present if d not in by_dataset]
    unknown = [p.name for p in lake.root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
               and p.name not in lake_mod.ZONES]
    if missing or unknown:
        raise RetentionError(
            "the policy's retention catalog has no category for data set(s) in the lake: "
            + ", ".join(sorted(missing + unknown)) + f" (policy {policy.id} {policy.version}); nothing was deleted")
    return {d: by_dataset[d] for d in present}


# ------------------------------------------------------------------------------------------ the sweep

def sweep(lake: Lake, policy: Policy, keyring: KeyRing, as_of: date, *, dry_run: bool = False,
          progress: Callable[[str], None] | None = None) -> SweepResult:
    """Enforce the catalog as of `as_of` (the day the sweep acts for). See the module docstring."""
    started = time.monotonic()
    say = progress or (lambda _m: None)
    categories = check_catalog(lake, policy)
    run_id = run_id_for(as_of)
    journal = Journal(lake.zone("audit") / "retention" / as_of.isoformat() / "journal.json")
    if not dry_run:
        journal.resume(say)          # a killed sweep of this day is finished first
    work = lake.work_dir(run_id)
    lake_mod.remove_tree(work)
    con = lake_mod.connect(work / "tmp")
    con.execute("SET preserve_insertion_order = false")
    try:
        holds = list_holds(lake, active_only=True)
        plan = _plan(con, lake, policy, keyring, categories, holds, as_of, say)
        actions = [a for a in plan.actions if a.action in ("held", "kept")]
        proofs: list[Proof] = []
        if dry_run:
            actions = plan.actions
        else:
            _anonymize_first(lake, policy, plan, run_id, say)
            for i, job in enumerate(plan.jobs, 1):
                say(f"[{i}/{len(plan.jobs)}] {job.dataset}/{job.partition}/{Path(job.file).name}:"
                    f" removing {job.rows_removed:,} of {job.rows_before:,} rows")
                journal.record(_rewrite(con, lake, job, journal, policy.operator.country_calling_code))
            proofs = journal.prove(lambda done: _prove(con, lake, done))
            actions += journal.removal_actions()
            bad = [p for p in proofs if not p.ok]
            say(f"proof: {len(proofs) - len(bad)} of {len(proofs)} file(s) hold none of the removed identifiers")
    finally:
        con.close()
        lake_mod.remove_tree(work)
    result = SweepResult(run_id, as_of.isoformat(), dry_run, tuple(sorted(actions, key=_action_order)),
                         tuple(proofs), round(time.monotonic() - started, 3))
    if not dry_run:
        _record(lake, policy, result)
        journal.close()
        if any(not p.ok for p in proofs):
            raise RetentionError("a removed identifier is still in a rewritten file; see retention_proofs")
    return result


def _action_order(a: RetentionAction):
    return (a.dataset, a.partition, a.category, a.action)


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


@dataclass
class _Plan:
    actions: list[RetentionAction]
    jobs: list[Job]


def _served_number(columns: list[str]) -> str:
    """The served subscriber's number in a file of CDR rows, or of payments rows (quarantine holds both)."""
    if "direction" in columns:
        return SERVED_NUMBER
    return "subscriber_number" if "subscriber_number" in columns else "CAST(NULL AS VARCHAR)"


def _row_day(columns: list[str]) -> str:
    """A quarantined row's day: its event's, its billing period's, else the night it was quarantined."""
    parts = ["CAST(TRY_CAST(start_time AS TIMESTAMP) AS DATE)" if "start_time" in columns else None,
             "TRY_CAST(billing_period || '-01' AS DATE)" if "billing_period" in columns else None, "night"]
    return "coalesce(" + ", ".join(p for p in parts if p) + ")"


def _row_source(dataset: str, columns: list[str]) -> str:
    """One part file's rows (`$path`) as the sweep reads them, planning and rewriting alike: a quarantine
    file gets its night back from the folder (`$value`), CDR and payments rows their served number in
    E.164 (`served_e164`, computed once per row; uses `$cc`)."""
    extra = ""
    if dataset == "quarantine":
        extra += ", CAST($value AS DATE) AS night"
    if dataset in ("billing", "quarantine"):
        extra += f", {e164_sql(_served_number(columns))} AS served_e164"
    return f"(SELECT *{extra} FROM read_parquet($path, hive_partitioning = false))"


def _subject_key(dataset: str, columns: list[str]) -> str:
    """SQL of a row of `_row_source`'s subject key: rows of one key in one file share their due date and
    their holds. Column names are the pipeline's own; numbers are compared in E.164 (as tokens are made)."""
    if dataset == "billing":
        return "coalesce(served_e164, '')"
    if dataset == "quarantine":
        return f"coalesce(served_e164, '') || '|' || CAST({_row_day(columns)} AS VARCHAR)"
    if dataset == "analytics":
        return f"{KEY_ID_COLUMN} || ':' || coalesce(hex({SERVED_NUMBER}), '')"
    if dataset == "invoices":
        return "coalesce(subscriber_number, '') || '|' || coalesce(account_id, '')"
    return f"{KEY_ID_COLUMN} || ':' || hex(subscriber_token)"      # roaming


def _files(lake: Lake, dataset: str) -> list[Path]:
    return sorted(p for p in lake.zone(dataset).rglob("part*.parquet") if _PARTITION.match(p.parent.name))


def _plan(con, lake: Lake, policy: Policy, keyring: KeyRing, categories: dict[str, RetentionRule],
          holds: list[Hold], as_of: date, say) -> _Plan:
    """Every row's due date and holds, per (file, subject key); the jobs and the actions they make."""
    cc = {"cc": policy.operator.country_calling_code}
    billing_rule = categories.get("billing") or categories.get("quarantine") or policy.retention_for("billing_cdr")
    con.execute("CREATE OR REPLACE TEMP TABLE subject_keys (dataset VARCHAR, file VARCHAR, part VARCHAR,"
                " key VARCHAR, number VARCHAR, token BLOB, key_id VARCHAR, account VARCHAR, day_from DATE,"
                " day_to DATE, rows BIGINT)")
    for dataset in categories:
        files = _files(lake, dataset)
        if not files:
            continue
        say(f"reading {dataset}: {len(files)} file(s)")
        for f in files:
            _read_keys(con, lake, dataset, f, cc)
    _subject_due(con, lake, policy, billing_rule, cc)
    _active_holds(con, keyring, holds)
    _known_tokens(con, keyring)
    _hold_scope(con)
    # Analytics rows carry tokens: their number is found by tokenizing the lake's numbers with their key.
    con.execute("""UPDATE subject_keys k SET number = t.number FROM known_tokens t
                   WHERE k.dataset = 'analytics' AND t.number IS NOT NULL AND t.key_id = k.key_id
                     AND t.token = k.token""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE key_due AS
        SELECT k.*, {_due_sql(policy, categories, billing_rule)} AS due_on
        FROM subject_keys k
        LEFT JOIN subject_due d ON k.dataset IN ('billing', 'analytics') AND d.number = k.number
             AND d.period = strftime(k.day_from, '%Y-%m')""")
    # Holds: a due key is held when an active hold's data set, dates and subject all cover it.
    lake_mod.execute(con, """
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
               sum(rows) FILTER (WHERE due_on > $as_of) AS kept,
               min(due_on) FILTER (WHERE due_on <= $as_of AND len(hold_ids) = 0),
               min(due_on) FILTER (WHERE due_on <= $as_of AND len(hold_ids) > 0),
               min(due_on) FILTER (WHERE due_on > $as_of),
               list_sort(list_distinct(flatten(list(hold_ids))))
        FROM key_status GROUP BY ALL ORDER BY ALL""", {"as_of": as_of}).fetchall()
    # The keys whose rows go, per file; the rewrite reads them from here.
    lake_mod.execute(con, """CREATE OR REPLACE TEMP TABLE removal AS SELECT file, key FROM key_status
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
            jobs.append(Job(dataset, part, rule.category, removal, file, int((due or 0) + (held or 0) + (kept or 0)),
                            int(due), due_on.isoformat(), rule.legal_basis, rule.clause))
    out = [RetentionAction(d, p, c, act, int(v["rows"]), v["due_on"].isoformat() if v["due_on"] else None,
                           categories[d].legal_basis, categories[d].clause,
                           ",".join(sorted(v["hold_ids"])) or None, v["files"])
           for (d, p, c, act), v in actions.items()]
    return _Plan(out, jobs)


def _columns(con, path: Path) -> list[str]:
    return [d[0] for d in con.execute("SELECT * FROM read_parquet($p, hive_partitioning = false) LIMIT 0",
                                      {"p": str(path)}).description]


def _read_keys(con, lake: Lake, dataset: str, f: Path, cc: dict) -> None:
    """Add one file's (subject key, rows) to `subject_keys`, with what the key's due date and holds need."""
    part = f.parent.name
    value = part.split("=", 1)[1]
    rel = str(f.relative_to(lake.root))
    columns = _columns(con, f)
    key = _subject_key(dataset, columns)
    if dataset in ("billing", "analytics"):
        day = "CAST($value AS DATE)"
        number = "served_e164" if dataset == "billing" else "NULL"
        token = f"{SERVED_NUMBER}" if dataset == "analytics" else "NULL"
        key_id = KEY_ID_COLUMN if dataset == "analytics" else "NULL"
        select = (f"SELECT {key} AS key, {number} AS number, {token} AS token, {key_id} AS key_id,"
                  f" NULL AS account, {day} AS day_from, {day} AS day_to, count(*) AS rows")
    elif dataset == "quarantine":
        day = _row_day(columns)
        account = "account_id" if "account_id" in columns else "NULL"
        select = (f"SELECT {key} AS key, served_e164 AS number, NULL AS token,"
                  f" NULL AS key_id, {account} AS account, {day} AS day_from, {day} AS day_to, count(*) AS rows")
    elif dataset == "invoices":
        select = (f"SELECT {key} AS key, subscriber_number AS number, NULL AS token, NULL AS key_id,"
                  " account_id AS account, make_date(CAST($value AS INTEGER), 1, 1) AS day_from,"
                  " make_date(CAST($value AS INTEGER), 12, 31) AS day_to, count(*) AS rows")
    else:   # roaming: month=YYYY-MM (aggregates) or as_of=YYYY-MM (window status)
        first = "CAST($value || '-01' AS DATE)"
        select = (f"SELECT {key} AS key, NULL AS number, subscriber_token AS token, {KEY_ID_COLUMN} AS key_id,"
                  f" NULL AS account, {first} AS day_from, last_day({first}) AS day_to, count(*) AS rows")
    lake_mod.execute(con, f"""
        INSERT INTO subject_keys
        SELECT $dataset, $file, $part, key, number, token, key_id, account, day_from, day_to, rows
        FROM ({select} FROM {_row_source(dataset, columns)} GROUP BY ALL)""",
                     {**cc, "dataset": dataset, "file": rel, "part": part, "value": value, "path": str(f)})


def _subject_due(con, lake: Lake, policy: Policy, rule: RetentionRule, cc: dict) -> None:
    """`subject_due`: per served number and billing period, the day its billing rows fall due."""
    invoices = _files(lake, "invoices")
    if invoices:
        lake_mod.execute(con, """
            CREATE OR REPLACE TEMP TABLE invoice_state AS
            SELECT subscriber_number AS number, billing_period AS period, status, claim_type,
                   TRY_CAST(paid_date AS DATE) AS paid_on, account_id AS account
            FROM read_parquet($files, union_by_name = true)
            QUALIFY row_number() OVER (PARTITION BY invoice_id ORDER BY CAST(as_of AS DATE) DESC,
                                       source_file_sha256 DESC, source_row DESC) = 1""",
                         {"files": [str(f) for f in invoices]})
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE invoice_state (number VARCHAR, period VARCHAR, status VARCHAR,"
                    " claim_type VARCHAR, paid_on DATE, account VARCHAR)")
    end = "last_day(CAST(s.period || '-01' AS DATE))"
    limits = " ".join(f"WHEN i.claim_type = {lake_mod.sql_literal(name)} THEN {period.after_sql(end)}"
                      for name, period in rule.limitation_periods)
    paid = "greatest(i.paid_on, " + end + ")" if rule.keep_until == "full_payment" else "NULL"
    # One invoice per subscriber and period; if several, the latest payment and the longest claim count.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE subject_due AS
        SELECT s.number, s.period,
               CAST(CASE WHEN bool_and(i.status = 'paid' AND i.paid_on IS NOT NULL) THEN max({paid})
                         ELSE max(CASE {limits} ELSE {rule.keep.after_sql(end)} END) END + INTERVAL 1 DAY AS DATE)
                   AS due_on
        FROM (SELECT DISTINCT number, strftime(day_from, '%Y-%m') AS period FROM subject_keys
              WHERE dataset = 'billing') s
        LEFT JOIN invoice_state i ON i.number = s.number AND i.period = s.period
        GROUP BY ALL""")


def _due_sql(policy: Policy, categories: dict[str, RetentionRule], billing_rule: RetentionRule) -> str:
    """The due date of a row of `key_due` (alias k, subject_due d), per data set."""
    month_end = "last_day(k.day_from)"
    whens = ["WHEN k.dataset = 'billing' THEN d.due_on",
             # quarantine: never billed, so the default limitation period after its event's month
             f"WHEN k.dataset = 'quarantine' THEN CAST({billing_rule.keep.after_sql(month_end)} + INTERVAL 1 DAY AS DATE)",
             # analytics: its source's due date, or the earliest its source could go
             f"WHEN k.dataset = 'analytics' THEN coalesce(d.due_on, CAST({month_end} + INTERVAL 1 DAY AS DATE))"]
    for dataset in ("invoices", "roaming"):
        if dataset in categories:
            rule = categories[dataset]
            whens.append(f"WHEN k.dataset = '{dataset}' THEN CAST({rule.keep.after_sql('k.day_to')}"
                         " + INTERVAL 1 DAY AS DATE)")
    return "CASE " + " ".join(whens) + " END"


def _active_holds(con, keyring: KeyRing, holds: list[Hold]) -> None:
    """`holds`: one row per active hold and key still held (its subject's token under that key).

    A hold whose keys are all gone cannot be matched to a subject, so it holds its whole data set and
    date range: more is kept, never less.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE holds (hold_id VARCHAR, dataset VARCHAR, date_from DATE, date_to DATE,"
                " subject_kind VARCHAR, key_id VARCHAR, token BLOB)")
    held_keys = {k.key_id for k in keyring.keys}
    for h in holds:
        usable = {kid: tok for kid, tok in h.subject_tokens.items() if kid in held_keys}
        for kid, tok in (usable or {None: None}).items():
            con.execute("INSERT INTO holds VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [h.hold_id, h.dataset, h.date_from, h.date_to, h.subject_kind if kid else None, kid,
                         bytes.fromhex(tok) if tok else None])


def _known_tokens(con, keyring: KeyRing) -> None:
    """`known_tokens`: the lake's numbers (and, when a hold names a subject, its accounts) tokenized once
    with every held key that analytics or roaming rows, or a hold, were made with — HMAC over distinct
    values only, inside DuckDB. Analytics rows find their number here, and holds their subject's rows."""
    con.execute("CREATE OR REPLACE TEMP TABLE known_tokens (number VARCHAR, account VARCHAR, key_id VARCHAR,"
                " token BLOB)")
    wanted = {kid for (kid,) in con.execute(
        "SELECT key_id FROM subject_keys WHERE key_id IS NOT NULL UNION SELECT key_id FROM holds"
        " WHERE subject_kind IS NOT NULL").fetchall()}
    keys = [k for k in keyring.keys if k.key_id in wanted]
    if not keys:
        return
    accounts = "UNION SELECT 'account', account FROM invoice_state WHERE account IS NOT NULL" if con.execute(
        "SELECT count(*) FROM holds WHERE subject_kind = 'account'").fetchone()[0] else ""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE known_subjects AS
        SELECT DISTINCT 'msisdn' AS kind, number AS value FROM subject_keys WHERE number IS NOT NULL AND number <> ''
        UNION SELECT 'msisdn', number FROM invoice_state WHERE number IS NOT NULL {accounts}""")
    for key in keys:
        hmac_expr, hmac_params = token_sql(key, "kind", "value")
        lake_mod.execute(con, f"INSERT INTO known_tokens SELECT CASE WHEN kind = 'msisdn' THEN value END,"
                              f" CASE WHEN kind = 'account' THEN value END, $kid, {hmac_expr}"
                              " FROM known_subjects", {"kid": key.key_id, **hmac_params})


def _hold_scope(con) -> None:
    """`hold_scope`: one row per active hold and subject form the sweep meets (number, account, token).

    Subjects are stored as tokens: a subscriber hold finds its numbers, an account hold its account and
    the account's subscribers, through `known_tokens`. Analytics and roaming rows carry tokens made with
    their partition's key, so the subject's numbers are matched under those keys too.
    """
    # A subscriber's numbers, and an account's subscribers, under the hold's key ...
    con.execute("""CREATE OR REPLACE TEMP TABLE hold_numbers AS
        SELECT DISTINCT h.hold_id, s.number FROM holds h JOIN known_tokens s
          ON h.subject_kind = 'subscriber' AND s.key_id = h.key_id AND s.token = h.token AND s.number IS NOT NULL
        UNION
        SELECT DISTINCT h.hold_id, i.number FROM holds h JOIN known_tokens s
          ON h.subject_kind = 'account' AND s.key_id = h.key_id AND s.token = h.token AND s.account IS NOT NULL
        JOIN invoice_state i ON i.account = s.account""")
    # ... then every form the sweep meets: the number, the account, and the number's token under each key.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE hold_scope AS
        SELECT DISTINCT h.hold_id, h.dataset, h.date_from, h.date_to,
               h.subject_kind IS NULL AS any_subject, f.number, f.account, f.key_id, f.token
        FROM (SELECT DISTINCT hold_id, dataset, date_from, date_to, subject_kind FROM holds) h
        LEFT JOIN (
            SELECT n.hold_id, n.number, NULL AS account, NULL AS key_id, NULL::BLOB AS token FROM hold_numbers n
            UNION ALL SELECT n.hold_id, NULL, NULL, s.key_id, s.token
                      FROM hold_numbers n JOIN known_tokens s ON s.number = n.number
            UNION ALL SELECT hold_id, NULL, NULL, key_id, token FROM holds
                      WHERE subject_kind = 'subscriber' AND token IS NOT NULL
            UNION ALL SELECT h.hold_id, NULL, s.account, NULL, NULL FROM holds h JOIN known_tokens s
                      ON h.subject_kind = 'account' AND s.key_id = h.key_id AND s.token = h.token
                      AND s.account IS NOT NULL
        ) f ON f.hold_id = h.hold_id""")


def _anonymize_first(lake: Lake, policy: Policy, plan: _Plan, run_id: str, say) -> None:
    """Billing rows are anonymized, not only deleted: their day's k-anonymous aggregate must exist first.

    The aggregates zone holds the released counts of every day that reached analytics; a day that is
    missing there (its aggregate was never made) is aggregated now, before any analytics row goes.
    """
    days = sorted({j.partition.split("=", 1)[1] for j in plan.jobs if j.action == "anonymized" and
                   j.dataset == "billing"})
    for day in days:
        if (lake.zone("aggregates") / f"event_date={day}").exists():
            continue
        if not list((lake.zone("analytics") / f"event_date={day}").glob("*.parquet")):
            continue      # nothing to aggregate from: the day's counts stay in the audit store only
        say(f"anonymize: aggregating {day} before its rows go")
        aggregate_day(f"{lake.zone('analytics')}/event_date={day}/*.parquet", policy,
                      lake.work_dir(run_id) / f"aggregate-{day}", lake.zone("aggregates"))


# ------------------------------------------------------------------------------------------ rewriting

def _rewrite(con, lake: Lake, job: Job, journal: "Journal", cc: str) -> dict:
    """Rewrite `job.file` without the rows of its due keys: temp file, fsync, rename; remove if none stay."""
    path = lake.root / job.file
    before = lake_mod.sha256_file(path)
    value = job.partition.split("=", 1)[1]
    entry = {**asdict(job), "before_sha256": before, "after_sha256": None, "rows_kept": job.rows_before -
             job.rows_removed, "evidence": None, "state": "intent"}
    if job.rows_removed < job.rows_before:
        lake_mod.execute(con, "CREATE OR REPLACE TEMP TABLE removed_keys AS SELECT key FROM removal WHERE file = $file",
                         {"file": job.file})
        columns = _columns(con, path)
        source = _row_source(job.dataset, columns)
        tmp = path.with_name(f".{path.name}.retention-tmp")
        # What the proof will look for: identifiers that only the removed rows hold.
        evidence = lake.work_dir(run_id_for(date.fromisoformat(journal.as_of))) / "evidence" / (
            hashlib.sha256(job.file.encode()).hexdigest()[:16] + ".parquet")
        evidence.parent.mkdir(parents=True, exist_ok=True)
        _write_evidence(con, job, source, path, value, evidence, cc, columns)
        kept = lake_mod.execute(con, f"""
            COPY (SELECT {', '.join(columns)} FROM {source}
                  WHERE {_subject_key(job.dataset, columns)} NOT IN (SELECT key FROM removed_keys))
            TO $tmp (FORMAT parquet, COMPRESSION zstd)""", {"path": str(path), "value": value, "tmp": str(tmp),
                                                             "cc": cc}).fetchone()[0]
        if kept != entry["rows_kept"]:
            tmp.unlink(missing_ok=True)
            raise RetentionError(f"{job.file}: expected to keep {entry['rows_kept']} rows, the rewrite kept {kept}")
        entry.update(after_sha256=lake_mod.sha256_file(tmp), evidence=str(evidence))
        journal.intend(entry)
        lake_mod.commit_file(tmp, path)   # commit point: the file without its due rows
    else:
        journal.intend(entry)
        path.unlink()                      # every row is due: the whole file goes
        _remove_empty_dirs(path.parent, lake.zone(job.dataset))
    entry["state"] = "done"
    return entry


def _write_evidence(con, job: Job, source: str, path: Path, value: str, evidence: Path, cc: str,
                    columns: list[str]) -> None:
    """The identifiers only removed rows hold, written to the sweep's work dir for the proof."""
    idents = _identifiers(job.dataset, columns)
    union = " UNION ALL ".join(f"SELECT CAST({c} AS VARCHAR) AS ident FROM {{rows}} WHERE {c} IS NOT NULL"
                               for c in idents)
    key = _subject_key(job.dataset, columns)
    lake_mod.execute(con, f"""
        COPY (WITH src AS (SELECT *, {key} IN (SELECT key FROM removed_keys) AS removed FROM {source}),
                   gone AS (SELECT * FROM src WHERE removed), stays AS (SELECT * FROM src WHERE NOT removed)
              SELECT DISTINCT ident FROM ({union.format(rows='gone')})
              EXCEPT SELECT ident FROM ({union.format(rows='stays')}))
        TO $dst (FORMAT parquet)""", {"path": str(path), "value": value, "dst": str(evidence), "cc": cc})


# Identifying columns, whose values of removed rows must be gone from the file afterwards.
_IDENTIFYING = ("record_id", "origin_number", "destination_number", "redirection_number", "imsi", "imei",
                "invoice_id", "subscriber_number", "account_id")
_TOKENS = ("origin_number", "destination_number", "redirection_number", "imsi", "subscriber_token")


def _identifiers(dataset: str, columns: list[str]) -> list[str]:
    if dataset in ("analytics", "roaming"):      # tokens (BLOB), compared as hex
        return [f"hex({c})" for c in _TOKENS if c in columns]
    return [c for c in _IDENTIFYING if c in columns]


def _remove_empty_dirs(folder: Path, zone: Path) -> None:
    while folder != zone and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _prove(con, lake: Lake, done: dict) -> Proof:
    """Re-read the file after the sweep: none of the removed rows' own identifiers may remain.

    Checked twice: in the decompressed values (every identifying column, read back through DuckDB)
    and in the raw bytes of the file (footer statistics and dictionary pages included).
    """
    path = lake.root / done["file"]
    # A file that lost all its rows is gone: there is nothing left to search, only its absence to confirm.
    evidence = Path(done["evidence"]) if done["evidence"] else None
    idents = [r[0] for r in con.execute("SELECT ident FROM read_parquet($e)", {"e": str(evidence)}).fetchall()] \
        if evidence and evidence.exists() else []
    found = 0
    if path.exists() and idents:
        con.execute("CREATE OR REPLACE TEMP TABLE gone_idents AS SELECT unnest($i::VARCHAR[]) AS ident", {"i": idents})
        cols = _identifiers(done["dataset"], _columns(con, path))
        union = " UNION ALL ".join(f"SELECT CAST({c} AS VARCHAR) AS ident FROM read_parquet($path,"
                                   " hive_partitioning = false)" for c in cols)
        found += con.execute(f"SELECT count(DISTINCT ident) FROM ({union}) WHERE ident IN (SELECT ident FROM"
                             " gone_idents)", {"path": str(path)}).fetchone()[0]
        # Raw bytes: every run of identifier characters in the file (values of plain and dictionary pages,
        # footer min/max statistics) against the removed text identifiers; tokens are raw bytes in the
        # file, so their statistics are compared as bytes.
        runs = set(_IDENT_RUN.findall(path.read_bytes()))
        found += sum(1 for i in idents if i.encode() in runs)
        stats = {v for (v,) in con.execute(
            "SELECT unnest([stats_min_value, stats_max_value]) FROM parquet_metadata($path)", {"path": str(path)})
            .fetchall() if v is not None}
        found += sum(1 for i in idents if i in stats)
    stray = list(path.parent.glob(f".{path.name}.retention-tmp")) if path.parent.exists() else []
    return Proof(done["dataset"], done["partition"], Path(done["file"]).name,
                 "rewritten" if path.exists() else "removed", done["rows_removed"], len(idents),
                 found + len(stray))


# ------------------------------------------------------------------------------------------ the journal

class Journal:
    """What this day's sweep has done to files, kept on disk so a killed sweep is finished, not redone."""

    def __init__(self, path: Path):
        self.path = path
        self.as_of = path.parent.name
        self.doc = audit.read_json(path, default={"as_of": self.as_of, "files": {}})

    def _save(self) -> None:
        audit.write_json_atomic(self.path, self.doc)

    def intend(self, entry: dict) -> None:
        self.doc["files"][entry["file"]] = entry
        self._save()

    def record(self, entry: dict) -> None:
        self.doc["files"][entry["file"]] = entry
        self._save()

    def resume(self, say) -> None:
        """Settle the entries a killed sweep left as intents: done if the file is already the new one."""
        for entry in self.doc["files"].values():
            if entry["state"] != "intent":
                continue
            path = self.path.parents[3] / entry["file"]    # LAKE/audit/retention/<as of>/journal.json
            current = lake_mod.sha256_file(path) if path.exists() else None
            if current == entry["after_sha256"]:
                entry["state"] = "done"
                say(f"resumed: {entry['file']} had been rewritten")
            elif current == entry["before_sha256"]:
                entry["state"] = "dropped"          # not rewritten yet: tonight's plan redoes it
                path.with_name(f".{path.name}.retention-tmp").unlink(missing_ok=True)
            else:
                entry["state"] = "dropped"
        self._save()

    def prove(self, check: Callable[[dict], Proof]) -> list[Proof]:
        """Proofs of every file done, each checked once (right after its rewrite) and kept with its entry."""
        for e in self.done():
            if "proof" not in e:
                e["proof"] = asdict(check(e))
        self._save()
        return sorted((Proof(**e["proof"]) for e in self.done()),
                      key=lambda pr: (pr.dataset, pr.partition, pr.file_name))

    def done(self) -> list[dict]:
        return [e for e in self.doc["files"].values() if e["state"] == "done"]

    def removal_actions(self) -> list[RetentionAction]:
        acc: dict[tuple, dict] = {}
        for e in self.done():
            a = acc.setdefault((e["dataset"], e["partition"], e["category"], e["action"]),
                               {"rows": 0, "files": 0, "due_on": e["due_on"], "basis": e["legal_basis"],
                                "clause": e["clause"]})
            a["rows"] += e["rows_removed"]
            a["files"] += 1
            a["due_on"] = min(a["due_on"], e["due_on"])
        return [RetentionAction(d, p, c, act, v["rows"], v["due_on"], v["basis"], v["clause"], None, v["files"])
                for (d, p, c, act), v in acc.items()]

    def close(self) -> None:
        self.doc["completed"] = True
        self._save()


# ------------------------------------------------------------------------------------------ the audit

def _record(lake: Lake, policy: Policy, result: SweepResult) -> None:
    """Replace this sweep's rows in the audit store and chain one log entry of counts."""
    now = audit.now_utc()
    action_rows = [[result.run_id, result.as_of, a.dataset, a.partition, a.category, a.action, a.rows, a.due_on,
                    a.legal_basis, a.clause, a.hold_ids, a.files, False] for a in result.actions]
    proof_rows = [[result.run_id, p.dataset, p.partition, p.file_name, p.outcome, p.rows_removed,
                   p.identifiers_checked, p.identifiers_found, p.ok, now] for p in result.proofs]
    summary = {
        "as_of": result.as_of, "policy_version": policy.version, "policy_sha256": policy.sha256,
        "rows": {act: result.rows(act) for act in ("deleted", "anonymized", "held", "kept")},
        "files_rewritten": sum(p.outcome == "rewritten" for p in result.proofs),
        "files_removed": sum(p.outcome == "removed" for p in result.proofs),
        "proofs_ok": all(p.ok for p in result.proofs),
    }
    digest = hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()[:16]
    with audit.writing(lake) as con:
        con.execute("BEGIN TRANSACTION")
        for table in audit.RETENTION_TABLES:
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [result.run_id])
        if action_rows:
            con.executemany("INSERT INTO retention_actions VALUES (" + ", ".join("?" * 13) + ")", action_rows)
        if proof_rows:
            con.executemany("INSERT INTO retention_proofs VALUES (" + ", ".join("?" * 10) + ")", proof_rows)
        audit.append_log(con, [audit.LogEvent(f"{result.run_id}:{digest}", "retention", "retention_sweep",
                                              result.run_id, summary)], now)
        audit.define_views(con, lake)
        con.execute("COMMIT")
        audit.export_parquet(con, lake)
