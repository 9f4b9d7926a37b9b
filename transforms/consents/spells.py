"""Spells of consent: from a grant to the withdrawal that ends it, per subscriber, for one purpose.

`register.define_standing` answers "which consent stands at the end of a day"; what was processed on a
consent needs more: when the consent it was processed on ended. A spell starts with a grant that follows
a withdrawal (or no event) and ends with the next withdrawal (NULL: it still stands). Events are ordered as
`define_standing` orders them — by `recorded_at`, a withdrawal after a grant at the same instant — so
the consent standing at the end of day D is granted exactly when a spell has `granted_at < D + 1 day <=
coalesce(withdrawn_at, ∞)` (a test holds the two to each other). docs/design.md §11.
"""

from __future__ import annotations

from datetime import date

from transforms.consents.register import register_table
from transforms.lake import Lake


def define_spells(con, lake: Lake, purpose: str, known_on: date, name: str = "consent_spells") -> int:
    """Create temp table `name` (subscriber_number, granted_at, withdrawn_at): the spells of `purpose`,
    from the events recorded before the end of `known_on` (a later event is not known yet). Returns the
    row count."""
    return register_table(con, lake, name, "subscriber_number VARCHAR, granted_at TIMESTAMP, withdrawn_at TIMESTAMP",
                          """
        SELECT subscriber_number, recorded_at AS granted_at, withdrawn_at
        FROM (
            SELECT subscriber_number, status = 'granted' AS granted, recorded_at,
                   lag(status = 'granted') OVER w AS after_grant,
                   -- the first withdrawal after this event: the end of the spell it starts
                   min(CASE WHEN status = 'withdrawn' THEN recorded_at END)
                       OVER (w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS withdrawn_at
            FROM {register}
            WHERE purpose = $purpose AND recorded_at < CAST($known_on AS DATE) + INTERVAL 1 DAY
            WINDOW w AS (PARTITION BY subscriber_number ORDER BY recorded_at, status = 'withdrawn', record_id))
        WHERE granted AND NOT coalesce(after_grant, false)""", {"purpose": purpose, "known_on": known_on})
