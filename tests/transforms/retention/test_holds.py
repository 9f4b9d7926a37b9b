"""transforms/retention/holds.py: placing, releasing and listing legal holds; no number is ever stored."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from tests.transforms.retention.conftest import KEYRING, UNPAID
from transforms.retention import holds


def test_hold_refuses_numbers_in_the_reason_and_stores_no_number(lake, policy):
    with pytest.raises(holds.HoldError, match="digits"):
        holds.place(lake, policy, KEYRING, reason=f"customer {UNPAID}", placed_by="x", subscriber=UNPAID)
    with pytest.raises(holds.HoldError, match="scope"):
        holds.place(lake, policy, KEYRING, reason="nothing", placed_by="x")
    h = holds.place(lake, policy, KEYRING, reason="court order 12/2026", placed_by="legal", account="ACC-7",
                    date_from=date(2026, 1, 1), date_to=date(2026, 6, 30))
    assert [x.hold_id for x in holds.list_holds(lake, active_only=True)] == [h.hold_id]
    assert b"ACC-7" not in lake.audit_db.read_bytes()
    holds.release(lake, policy, h.hold_id, released_by="legal", reason="order lifted")
    assert holds.list_holds(lake, active_only=True) == []
    with pytest.raises(holds.HoldError, match="already released"):
        holds.release(lake, policy, h.hold_id, released_by="legal", reason="again")


def test_hold_by_token_takes_the_token_as_analytics_shows_it(golden_lake, policy):
    lake = golden_lake
    files = [str(p) for p in lake.zone("analytics").rglob("*.parquet")]
    shown, key_id = duckdb.execute("SELECT lower(hex(origin_number)), hmac_key_id FROM read_parquet(?) LIMIT 1",
                                   [files]).fetchone()
    with pytest.raises(holds.HoldError, match="32 hex digits"):      # the full 64-digit digest is not a token
        holds.place(lake, policy, KEYRING, reason="case 7", placed_by="x", subscriber_token=shown * 2, key_id=key_id)
    h = holds.place(lake, policy, KEYRING, reason="case 7", placed_by="x", subscriber_token=shown.upper(),
                    key_id=key_id)
    assert h.tokens == {key_id: shown}
