"""transforms/lake/zones.py: the lake's folders, and run ids made into folder names."""

from __future__ import annotations

import pytest

import stat

from transforms.lake import DATA_ZONES, ZONE_NAMES, Lake, safe_run_id
from transforms.lake.zones import RESERVED_ZONES

AIRFLOW_RUN = "manual__2026-11-22T00:00:00+00:00"


def test_zone_names_are_the_data_zones_the_reserved_then_audit_and_reports():
    assert DATA_ZONES == ("billing", "invoices", "quarantine", "analytics", "aggregates", "roaming", "marketing")
    assert RESERVED_ZONES == ("consents",)   # declared (and checked) before it is filled
    assert ZONE_NAMES == (*DATA_ZONES, "consents", "audit", "reports")


def test_every_data_zone_has_a_retention_category_or_is_anonymous(policy):
    # docs/design.md §3: a zone holding data rows is personal (retention catalog) or anonymous, never neither.
    for zone in DATA_ZONES:
        assert (zone in policy.personal_datasets) != policy.is_anonymous(zone), zone
    assert not {"audit", "reports"} & set(policy.personal_datasets)


def test_lake_at_resolves_a_relative_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lake = Lake.at("lake")
    assert lake.root == tmp_path.resolve() / "lake"
    assert lake.root.is_absolute()
    assert Lake.at(str(tmp_path / "lake")) == lake


def test_paths_of_a_lake(tmp_path):
    lake = Lake.at(tmp_path)
    assert lake.zone("billing") == tmp_path / "billing"
    assert lake.audit_db == tmp_path / "audit" / "audit.duckdb"
    assert lake.work_dir(AIRFLOW_RUN) == tmp_path / "_work" / "manual__2026-11-22T00_00_00_00_00"
    assert lake.fragments_dir(AIRFLOW_RUN) == tmp_path / "audit" / "_pending" / "manual__2026-11-22T00_00_00_00_00"


@pytest.mark.parametrize("name", ["_work", "landing", "Billing", ""])
def test_an_unknown_zone_is_refused(tmp_path, name):
    with pytest.raises(AssertionError):
        Lake.at(tmp_path).zone(name)


def test_ensure_makes_every_zone_and_keeps_what_is_there(tmp_path):
    lake = Lake.at(tmp_path / "lake")
    lake.ensure()
    assert sorted(p.name for p in lake.root.iterdir()) == sorted(ZONE_NAMES)
    # Never open: owner-only until a run gives each zone the policy's modes (transforms/lake/permissions.py).
    assert {stat.S_IMODE(lake.zone(z).stat().st_mode) for z in ZONE_NAMES} == {0o700}
    (lake.zone("billing") / "kept.parquet").write_bytes(b"x")
    lake.ensure()                                          # idempotent
    assert (lake.zone("billing") / "kept.parquet").read_bytes() == b"x"


@pytest.mark.parametrize("run_id, expected", [
    (AIRFLOW_RUN, "manual__2026-11-22T00_00_00_00_00"),
    ("scheduled__2026-11-22T01:00:00.123456+00:00", "scheduled__2026-11-22T01_00_00.123456_00_00"),
    ("cli__2026-11-22__20261123T023000Z", "cli__2026-11-22__20261123T023000Z"),
    ("../../etc", ".._.._etc"),
    ("a/b\\c d", "a_b_c_d"),
])
def test_safe_run_id_keeps_letters_digits_dash_underscore_dot(run_id, expected):
    assert safe_run_id(run_id) == expected


@pytest.mark.parametrize("run_id", ["", ".", "..", "...", ":", "/"])
def test_a_run_folder_is_always_one_folder_below_its_parent(tmp_path, run_id):
    # A run's clean-up removes its work and fragments folders: they must never be the parent itself.
    lake = Lake.at(tmp_path)
    for folder, parent in ((lake.work_dir(run_id), tmp_path / "_work"),
                           (lake.fragments_dir(run_id), tmp_path / "audit" / "_pending")):
        assert folder.resolve().parent == parent.resolve()
        assert folder.name not in ("", ".", "..")
