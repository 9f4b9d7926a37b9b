"""When each row falls due: its subject keys read from the lake, the payments that end billing retention,
and the catalog's periods per data set (policy `retention`; docs/design.md §3).

=============  =========================================================================
billing        until full payment (the invoice of the served subscriber's billing period
               is `paid` in the latest payments extract: due the day after the payment, not
               before the period ends), else the claim type's limitation period after the
               end of the billing period (the category's `keep` when no invoice is known).
quarantine     rejected rows were never billed: the billing category's `keep` after the
               end of their event's month (the night's, when the time did not parse).
analytics      never longer than its source: the due date of the billing rows of the same
               subscriber and month, found by re-deriving the subscriber's token with the
               partition's key; a row that cannot be matched (its source is gone, or its key
               is no longer held) is due the day after its billing period ends — the
               earliest its source could have gone.
invoices       the invoice category's `keep` after the end of the invoice year.
roaming        the roaming category's `keep` after the end of the aggregated month.
marketing      the consent category's `keep` after the day the consent the row was
               made on was withdrawn: the spell of the subscriber's latest grant before the
               end of the row's day (`consents.spells`, the register as known on the sweep's
               day). A re-grant after that withdrawal, even before the sweep ran, revives
               nothing: the rows were made on the consent withdrawn, and a new consent covers
               new processing only. A row naming called parties rests on their consents too,
               and is due on the earliest of them. A row whose consent cannot be shown (no
               grant before its day, or its key no longer held) is due at once.
=============  =========================================================================

Periods run in civil calendar terms (`Period.after_sql`); data are kept through the last day and are
due the next.
"""

from __future__ import annotations

from pathlib import Path

from datetime import date

from transforms.consents.spells import define_spells
from transforms.lake import Lake
from transforms.lake.connection import columns_of, execute, sql_literal
from transforms.marketing.schema import NAMED_PARTIES
from transforms.policy import Policy, RetentionRule
from transforms.privacy.keys import KeyRing
from transforms.privacy.numbers import numbering_params
from transforms.privacy.purpose import NUMBER_KIND, marketing_keyring
from transforms.privacy.tokens import KEY_ID_COLUMN, token_sql
from transforms.retention.rows import SERVED_NUMBER, part_files, row_day, row_source, subject_key


def create_subject_keys(con) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE subject_keys (dataset VARCHAR, file VARCHAR, part VARCHAR,"
                " key VARCHAR, number VARCHAR, token BLOB, key_id VARCHAR, account VARCHAR, day_from DATE,"
                " day_to DATE, rows BIGINT)")
    # A marketing row's named called parties (their marketing tokens): its due date rests on their consents too.
    con.execute("CREATE OR REPLACE TEMP TABLE marketing_named (file VARCHAR, key VARCHAR, token BLOB)")


def read_subject_keys(con, lake: Lake, policy: Policy, dataset: str, f: Path) -> None:
    """Add one file's (subject key, rows) to `subject_keys`, with what the key's due date and holds need."""
    part = f.parent.name
    value = part.split("=", 1)[1]
    rel = str(f.relative_to(lake.root))
    columns = columns_of(con, f)
    key = subject_key(dataset, columns)
    if dataset in ("billing", "analytics", "marketing"):
        day = "CAST($value AS DATE)"
        number = "served_e164" if dataset == "billing" else "NULL"
        token = {"analytics": SERVED_NUMBER, "marketing": "subscriber_token"}.get(dataset, "NULL")
        key_id = KEY_ID_COLUMN if dataset != "billing" else "NULL"
        select = (f"SELECT {key} AS key, {number} AS number, {token} AS token, {key_id} AS key_id,"
                  f" NULL AS account, {day} AS day_from, {day} AS day_to, count(*) AS rows")
    elif dataset == "quarantine":
        day = row_day(columns)
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
    execute(con, f"""
        INSERT INTO subject_keys
        SELECT $dataset, $file, $part, key, number, token, key_id, account, day_from, day_to, rows
        FROM ({select} FROM {row_source(dataset, columns)} GROUP BY ALL)""",
            {**numbering_params(policy.operator), "dataset": dataset, "file": rel, "part": part, "value": value,
             "path": str(f)})
    if dataset == "marketing" and NAMED_PARTIES in columns:
        execute(con, f"""INSERT INTO marketing_named SELECT DISTINCT $file, key, token
                         FROM (SELECT {key} AS key, unnest({NAMED_PARTIES}) AS token FROM {row_source(dataset, columns)})""",
                {"file": rel, "path": str(f)})


