"""Calendar months as the roaming zone names them ('YYYY-MM'), and the window of months assessed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def check_month(month: str) -> str:
    if not isinstance(month, str) or not _MONTH.fullmatch(month):
        raise ValueError(f"expected a month as 'YYYY-MM', got {month!r}")
    return month


def is_month(text: str) -> bool:
    return bool(_MONTH.fullmatch(text))


def shift_month(month: str, n: int) -> str:
    """`month` moved by `n` calendar months ('2026-01', -1 -> '2025-12')."""
    y, m = map(int, check_month(month).split("-"))
    i = y * 12 + m - 1 + n
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


def last_day(month: str) -> date:
    """The last day of `month`."""
    y, m = map(int, shift_month(month, 1).split("-"))
    return date.fromordinal(date(y, m, 1).toordinal() - 1)


def window_months(as_of_month: str, length: int) -> tuple[str, ...]:
    """The `length` months ending with `as_of_month`, oldest first."""
    return tuple(shift_month(as_of_month, -k) for k in range(length - 1, -1, -1))


def affected_months(event_dates: Iterable[str | date]) -> list[str]:
    """The months to rebuild after a night wrote these billing event dates (sorted, distinct)."""
    return sorted({str(d)[:7] for d in event_dates})
