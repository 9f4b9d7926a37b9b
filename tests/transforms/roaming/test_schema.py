"""transforms/roaming/schema.py: the roaming zone's columns and vocabularies."""

from __future__ import annotations

import csv

from transforms.roaming.schema import MONTH_COLUMNS, NETWORK_ZONES, STATES, STATUS_COLUMNS


def test_columns_are_named_once_and_the_token_comes_with_its_key_id():
    for columns in (MONTH_COLUMNS, STATUS_COLUMNS):
        names = [n for n, _ in columns]
        assert len(names) == len(set(names))
        assert {"subscriber_token", "hmac_key_id"} <= set(names)
    assert dict(STATUS_COLUMNS)["subscriber_token"] == "BLOB" and dict(STATUS_COLUMNS)["state"] == "VARCHAR"
    assert len(STATES) == len(set(STATES)) == 3


def test_the_policys_reference_table_speaks_the_zones_vocabulary(policy):
    with open(policy.roaming.reference_table, newline="") as fh:
        zones = {row["zone"] for row in csv.DictReader(fh)}
    assert zones == set(NETWORK_ZONES)
