"""Who a billing row is about: its served subscriber, the operator's customer (docs/design.md §12).

Below the steps so the aggregates (which place a row by its served subscriber's visited network) and the steps
share one definition.
"""

from __future__ import annotations

# Directions in which the served subscriber (the operator's customer the record is about) is the called
# party; in every other direction it is the calling party.
SERVED_IS_CALLED = ("incoming", "forwarded")


def served_party_sql(called: str, calling: str) -> str:
    """SQL over a billing row: `called` when the served subscriber is the called party, else `calling`."""
    return f"CASE WHEN direction IN {SERVED_IS_CALLED!r} THEN {called} ELSE {calling} END"
