"""transforms/nightly/facts.py: a file's audit rows go to disk and come back as the same typed rows."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from transforms.audit_store import tables as t
from transforms.lake import Lake
from transforms.nightly.facts import (AGGREGATES, FileFacts, analytics_event_dates, read_file_facts, read_night_rows,
                                      write_file_facts, write_night_rows)
from transforms.nightly.plan import PlannedFile

AT = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)
KEY = {"run_id": "r1", "sha256": "a" * 64, "file_name": "a.csv"}


def _planned(path: str) -> PlannedFile:
    return PlannedFile(path=path, file_name="a.csv", sha256="a" * 64, bytes=10, lines=4, action="audit")


def _facts(days: tuple[str, ...]) -> FileFacts:
    return FileFacts(
        source_file=t.SourceFile(run_id="r1", night=date(2026, 11, 22), file_name="a.csv", sha256="a" * 64, bytes=10,
                                 lines=4, profile="canonical_csv", status="loaded", reason=None, rows_read=3,
                                 rows_loaded=2, rows_rejected=1, billing_partitions=1, processed_at=AT),
        field_findings=(t.FieldFinding(**KEY, column_index=0, source_column="caller_name",
                                       classification="not_allowed", action="dropped", canonical_columns="",
                                       clause="§3.2 ¶3"),),
        validation_results=(t.ValidationResult(**KEY, rule="imsi_shape", expectation="expect_column_values_to_match_regex",
                                               column_name="imsi", clause="§3.2 ¶3 item 10", success=False,
                                               element_count=3, unexpected_count=1, rows_quarantined=1),),
        rejection_reasons=(t.RejectionReason(**KEY, reason="imsi_shape", rows=1),),
        analytics_event_dates=days)


def test_a_files_facts_round_trip_typed(tmp_path):
    lake = Lake.at(tmp_path / "lake")
    facts = _facts(("2026-11-21", "2026-11-22"))
    write_file_facts(lake, "r1", _planned("/landing/a.csv"), facts)
    back = read_file_facts(lake, "r1", _planned("/landing/a.csv"))
    assert back == facts
    assert isinstance(back.source_file.night, date) and back.source_file.processed_at == AT
    # The same bytes under another path are another file of the night; a file with no fragment reads None.
    assert read_file_facts(lake, "r1", _planned("/landing/b.csv")) is None


def test_the_nights_event_dates_and_night_rows(tmp_path):
    lake = Lake.at(tmp_path / "lake")
    write_file_facts(lake, "r1", _planned("/landing/a.csv"), _facts(("2026-11-22",)))
    write_file_facts(lake, "r1", _planned("/landing/b.csv"), _facts(("2026-11-21", "2026-11-22")))
    assert analytics_event_dates(lake, "r1") == ["2026-11-21", "2026-11-22"]
    release = t.AggregateRelease(run_id="r1", event_date=date(2026, 11, 22), dataset="aggregates", k=10,
                                 groups_total=5, groups_released=3, groups_suppressed_primary=1,
                                 groups_suppressed_secondary=1, rows_suppressed=7, release_table="day_service",
                                 clause="§3.3", other_cells_released=1, events=20, events_released=13,
                                 share_events_released=0.65)
    assert read_night_rows(lake, "r1", AGGREGATES, t.AggregateRelease) == ()
    write_night_rows(lake, "r1", AGGREGATES, (release,))
    assert read_night_rows(lake, "r1", AGGREGATES, t.AggregateRelease) == (release,)


def test_a_fragment_with_a_field_the_rows_do_not_have_is_refused(tmp_path):
    lake = Lake.at(tmp_path / "lake")
    write_night_rows(lake, "r1", AGGREGATES, ({"run_id": "r1", "surprise": 1},))
    with pytest.raises(ValueError, match="surprise"):
        read_night_rows(lake, "r1", AGGREGATES, t.AggregateRelease)
