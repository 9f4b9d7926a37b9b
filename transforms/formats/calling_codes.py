"""The country calling codes of the international numbering plan, for the `calling_code` derivation.

Taken once, at import, from the metadata of the `phonenumbers` package (every calling code it knows a
numbering plan for: the countries and the international networks and services), never written here
by hand. The codes are prefix-free — no code is the beginning of another — so the one code a number
starts with is found by trying each length (docs/design.md §1, policy billing_data items 14 and 15).
"""

from __future__ import annotations

import phonenumbers


def _codes_by_length() -> dict[int, tuple[str, ...]]:
    codes = sorted(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    return {n: tuple(c for c in codes if len(c) == n) for n in sorted({len(c) for c in codes})}


# Code length (digits) -> the calling codes of that length, e.g. 1 -> ("1", "7").
CALLING_CODES_BY_LENGTH: dict[int, tuple[str, ...]] = _codes_by_length()

