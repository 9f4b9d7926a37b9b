"""Phone numbers to E.164, so the national, `00` and `+` spellings of one number are one identifier.

Tokens are made from the normalized text (docs/design.md §4), billing and the payments extract store the
served number in the same form, and the retention sweep compares numbers in it. The operator's country
calling code and national number length come from the policy (`operator`), bound as `$cc` and `$nsn`.
"""

from __future__ import annotations

import re

from transforms.policy import Operator

# Separators people write inside numbers; removed before the shape is judged.
_SEPARATORS = "[ ()/-]"


def numbering_params(operator: Operator) -> dict:
    """The parameters `e164_sql` binds: the operator's country code and national number length."""
    return {"cc": operator.country_calling_code, "nsn": operator.national_number_length}


def e164_sql(column_sql: str) -> str:
    """A DuckDB expression normalizing the text `column_sql` to E.164; binds ``$cc`` and ``$nsn``.

    Separators (space ( ) / -) are removed; ``00…`` → ``+…``; one national trunk ``0`` →
    ``+<cc>…``; ``+…`` kept; bare digits ``<cc>`` + national number → ``+`` prepended. Anything
    else (short codes, ``*123#``, an e-mail) is returned trimmed. NULL stays NULL.
    ``normalize_e164`` is the Python twin; a test keeps them in step.
    """
    raw = f"CAST({column_sql} AS VARCHAR)"
    s = f"regexp_replace(trim({raw}), '{_SEPARATORS}', '', 'g')"
    return (
        # Most spellings are already E.164: answered before the separators are stripped (3x faster).
        f"CASE WHEN regexp_full_match({raw}, '[+][0-9]+') THEN {raw}"
        f" WHEN regexp_full_match({s}, '[+][0-9]+') THEN {s}"
        f" WHEN regexp_full_match({s}, '00[1-9][0-9]*') THEN '+' || substr({s}, 3)"
        f" WHEN regexp_full_match({s}, '0[1-9][0-9]*') THEN '+' || $cc || substr({s}, 2)"
        f" WHEN regexp_full_match({s}, '[0-9]+') AND starts_with({s}, $cc)"
        f" AND length({s}) = length($cc) + $nsn THEN '+' || {s}"
        f" ELSE trim(CAST({column_sql} AS VARCHAR)) END"
    )


def normalize_e164(text: str, operator: Operator) -> str:
    """Python twin of ``e164_sql`` (same rules), for lookups."""
    cc = operator.country_calling_code
    trimmed = text.strip(" ")           # DuckDB's trim() removes spaces only
    s = re.sub(_SEPARATORS, "", trimmed)
    if re.fullmatch(r"[+][0-9]+", s):
        return s
    if re.fullmatch(r"00[1-9][0-9]*", s):
        return "+" + s[2:]
    if re.fullmatch(r"0[1-9][0-9]*", s):
        return "+" + cc + s[1:]
    if re.fullmatch(r"[0-9]+", s) and s.startswith(cc) and len(s) == len(cc) + operator.national_number_length:
        return "+" + s
    return trimmed


def normalize(value: str, kind: str, operator: Operator) -> str:
    """The text a token is made from: E.164 for numbers, trimmed text for other identifiers."""
    return normalize_e164(value, operator) if kind == "msisdn" else value.strip(" ")


def normalize_sql(column_sql: str, kind: str) -> str:
    """SQL twin of `normalize` (binds `numbering_params` for numbers)."""
    return e164_sql(column_sql) if kind == "msisdn" else f"trim(CAST({column_sql} AS VARCHAR))"
