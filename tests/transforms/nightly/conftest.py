"""Shared by the nightly tests: a tiny canonical CSV landing file."""

from __future__ import annotations

import pytest

CSV = b"origin_number,destination_number,direction,start_time,duration_s,service_type\n"
ROW = b"+38640111222,+38641333444,outgoing,2026-11-22T10:00:00Z,10,call\n"


@pytest.fixture()
def landing(tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder
