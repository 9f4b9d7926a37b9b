"""The mediation export looks like a real one: record types, home and roaming networks, times, charges."""

from __future__ import annotations

import re

from sample_data.generate.formats import MEDIATION

from .common import T, _records


def test_mediation_rows_look_real(night):
    out, manifest = night
    records = _records(out / f"mediation_{T}.csv")
    assert tuple(records[0]) == MEDIATION.columns
    rows = [dict(zip(records[0], r)) for r in records[1:] if len(r) == len(records[0])
            and not r[7].startswith("-") and r[0] != "LCS" and len(r[14]) < 100]    # valid rows only
    assert {r["recordType"] for r in rows} >= {"MOC", "MTC", "SMSO", "SMST", "PGW"}
    plmns = {r["servingNodePLMNIdentifier"] for r in rows}
    assert "29340" in plmns and len(plmns) > 2, "home and roaming networks"
    assert sum(r["servingNodePLMNIdentifier"] == "29340" for r in rows) > 0.6 * len(rows), "mostly at home"
    for r in rows:
        assert re.fullmatch(r"2026-11-2[12]T\d\d:\d\d:\d\d\+01:00", r["recordOpeningTime"])
        if r["recordType"] in ("SMSO", "SMST"):
            assert r["callDuration"] == "0"
        if r["recordType"] == "PGW":
            assert r["accessPointName"] and int(r["dataVolumeDownlink"]) >= 0
            assert re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", r["servedPDPAddress"])
        if r["chargedAmount"]:
            assert abs(float(r["taxAmount"]) - 0.22 * float(r["chargedAmount"])) < 0.0001
        assert r["currency"] == "EUR"
        assert re.fullmatch(r"[0-9A-F]{4}", r["locationAreaCode"]) and re.fullmatch(r"[0-9A-F]{7}", r["cellIdentifier"])
