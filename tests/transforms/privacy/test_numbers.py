"""transforms/privacy/numbers.py: every spelling of one number is one E.164 identifier (SQL and Python twins).

The country calling code and the national number length come from the policy's `operator`.
"""

from __future__ import annotations

import dataclasses

import duckdb
import pytest

from transforms.privacy.numbers import e164_sql, normalize, normalize_e164, normalize_sql, numbering_params

E164_CASES = [
    ("+38640123456", "+38640123456"),
    ("040123456", "+38640123456"),
    ("0038640123456", "+38640123456"),
    ("38640123456", "+38640123456"),            # bare digits: cc + 8-digit national number
    ("+386 40 123 456", "+38640123456"),
    ("040/123-456", "+38640123456"),
    ("(040) 123 456", "+38640123456"),
    ("00 386 40 123 456", "+38640123456"),
    ("  040123456  ", "+38640123456"),
    ("01 234 56 78", "+38612345678"),           # Ljubljana landline
    ("+4915012345678", "+4915012345678"),
    ("004915012345678", "+4915012345678"),
    ("+1 (212) 555-0100", "+12125550100"),
    ("100", "100"),                             # short codes stay
    ("112", "112"),
    ("1970", "1970"),
    ("*123#", "*123#"),
    (" *100*1# ", "*100*1#"),
    ("anna@example.si", "anna@example.si"),
    ("3864012345", "3864012345"),               # cc but one digit short: not an E.164 number
    ("386401234567", "386401234567"),           # one digit long
    ("4915012345678", "4915012345678"),         # bare digits of another country: left alone
    ("40123456", "40123456"),                   # national number without trunk 0: left alone
    ("0", "0"),
    ("00", "00"),
    ("000386401", "000386401"),
    ("+", "+"),
    ("+386 4O 123", "+386 4O 123"),             # letter O: not a number, trimmed text
    ("", ""),
    ("\t040123456", "\t040123456"),             # only spaces are trimmed (as DuckDB trim)
    ("0-", "0-"),
    ("sip:100@pbx", "sip:100@pbx"),
]


def sql_e164(texts: list[str | None], operator) -> dict:
    """{text: e164_sql(text)} evaluated by DuckDB with the operator's numbering bound."""
    con = duckdb.connect()
    try:
        return dict(con.execute(f"SELECT x, {e164_sql('x')} FROM unnest($texts) AS u(x)",
                                {"texts": texts, **numbering_params(operator)}).fetchall())
    finally:
        con.close()


def test_policy_numbering_is_slovenian(policy):
    assert numbering_params(policy.operator) == {"cc": "386", "nsn": 8}


def test_e164_python_cases(policy):
    for text, expected in E164_CASES:
        assert normalize_e164(text, policy.operator) == expected, text


def test_e164_sql_agrees_with_python(policy):
    texts = [t for t, _ in E164_CASES]
    assert sql_e164(texts, policy.operator) == {t: normalize_e164(t, policy.operator) for t in texts}
    assert sql_e164([None], policy.operator) == {None: None}


@pytest.mark.parametrize("cc, nsn, text, expected", [
    # A numbering plan of 9-digit national numbers: cc + 9 digits is a number written without '+' ...
    ("386", 9, "386401234567", "+386401234567"),
    # ... and cc + 8 digits (the real plan's length) no longer is.
    ("386", 9, "38640123456", "38640123456"),
    ("386", 9, "3864012345678", "3864012345678"),   # cc + 10: too long
    ("386", 9, "0401234567", "+386401234567"),      # the trunk 0 does not depend on the length
    # Another operator: its own country code decides, the Slovenian one is left alone.
    ("41", 9, "41791234567", "+41791234567"),
    ("41", 9, "38640123456", "38640123456"),
    ("41", 9, "0791234567", "+41791234567"),
])
def test_national_number_length_comes_from_the_operator(policy, cc, nsn, text, expected):
    operator = dataclasses.replace(policy.operator, country_calling_code=cc, national_number_length=nsn)
    assert normalize_e164(text, operator) == expected
    assert sql_e164([text], operator) == {text: expected}


def test_normalize_by_kind(policy):
    con = duckdb.connect()
    try:
        for value, kind, expected in [("040 123 456", "msisdn", "+38640123456"),
                                      (" 293401234567890 ", "imsi", "293401234567890"),
                                      ("040123456", "imsi", "040123456")]:     # an IMSI is never a number
            assert normalize(value, kind, policy.operator) == expected
            got = con.execute(f"SELECT {normalize_sql('$v', kind)}",
                              {"v": value, **(numbering_params(policy.operator) if kind == "msisdn" else {})}
                              ).fetchone()[0]
            assert got == expected
    finally:
        con.close()
