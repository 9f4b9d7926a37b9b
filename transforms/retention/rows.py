"""How the sweep reads each data set's rows: their source, their subject, their day, their identifiers.

Rows of one subject key in one file share their due date and their holds, so the sweep plans, rewrites
and proves per (file, subject key). Column names here are the pipeline's own (the policy's canonical
columns, the payments and consent extracts', the roaming zone's); numbers are compared in E.164, as tokens are
made.
"""

from __future__ import annotations


from transforms.lake.partitions import part_files  # noqa: F401  (the sweep's and the finders' listing)
from transforms.marketing.schema import SUBSCRIBER_TOKEN
from transforms.policy import RECORD_ID, Policy
from transforms.privacy.numbers import e164_sql
from transforms.privacy.tokens import KEY_ID_COLUMN
from transforms.steps.billing import served_party_sql
from transforms.steps.consents import IDENTIFYING_COLUMNS as CONSENT_IDENTIFIERS
from transforms.steps.payments import IDENTIFYING_COLUMNS as INVOICE_IDENTIFIERS

# The served subscriber's number of a CDR row.
SERVED_NUMBER = served_party_sql("destination_number", "origin_number")
# The roaming and marketing zones' token column (their rows are one subscriber each).
ROAMING_TOKEN = SUBSCRIBER_TOKEN
# A consent register row's event: subscriber, purpose, instant and status.
CONSENT_EVENT_KEY = "concat_ws('|', subscriber_number, purpose, CAST(recorded_at AS VARCHAR), status)"


def served_number(columns: list[str]) -> str:
    """The served subscriber's number in a file of CDR rows, or of payments rows (quarantine holds both)."""
    if "direction" in columns:
        return SERVED_NUMBER
    return "subscriber_number" if "subscriber_number" in columns else "CAST(NULL AS VARCHAR)"


def row_day(columns: list[str]) -> str:
    """A quarantined row's day: its event's, its billing period's, else the night it was quarantined."""
    parts = ["CAST(TRY_CAST(start_time AS TIMESTAMP) AS DATE)" if "start_time" in columns else None,
             "TRY_CAST(billing_period || '-01' AS DATE)" if "billing_period" in columns else None, "night"]
    return "coalesce(" + ", ".join(p for p in parts if p) + ")"


def row_source(dataset: str, columns: list[str]) -> str:
    """One part file's rows (`$path`) as the sweep reads them, planning and rewriting alike: a quarantine
    file gets its night back from the folder (`$value`), CDR and payments rows their served number in
    E.164 (`served_e164`, computed once per row; binds `numbering_params`)."""
    extra = ""
    if dataset == "quarantine":
        extra += ", CAST($value AS DATE) AS night"
    if dataset in ("billing", "quarantine"):
        extra += f", {e164_sql(served_number(columns))} AS served_e164"
    return f"(SELECT *{extra} FROM read_parquet($path, hive_partitioning = false))"


def subject_key(dataset: str, columns: list[str]) -> str:
    """SQL of a `row_source` row's subject key: rows of one key in one file share their due date and their
    holds."""
    if dataset == "billing":
        return "coalesce(served_e164, '')"
    if dataset == "quarantine":
        return f"coalesce(served_e164, '') || '|' || CAST({row_day(columns)} AS VARCHAR)"
    if dataset == "analytics":
        return f"{KEY_ID_COLUMN} || ':' || coalesce(hex({SERVED_NUMBER}), '')"
    if dataset == "invoices":
        return "coalesce(subscriber_number, '') || '|' || coalesce(account_id, '')"
    if dataset == "consents":
        # One consent event (copies of it from overlapping extracts alike): each is superseded on its own day.
        return CONSENT_EVENT_KEY
    return f"{KEY_ID_COLUMN} || ':' || hex({ROAMING_TOKEN})"      # roaming, marketing: one subscriber a row


def identifier_columns(dataset: str, columns: list[str], policy: Policy) -> list[str]:
    """SQL of the identifying values of a file's rows, which must be gone after their rows are removed:
    record ids, numbers, IMSIs, IMEIs and invoice identifiers; in analytics, roaming and marketing, the tokens
    (as hex; a marketing row's named called parties are others' subjects, proved by their own rows)."""
    if dataset in ("analytics", "roaming", "marketing"):
        return [f"hex({c})" for c in (*policy.columns_treated("tokenize"), ROAMING_TOKEN) if c in columns]
    named = (RECORD_ID, *policy.subject_identifier_columns, *INVOICE_IDENTIFIERS, *CONSENT_IDENTIFIERS)
    return [c for c in dict.fromkeys(named) if c in columns]
