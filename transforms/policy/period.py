"""Retention periods in civil calendar terms (docs/design.md §3)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

_PERIOD = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$")


class PolicyError(ValueError):
    """The policy file is missing, unreadable or breaks a rule; names the key."""


@dataclass(frozen=True)
class Period:
    """An ISO-8601 calendar period (years, months, days)."""

    years: int = 0
    months: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str, key: str) -> "Period":
        m = _PERIOD.match(str(text))
        if not m or text == "P":
            raise PolicyError(f"{key}: expected an ISO-8601 period like P6M or P10Y, got {text!r}")
        return cls(*(int(g or 0) for g in m.groups()))

    def __str__(self) -> str:
        parts = [f"{n}{u}" for n, u in ((self.years, "Y"), (self.months, "M"), (self.days, "D")) if n]
        return "P" + ("".join(parts) or "0D")

    def __add__(self, other: "Period") -> "Period":
        """Two periods run one after the other, counted as one from the same start (a one-month answer period
        and its extension end on the civil date the two together reach, not on a clamped end plus more)."""
        return Period(self.years + other.years, self.months + other.months, self.days + other.days)

    def after(self, start: date) -> date:
        """The day a period that starts on `start` ends on (OZ Art. 59, civil reckoning).

        Years and months count calendar months to the same day number; when that month is shorter,
        the period ends on its last day (31 Aug plus half a year is 28 Feb; 29 Feb plus a year is 28 Feb).
        Days are added after. ``after_sql`` is the DuckDB twin; a test keeps them in step.
        """
        months = start.month - 1 + 12 * self.years + self.months
        year, month = start.year + months // 12, months % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return date(year, month, day) + timedelta(days=self.days)

    def after_sql(self, start_sql: str) -> str:
        """DuckDB expression for ``after`` over the DATE expression `start_sql` (DuckDB also clamps)."""
        return (f"CAST(CAST({start_sql} AS DATE) + to_months({12 * self.years + self.months})"
                f" + to_days({self.days}) AS DATE)")
