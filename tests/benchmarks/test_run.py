"""benchmarks/run.py: which landing a source names, and one file's ratio to the floor."""

from __future__ import annotations

import pytest

from benchmarks.run import EXPORT_FILE, build_parser, export_file_ratio, run_label


def test_sources_and_their_export_files():
    assert build_parser().parse_args([]).source == "night"
    assert build_parser().parse_args(["--source", "ts32298_ps"]).source == "ts32298_ps"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--source", "ts32298_cs"])
    assert EXPORT_FILE["night"].format(date="2026-11-22") == "mediation_2026-11-22.csv"
    assert EXPORT_FILE["ts32298_ps"].format(date="2026-11-22") == "ts32298_ps_2026-11-22.csv"
    # The night keeps its old names (results-N.json); an export alone gets its own, beside it.
    assert (run_label("night", 1_000_000), run_label("ts32298_ps", 1_000_000)) == ("1000000", "ts32298_ps-1000000")


def test_export_file_ratio_is_the_files_seconds_over_its_copy():
    pipe = {"per_file": [{"file": "a.csv", "seconds": 30.0}, {"file": "b.csv", "seconds": 12.0}]}
    floor = {"per_file": [{"file": "a.csv", "seconds": 4.0}, {"file": "b.csv", "seconds": 3.0}]}
    assert export_file_ratio(pipe, floor, "b.csv") == {"file": "b.csv", "pipeline_s": 12.0, "floor_s": 3.0,
                                                       "ratio": 4.0}
    missing = export_file_ratio(pipe, {"per_file": []}, "b.csv")
    assert (missing["floor_s"], missing["ratio"]) == (None, None)


def test_the_restricted_subscribers_are_the_first_distinct_served_numbers_of_the_mediation_export(tmp_path):
    from benchmarks.run import served_numbers

    (tmp_path / "mediation_2026-11-22.csv").write_text(
        "recordType,servedMSISDN,servedIMSI\nMOC,38640111222,1\nMTC,38640111222,1\nMOC,,2\nSMSO,38641333444,3\n"
        "MOC,38651555666,4\n")
    assert served_numbers(tmp_path, "2026-11-22", 2) == ["38640111222", "38641333444"]
    assert served_numbers(tmp_path, "2026-11-22", 5) == ["38640111222", "38641333444", "38651555666"]
