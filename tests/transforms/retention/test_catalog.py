"""transforms/retention/catalog.py: no deletion without a retention category for every personal data set."""

from __future__ import annotations

import pytest

from tests.transforms.retention.conftest import run_sweep
from transforms.retention.catalog import RetentionError


def test_refuses_a_catalog_without_a_lake_data_set(golden_lake, policy):
    import dataclasses

    thin = dataclasses.replace(policy, retention=tuple(r for r in policy.retention if r.category != "invoice"))
    before = {p: p.read_bytes() for p in golden_lake.root.rglob("*.parquet")}
    with pytest.raises(RetentionError, match="invoices"):
        run_sweep(golden_lake, thin, "2040-01-01")
    assert {p: p.read_bytes() for p in golden_lake.root.rglob("*.parquet")} == before