def marketing_due(con, policy: Policy, keyring: KeyRing, lake: Lake, as_of: date, rule: RetentionRule) -> None:
    """`marketing_due` (file, key, due_on): per marketing row, the day after its consent's withdrawal plus
    the category's `keep`, the earliest of its subscriber's and its named parties' (NULL: every consent it
    rests on still stands). Also gives marketing `subject_keys` their number, so holds find them.

    Tokens are matched to the register's numbers by tokenizing those, with every purpose key the rows were
    made with (HMAC over distinct numbers only, in DuckDB)."""
    define_spells(con, lake, policy.consent.profiling_purpose, as_of)
    con.execute("CREATE OR REPLACE TEMP TABLE marketing_known (number VARCHAR, key_id VARCHAR, token BLOB)")
    wanted = {k for (k,) in con.execute("SELECT DISTINCT key_id FROM subject_keys WHERE dataset = 'marketing'")
              .fetchall()}
    for key in (k for k in marketing_keyring(keyring, policy).keys if k.key_id in wanted):
        hmac_expr, hmac_params = token_sql(key, sql_literal(NUMBER_KIND), "number")
        execute(con, f"""INSERT INTO marketing_known SELECT number, $kid, {hmac_expr}
                         FROM (SELECT DISTINCT subscriber_number AS number FROM consent_spells)""",
                {"kid": key.key_id, **hmac_params})
    con.execute("""UPDATE subject_keys k SET number = m.number FROM marketing_known m
                   WHERE k.dataset = 'marketing' AND m.key_id = k.key_id AND m.token = k.token""")
    withdrawn = rule.keep.after_sql("CAST(s.withdrawn_at AS DATE)")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE marketing_due AS
        WITH tokens AS (
            SELECT file, key, key_id, token, day_from FROM subject_keys WHERE dataset = 'marketing'
            UNION ALL
            SELECT n.file, n.key, k.key_id, n.token, k.day_from
            FROM marketing_named n JOIN subject_keys k ON k.dataset = 'marketing' AND k.file = n.file AND k.key = n.key
        ), spell AS (      -- each token's spell: the one of the latest grant before the end of the row's day
            SELECT t.file, t.key, t.token, t.day_from, s.granted_at, s.withdrawn_at
            FROM tokens t
            LEFT JOIN marketing_known m ON m.key_id = t.key_id AND m.token = t.token
            LEFT JOIN consent_spells s ON s.subscriber_number = m.number
                 AND s.granted_at < t.day_from + INTERVAL 1 DAY
            QUALIFY row_number() OVER (PARTITION BY t.file, t.key, t.token ORDER BY s.granted_at DESC NULLS LAST) = 1
        )
        SELECT file, key,
               min(CASE WHEN granted_at IS NULL THEN day_from                  -- no consent shown: due at once
                        WHEN withdrawn_at IS NOT NULL THEN CAST({withdrawn} + INTERVAL 1 DAY AS DATE) END) AS due_on
        FROM spell s GROUP BY file, key""")


def invoice_state(con, lake: Lake) -> None:
    """`invoice_state`: each invoice as the latest payments extract that lists it says."""
    invoices = part_files(lake, "invoices")
    if invoices:
        execute(con, """
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


def subject_due(con, rule: RetentionRule) -> None:
    """`subject_due`: per served number and billing period, the day its billing rows fall due."""
    end = "last_day(CAST(s.period || '-01' AS DATE))"
    # Claim type names come from the policy file, never from input; written as quoted literals.
    limits = " ".join(f"WHEN i.claim_type = {sql_literal(name)} THEN {period.after_sql(end)}"
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


def due_sql(categories: dict[str, RetentionRule], billing_rule: RetentionRule) -> str:
    """The due date of a row of `key_due` (alias k, subject_due d), per data set."""
    month_end = "last_day(k.day_from)"
    whens = ["WHEN k.dataset = 'billing' THEN d.due_on",
             # quarantine: never billed, so the billing category's keep after its event's month
             f"WHEN k.dataset = 'quarantine' THEN CAST({billing_rule.keep.after_sql(month_end)} + INTERVAL 1 DAY AS DATE)",
             # analytics: its source's due date, or the earliest its source could go
             f"WHEN k.dataset = 'analytics' THEN coalesce(d.due_on, CAST({month_end} + INTERVAL 1 DAY AS DATE))"]
    if "marketing" in categories:      # its consent's withdrawal (`marketing_due`, alias m)
        whens.append("WHEN k.dataset = 'marketing' THEN m.due_on")
    for dataset in ("invoices", "roaming"):
        if dataset in categories:
            rule = categories[dataset]
            whens.append(f"WHEN k.dataset = '{dataset}' THEN CAST({rule.keep.after_sql('k.day_to')}"
                         " + INTERVAL 1 DAY AS DATE)")
    return "CASE " + " ".join(whens) + " END"
