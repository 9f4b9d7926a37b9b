"""transforms/formats/calling_codes.py: the country calling codes, taken from the `phonenumbers` metadata.

What a code must be comes from ITU-T E.164 and its list of assigned codes, written here by hand: one to
three digits, never starting with 0; 1 (the North American Numbering Plan) and 7 (Russia, Kazakhstan)
are the only one-digit codes; zone 8 holds the international networks (882, 883) and services (800,
808, 870); 280-289 and 999 are spare.
"""

from __future__ import annotations

import phonenumbers

from transforms.formats.calling_codes import CALLING_CODES_BY_LENGTH


def test_the_table_is_the_metadata_by_length():
    table = [c for codes in CALLING_CODES_BY_LENGTH.values() for c in codes]
    assert sorted(table) == sorted(str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    assert len(table) == len(set(table))
    assert all(len(c) == n for n, codes in CALLING_CODES_BY_LENGTH.items() for c in codes)


def test_calling_codes_are_prefix_free_in_the_metadata():
    # So a number starts with at most one code: the longest match is the only match.
    codes = {str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
    assert all(c[:n] not in codes for c in codes for n in range(1, len(c)))


def test_codes_have_the_shape_e164_gives_them():
    assert set(CALLING_CODES_BY_LENGTH) == {1, 2, 3}
    assert CALLING_CODES_BY_LENGTH[1] == ("1", "7")
    assert not any(c.startswith("0") for codes in CALLING_CODES_BY_LENGTH.values() for c in codes)


def test_assigned_and_spare_codes():
    three = CALLING_CODES_BY_LENGTH[3]
    two = CALLING_CODES_BY_LENGTH[2]
    assert {"386", "354", "385", "882", "883", "800", "870"} <= set(three)   # SI, IS, HR; networks; services
    assert {"44", "49", "43", "39", "36", "20", "27"} <= set(two)            # GB, DE, AT, IT, HU, EG, ZA
    assert not [c for c in three if c.startswith("28") or c == "999"]         # spare
    assert "28" not in two
