"""transforms/audit_store/deliveries.py: a night's missing sources read from `v_missing_sources`, and what is said of
them (a format and nights, never a file name), and of a night where nothing landed (counts, never a name)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from tests.transforms.audit_store.conftest import source_file
from transforms.audit_store import insert
from transforms.audit_store.deliveries import MissingSource, missing_sources, nothing_landed_words
from transforms.audit_store.tables import Run
from transforms.audit_store.views import define_views


def _night(con, day: int, *formats: str) -> None:
    at = datetime(2026, 11, day + 1, 1, tzinfo=timezone.utc)
    insert(con, [Run(run_id=f"r{day}", night=date(2026, 11, day), trigger="cli", started_at=at, finished_at=at,
                     status="completed", policy_id="p", policy_version="1", policy_sha256="a" * 64, code_version="c",
                     files_seen=len(formats), files_processed=len(formats), files_skipped_known=0, files_rejected=0,
                     files_failed=0, rows_read=0, rows_loaded=0, rows_rejected=0)])
    insert(con, [source_file(run_id=f"r{day}", night=date(2026, 11, day), file_name=f"{f}.csv",
                             sha256=f"{day:02d}{f}".ljust(64, "0"), profile=f, processed_at=at) for f in formats])


def test_a_nights_missing_sources_by_name_with_the_nights_without_them(con, lake, policy):
    define_views(con, lake, policy)
    for day in (1, 2, 3):
        _night(con, day, "mediation_3gpp_csv", "asterisk_master_18", "freeswitch_cdr_csv")
    _night(con, 4, "mediation_3gpp_csv")
    _night(con, 5)
    assert missing_sources(con, "2026-11-04") == [MissingSource("asterisk_master_18", "2026-11-03", 1),
                                                  MissingSource("freeswitch_cdr_csv", "2026-11-03", 1)]
    assert [m.source for m in missing_sources(con, date(2026, 11, 5))] == [
        "asterisk_master_18", "freeswitch_cdr_csv", "mediation_3gpp_csv"]
    assert missing_sources(con, "2026-11-03") == []


def test_what_is_said_of_a_missing_source():
    assert MissingSource("asterisk_master_18", "2026-11-03", 1).words() == (
        "no file read as asterisk_master_18 (a regular source, last read on night 2026-11-03): check that its"
        " extract was delivered, or see the night's files for why it was not read")
    assert "last read on night 2026-11-03, 2 nights without it)" in MissingSource("x", "2026-11-03", 2).words()


def test_what_is_said_of_a_night_where_nothing_landed_counts_the_entries_and_names_none():
    assert nothing_landed_words("2026-11-22", 0) == (
        "nothing landed for night 2026-11-22: the landing folder was empty, so no row was audited. Check that the"
        " night's extracts were delivered, then re-run the night")
    assert "held only 1 entry not read (hidden, in-flight or not a regular file)," in nothing_landed_words(
        date(2026, 11, 22), 1)
    assert "held only 1,200 entries not read" in nothing_landed_words("2026-11-22", 1200)
