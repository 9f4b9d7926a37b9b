"""Asterisk Master.csv: 18 columns, local times, caller IDs, bare integers and quoted text."""

from __future__ import annotations

import csv
import re

from .common import T


def test_asterisk_shape(night):
    out, _ = night
    ast = (out / f"asterisk_Master_{T}.csv").read_text().splitlines()
    first = next(csv.reader([ast[0]]))
    assert len(first) == 18 and re.fullmatch(r"2026-11-2[12] \d\d:\d\d:\d\d", first[9])
    assert first[3] in ("from-pstn", "from-internal") and re.fullmatch(r'".*" <.+>', first[4])
    assert re.search(r',\d+,\d+,"', ast[0]), "duration and billsec bare, text quoted"
