"""Which of the lake's rows an active legal hold covers (docs/design.md §3).

A hold's subject is stored only as tokens (`holds`): a subscriber hold finds its numbers, an account hold
its account and the account's subscribers, by tokenizing the lake's numbers and accounts with every key
the hold or the lake's tokens were made with — HMAC over distinct values only, inside DuckDB. Analytics
and roaming rows carry tokens made with their partition's key, so a subject is matched under those keys
too.
"""

from __future__ import annotations

from transforms.lake.connection import execute
from transforms.privacy.keys import KeyRing
from transforms.privacy.tokens import token_sql
from transforms.retention.holds import Hold


def active_holds(con, keyring: KeyRing, holds: list[Hold]) -> None:
    """`holds`: one row per active hold and key still held (its subject's token under that key).

    A hold whose keys are all gone cannot be matched to a subject, so it holds its whole data set and
    date range: more is kept, never less.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE holds (hold_id VARCHAR, dataset VARCHAR, date_from DATE, date_to DATE,"
                " subject_kind VARCHAR, key_id VARCHAR, token BLOB)")
    held_keys = {k.key_id for k in keyring.keys}
    for h in holds:
        usable = {kid: tok for kid, tok in h.tokens.items() if kid in held_keys}
        for kid, tok in (usable or {None: None}).items():
            con.execute("INSERT INTO holds VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [h.hold_id, h.dataset, h.date_from, h.date_to, h.subject_kind if kid else None, kid,
                         bytes.fromhex(tok) if tok else None])


def known_tokens(con, keyring: KeyRing) -> None:
    """`known_tokens`: the lake's numbers (and, when a hold names an account, its accounts) tokenized once
    with every held key that analytics or roaming rows, or a hold, were made with. Analytics rows find
    their number here, and holds their subject's rows."""
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
        execute(con, f"INSERT INTO known_tokens SELECT CASE WHEN kind = 'msisdn' THEN value END,"
                     f" CASE WHEN kind = 'account' THEN value END, $kid, {hmac_expr}"
                     " FROM known_subjects", {"kid": key.key_id, **hmac_params})


def hold_scope(con) -> None:
    """`hold_scope`: one row per active hold and subject form the sweep meets (number, account, token)."""
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
