"""The differencing attack across release tables (issue 18 item 3): a released cell minus the released cells of
finer tables inside it must never leave a group of 1 to k-1 subscribers.

The attacker (tests/transforms/privacy/differencing.py) sees only the written files and counts the remainder's
subscribers from the analytics rows themselves. The mutation check switches the cross-table suppression off
(`ReleaseDecision.settle_differencing`, the one method that does it) and shows the same attack then succeeds, so
the attack test can fail.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.transforms.privacy.conftest import DAY, generated_rows, run_aggregates
from tests.transforms.privacy.differencing import attack, read_rows
from transforms.privacy.suppression import ReleaseDecision

SEEDS = range(6)


def night(seed: int) -> list[tuple]:
    """A generated night: skewed people over 8 hours and 5 areas, so many cells sit around k."""
    return generated_rows(seed, n=3000, people=150, days=(DAY,), hours=8, areas=("LA1", "LA2", "LA3", "LA4", None))


@pytest.mark.parametrize("k", [3, 5])
def test_no_released_cell_minus_finer_released_cells_leaves_fewer_than_k(tmp_path, policy, k):
    policy_k = dataclasses.replace(policy, k_anonymity=k)
    secondary = others = 0
    for seed in SEEDS:
        result, out = run_aggregates(tmp_path / str(seed), night(seed), policy_k)
        assert attack(read_rows(str(tmp_path / str(seed) / "analytics.parquet")), out, policy_k, k) == []
        secondary += sum(t.cells_suppressed_secondary for t in result.tables)
        others += sum(t.other_cells_released for t in result.tables)
        assert all(t.events_released <= t.events for t in result.tables)
    assert secondary > 0 and others > 0        # the nights do exercise the cross-table rule and `other` rows


def test_with_the_cross_table_suppression_off_the_attack_succeeds(tmp_path, policy, monkeypatch):
    policy_k = dataclasses.replace(policy, k_anonymity=5)
    monkeypatch.setattr(ReleaseDecision, "settle_differencing", lambda self, cell, chain: False)
    # The decision's own final check catches it ...
    with pytest.raises(AssertionError, match="reveals fewer than k"):
        run_aggregates(tmp_path / "checked", night(0), policy_k)
    # ... and with that check gone too, the files give groups under k away.
    monkeypatch.setattr(ReleaseDecision, "verify", lambda self: None)
    found = []
    for seed in SEEDS:
        _, out = run_aggregates(tmp_path / str(seed), night(seed), policy_k)
        found += attack(read_rows(str(tmp_path / str(seed) / "analytics.parquet")), out, policy_k, 5)
    assert any(" minus " in f for f in found)
