"""FreeSWITCH CSV: 15 columns, every value quoted."""

from __future__ import annotations

import csv

from .common import T


def test_freeswitch_shape(night):
    out, _ = night
    fs = (out / f"freeswitch_{T}.csv").read_text().splitlines()
    assert all(line.startswith('"') and line.endswith('"') for line in fs)
    assert len(next(csv.reader([fs[0]]))) == 15
