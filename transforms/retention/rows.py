"""How the sweep reads each data set's rows: their source, their subject, their day, their identifiers.

Rows of one subject key in one file share their due date and their holds, so the sweep plans, rewrites
and proves per (file, subject key). Column names here are the pipeline's own (the policy's canonical
columns, the payments extract's, the roaming zone's); numbers are compared in E.164, as tokens are made.
"""

from __future__ import annotations

import re
from pathlib import Path

from transforms.lake import Lake
from transforms.marketing.schema import SUBSCRIBER_TOKEN
from transforms.policy import RECORD_ID, Policy
from transforms.privacy.numbers import e164_sql
from transforms.privacy.tokens import KEY_ID_COLUMN
from transforms.steps.billing import served_party_sql
from transforms.steps.payments import IDENTIFYING_COLUMNS as INVOICE_IDENTIFIERS

# The served subscriber's number of a CDR row.
SERVED_NUMBER = served_party_sql("destination_number", "origin_number")
# The roaming and marketing zones' token column (their rows are one subscriber each).
ROAMING_TOKEN = SUBSCRIBER_TOKEN
_PARTITION = re.compile(r"^[a-z_]+=[0-9-]+$")


def part_files(lake: Lake, dataset: str) -> list[Path]:
    """The data set's part files, in partition folders (`name=value`)."""
    return sorted(p for p in lake.zone(dataset).rglob("part*.parquet") if _PARTITION.match(p.parent.name))


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
    return f"{KEY_ID_COLUMN} || ':' || hex({ROAMING_TOKEN})"      # roaming, marketing: one subscriber a row


def identifier_columns(dataset: str, columns: list[str], policy: Policy) -> list[str]:
    """SQL of the identifying values of a file's rows, which must be gone after their rows are removed:
    record ids, numbers, IMSIs, IMEIs and invoice identifiers; in analytics, roaming and marketing, the tokens
    (as hex; a marketing row's named called parties are others' subjects, proved by their own rows)."""
    if dataset in ("analytics", "roaming", "marketing"):
        return [f"hex({c})" for c in (*policy.columns_treated("tokenize"), ROAMING_TOKEN) if c in columns]
    return [c for c in (RECORD_ID, *policy.subject_identifier_columns, *INVOICE_IDENTIFIERS) if c in columns]
