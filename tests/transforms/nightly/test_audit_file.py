"""transforms/nightly/audit_file.py: one file through every step; a failure leaves nothing in any zone."""

from __future__ import annotations

from tests.transforms.nightly.conftest import CSV, ROW
from transforms.lake import Lake
from transforms.nightly import audit_file as audit_file_module
from transforms.nightly.audit_file import audit_file
from transforms.nightly.facts import read_file_facts
from transforms.nightly.plan import plan_night
from transforms.privacy.keys import demo_keyring


def test_a_clean_file_leaves_its_rows_and_its_facts(landing, tmp_path, policy, formats):
    (landing / "a.csv").write_bytes(CSV + ROW * 3)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")
    row = audit_file(plan.to_audit[0], lake, policy, formats, run_id="r1", night="2026-11-22", keyring=demo_keyring())
    # Three identical rows: the first loads, the two repeats are quarantined as duplicates.
    assert (row.status, row.rows_read, row.rows_loaded, row.rows_rejected) == ("loaded", 3, 1, 2)
    facts = read_file_facts(lake, "r1", plan.to_audit[0])
    assert facts.source_file == row
    assert [(r.reason, r.rows) for r in facts.rejection_reasons] == [("duplicate_row", 2)]
    assert [f.source_column for f in facts.field_findings] == ["origin_number", "destination_number", "direction",
                                                              "start_time", "duration_s", "service_type"]
    # Every column the policy tokenizes is logged, with the distinct identifiers this file had in it.
    assert {p.column_name: p.distinct_values for p in facts.pseudonymization_log} == {
        "origin_number": 1, "destination_number": 1, "redirection_number": 0, "imsi": 0}
    assert facts.analytics_event_dates == ("2026-11-22",)
    assert len(list(lake.zone("billing").rglob("*.parquet"))) == 1


def test_a_file_failing_after_its_billing_commit_leaves_no_rows_behind(landing, tmp_path, policy, monkeypatch, formats):
    (landing / "a.csv").write_bytes(CSV + ROW * 3)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id="r1", trigger="test")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")        # analytics fails after billing committed the rows
    monkeypatch.setattr(audit_file_module, "build_analytics", broken)
    result = audit_file(plan.to_audit[0], lake, policy, formats, run_id="r1", night="2026-11-22",
                                keyring=demo_keyring())
    assert (result.status, result.rows_loaded) == ("failed", 0)
    # The audit says nothing was loaded, so no zone may hold the file's rows.
    assert list(lake.zone("billing").rglob("*.parquet")) == []
    assert list(lake.zone("quarantine").rglob("*.parquet")) == []
    assert (lake.zone("audit") / "errors" / "r1").is_dir()
