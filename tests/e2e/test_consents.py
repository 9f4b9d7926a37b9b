"""`cdr-audit run` over a generated night with its consent extract: the register filled, the defects in
quarantine with their reasons, the file in source_files, no raw number outside the owner-only zones.

Expected figures come from the extract itself (read here as CSV) and the generator's defect list, never
from the pipeline's output.
"""

from __future__ import annotations

import csv
import io
import stat

import pytest

from tests.conftest import audit_rows, zone_rows
from tests.leakscan import identifier_variants, scan
from transforms.steps.consents import CONSENT_COLUMNS

pytestmark = pytest.mark.slow

NAME = "consents_2026-11-22.csv"
# The generator's consent defects (sample_data/generate/consents.py), one row each, and the reason each
# must be quarantined under (README "The consent extract").
REASONS = {"bad_consent_number": "subscriber_number_invalid", "unknown_purpose": "purpose_unknown",
           "unknown_channel": "channel_unknown", "bad_recorded_at": "recorded_at_invalid",
           "future_recorded_at": "recorded_after_night", "duplicate_consent": "duplicate_consent",
           "broken_consent_line": "unparseable: missing columns"}


def records(night) -> list[list[str]]:
    landing, _ = night
    rows = list(csv.reader(io.StringIO((landing / NAME).read_text(), newline="")))
    assert tuple(rows[0]) == CONSENT_COLUMNS
    return rows[1:]


def test_the_register_holds_every_valid_event_and_quarantine_the_defects(night, cli_run):
    _, manifest = night
    rows = records(night)
    assert manifest.files[NAME].defects == dict.fromkeys(REASONS, 1)
    valid = len(rows) - len(REASONS)                  # one row per defect, every other row valid
    assert audit_rows(cli_run.lake, "SELECT profile, status, rows_read, rows_loaded, rows_rejected, rows_duplicate,"
                                    " rows_unparseable FROM source_files WHERE file_name = ?", [NAME]) == [
        ("consents", "loaded", len(rows), valid, len(REASONS), 1, 1)]
    reasons = dict(audit_rows(cli_run.lake, "SELECT reason, rows FROM rejection_reasons WHERE file_name = ?", [NAME]))
    assert reasons == dict.fromkeys(REASONS.values(), 1)
    assert zone_rows(cli_run.lake, "consents", "SELECT count(*), count(DISTINCT record_id) FROM t") == [(valid, valid)]
    quarantined = zone_rows(cli_run.lake, "quarantine", "SELECT reason FROM t WHERE dataset = 'consents'")
    assert sorted(r for (r,) in quarantined) == sorted(REASONS.values())
    # Summary: consent events counted apart from billing rows.
    assert audit_rows(cli_run.lake, "SELECT rows_consents FROM v_nightly_volumes") == [(valid,)]


def test_no_consent_number_reaches_the_audit_store_reports_or_console(night, cli_run):
    numbers = {r[0] for r in records(night) if r and r[0].startswith(("+386", "0"))}
    e164 = {n if n.startswith("+") else "+386" + n[1:] for n in numbers}
    assert len(e164) >= 3
    needles = identifier_variants(sorted(e164), (), (), ())
    assert scan([cli_run.lake / "audit", cli_run.lake / "reports", cli_run.lake / "analytics",
                 cli_run.lake / "aggregates"], needles, cli_run.stdout + cli_run.stderr) == {}


def test_the_register_is_owner_only(cli_run):
    zone = cli_run.lake / "consents"
    entries = [zone, *zone.rglob("*")]
    assert any(p.suffix == ".parquet" for p in entries)
    for p in entries:
        want = 0o700 if p.is_dir() else 0o600
        assert stat.S_IMODE(p.stat().st_mode) == want, (str(p.relative_to(cli_run.lake)), oct(p.stat().st_mode))
