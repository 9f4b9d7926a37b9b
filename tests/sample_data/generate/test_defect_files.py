"""The small defect files: empty, header only, cp1250, duplicate, NUL byte, hostile header, re-saved."""

from __future__ import annotations

import re

import pytest

from sample_data.generate import HOSTILE_COLUMNS
from sample_data.generate.formats import CANONICAL_COLUMNS

from .common import T, _records


def test_defect_files(night):
    out, manifest = night
    assert (out / f"empty_{T}.csv").stat().st_size == 0
    assert (out / f"header_only_{T}.csv").read_text().splitlines() == [",".join(CANONICAL_COLUMNS)]
    latin1 = (out / f"latin1_{T}.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        latin1.decode("utf-8")
    assert "Žiga Čeh" in latin1.decode("cp1250")
    assert (out / f"billing_{T}_copy.csv").read_bytes() == (out / f"billing_{T}.csv").read_bytes()
    assert b"\x00" in (out / f"nul_byte_{T}.csv").read_bytes()
    hostile = _records(out / f"hostile_header_{T}.csv")[0]
    assert set(HOSTILE_COLUMNS) <= set(hostile)
    assert any(len(c) > 1000 for c in hostile) and 'x"; DROP TABLE runs; --' in hostile
    resaved = (out / f"freeswitch_resaved_{T}.csv").read_bytes()
    assert b'"' not in resaved and b"\r\n" in resaved
    rows = _records(out / f"freeswitch_resaved_{T}.csv")
    assert all(len(r) == 15 and re.fullmatch(r"\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}", r[4]) for r in rows)
    assert len(rows) - len({tuple(r) for r in rows}) == manifest.files[f"freeswitch_resaved_{T}.csv"].defects[
        "duplicate_row"]
