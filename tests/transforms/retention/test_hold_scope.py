"""transforms/retention/hold_scope.py: which rows a hold covers, found through tokens."""

from __future__ import annotations

import duckdb

from tests.transforms.retention.conftest import KEYRING, UNPAID, numbers_left, run_sweep
from transforms.retention import holds


def test_account_hold_keeps_the_accounts_subscribers(golden_lake, policy):
    lake = golden_lake
    holds.place(lake, policy, KEYRING, reason="litigation L-9", placed_by="legal", account="ACC-2",
                dataset="billing")
    run_sweep(lake, policy, "2027-04-01")
    assert UNPAID in numbers_left(lake)           # ACC-2's subscriber: held in billing ...
    files = [str(p) for p in lake.zone("analytics").rglob("*.parquet")]
    # ... not in analytics, where only the business claim (3 years) is left
    assert duckdb.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0] == 1
