"""Two generated nights of one seed, made once per session and shared by the generator's tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sample_data.generate import NightManifest, generate_export, generate_night

from .common import NIGHT, ROWS, SEED


@pytest.fixture(scope="session")
def night(tmp_path_factory) -> tuple[Path, NightManifest]:
    out = tmp_path_factory.mktemp("night_a")
    return out, generate_night(out, ROWS, SEED, NIGHT)


@pytest.fixture(scope="session")
def other_night(tmp_path_factory) -> tuple[Path, NightManifest]:
    """Same seed, another date and size."""
    out = tmp_path_factory.mktemp("night_b")
    return out, generate_night(out, 2 * ROWS, SEED, date(2026, 11, 23))


@pytest.fixture(scope="session")
def ps_export(tmp_path_factory) -> tuple[Path, NightManifest]:
    """The TS 32.298 packet-switched export alone, of the night's size, seed and date."""
    out = tmp_path_factory.mktemp("ps_export")
    return out, generate_export(out, "ts32298_ps", ROWS, SEED, NIGHT)
