"""generate_night: determinism, the files of a night, the split of N, refusals, and pinned output."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest

from sample_data.generate import MIN_ROWS, generate_night

from .common import CONSENTS_FILE, DEFECT_FILES, MAIN_FILES, NIGHT, PAYMENTS_FILE, ROWS, SEED, _digests


# --------------------------------------------------------------------------- determinism

def test_same_seed_gives_identical_bytes(night, tmp_path):
    out, manifest = night
    again = generate_night(tmp_path, ROWS, SEED, NIGHT)
    assert _digests(tmp_path) == _digests(out)
    assert again == manifest


def test_rerun_into_same_folder_overwrites_identically(night):
    out, manifest = night
    before = _digests(out)
    assert generate_night(out, ROWS, SEED, NIGHT) == manifest
    assert _digests(out) == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_another_seed_gives_other_subscribers(night, tmp_path):
    _, manifest = night
    other = generate_night(tmp_path, ROWS, SEED + 1, NIGHT)
    assert not set(other.msisdns) & set(manifest.msisdns)


PINNED_NIGHT = (600, 21, date(2026, 7, 10))      # rows, seed, night: --rows 600 --seed 21 --date 2026-07-10
# sha256 of every file of that night and of its manifest's JSON, as the one-file generator wrote them
# before it became a package: any change here is a change of output, not a refactor.
PINNED_FILES = {
    "asterisk_Master_2026-07-10.csv": "50dc4c89e52974c0d5207439d5eaebbc87ef206811b8a181bcad99bde845f298",
    "billing_2026-07-10.csv": "87ad00e1b08181ad1812b3ff7eea95a8af92544c90b43c79bd496e44e47a419d",
    "billing_2026-07-10.parquet": "05f3ef8839fb2df042271ebc0dbd54d88e0cb135ef5b2c79a4005d2e5f3e8798",
    "billing_2026-07-10_copy.csv": "87ad00e1b08181ad1812b3ff7eea95a8af92544c90b43c79bd496e44e47a419d",
    "consents_2026-07-10.csv": "14d6ad7e5de44e72f302b92a356c1b144d563c633bbcf32add62a5050ef2036e",   # added with it
    "empty_2026-07-10.csv": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "freeswitch_2026-07-10.csv": "41037921de736892eaf98e5bc76df08e692f9391905ffe2e7b4147380b747462",
    "freeswitch_resaved_2026-07-10.csv": "ae22a0ecc56e8e6945d6f810250f2b4e61fa84ed659daebd56365be0441f9b14",
    "header_only_2026-07-10.csv": "4f1f83c19898ffb94e93109cfd2a49ded8dbe7b5f79bf628941af9e2818c5feb",
    "hostile_header_2026-07-10.csv": "a4e2f6ee52e1c6e012fd960fa449406894c9d0d451347cfc2badc942de2368aa",
    "latin1_2026-07-10.csv": "0a541f317b5e6867b55b3842b4fca23a66502317d19fe2e393a42f39dd366f29",
    "mediation_2026-07-10.csv": "b02d300ae12546ee11949cc121db94e44f5bdd102c1bfcf3649222365c9c928e",
    "nul_byte_2026-07-10.csv": "2d2cd13f9c4d3377650f32c746e8a45ef16d20b7b19cd55cdd1afb8b61023927",
    "payments_2026-07-10.csv": "1b38db08e85b7cd159f4d7eeefcfe36ec120a65f3eec059a6e7f7481dac7da31",
}
# The manifest changed once since: the consent extract joined the night (the other files did not change).
PINNED_MANIFEST = "46ae93f7a3b03a6e7f768281786c4b935be1272c4c432593f6f3a78e8b9191c1"


def test_output_is_pinned(tmp_path):
    manifest = generate_night(tmp_path, *PINNED_NIGHT)
    assert _digests(tmp_path) == PINNED_FILES
    assert hashlib.sha256(manifest.to_json().encode()).hexdigest() == PINNED_MANIFEST


# --------------------------------------------------------------------------- counts

def test_files_present_and_listed(night):
    out, manifest = night
    names = {p.name for p in out.iterdir()}
    assert set(MAIN_FILES) | set(DEFECT_FILES) | {PAYMENTS_FILE, CONSENTS_FILE} == names == set(manifest.files)


def test_main_files_add_up_to_rows(night):
    _, manifest = night
    assert sum(manifest.files[n].rows for n in MAIN_FILES) == ROWS == manifest.rows


def test_too_few_rows_refused(tmp_path):
    with pytest.raises(ValueError):
        generate_night(tmp_path, MIN_ROWS - 1, SEED, NIGHT)
