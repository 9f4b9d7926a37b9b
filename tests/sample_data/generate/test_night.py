"""A night has roaming both inside and outside the EU/EEA."""

from __future__ import annotations

from sample_data.generate import generate_night, population_size

from .common import NIGHT, T, _records


def test_roaming_inside_and_outside_eu(tmp_path):
    from sample_data.generate import C_EU, COUNTRIES
    eu = {p for c, is_eu in zip(COUNTRIES, C_EU) if is_eu for p in c[6]}
    non_eu = {p for c, is_eu in zip(COUNTRIES, C_EU) if not is_eu for p in c[6]}
    manifest = generate_night(tmp_path, 4000, 5, NIGHT)
    records = _records(tmp_path / f"mediation_{T}.csv")
    plmns = {r[10] for r in records[1:] if len(r) == len(records[0])}
    assert plmns & eu and plmns & non_eu and "29340" in plmns
    assert manifest.subscribers == population_size(4000)
