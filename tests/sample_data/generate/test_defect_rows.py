"""Defect rows inside the big files: few of them, an overlong field and a record cut inside a quote."""

from __future__ import annotations

from sample_data.generate import generate_night

from .common import MAIN_FILES, NIGHT, SEED, T


def test_defects_are_a_small_fraction(tmp_path):
    manifest = generate_night(tmp_path, 20_000, SEED, NIGHT)
    defect_rows = sum(v for n in MAIN_FILES for k, v in manifest.files[n].defects.items())
    assert defect_rows / manifest.rows < 0.01


def test_overlong_field_and_cut_record(night):
    out, _ = night
    for name in (f"mediation_{T}.csv", f"billing_{T}.csv"):
        data = (out / name).read_bytes()
        assert max(len(line) for line in data.split(b"\n")) > 100_000
        last = data.rsplit(b"\n", 1)[1]
        assert last and last.count(b'"') % 2 == 1, "ends inside an open quote"
