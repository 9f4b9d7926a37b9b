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
    assert (row.rows_failing, row.rows_duplicate, row.rows_unparseable) == (0, 2, 0)
    # Dated on the night itself: nothing late, nothing after it, counted with the policy's window.
    assert (row.lateness_window_days, row.rows_before_lateness_window, row.rows_after_night) == (7, 0, 0)
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


def _row(start: str, duration: str = "10", number: str = "+38640111222") -> bytes:
    return f"{number},+38641333444,outgoing,{start},{duration},call\n".encode()


def _audit_one(landing, tmp_path, policy, formats, content: bytes, run_id: str = "r1"):
    (landing / "a.csv").write_bytes(content)
    lake = Lake.at(tmp_path / "lake")
    plan = plan_night(landing, lake, policy, night="2026-11-22", run_id=run_id, trigger="test")
    return lake, audit_file(plan.to_audit[0], lake, policy, formats, run_id=run_id, night="2026-11-22",
                            keyring=demo_keyring())


def test_each_row_not_loaded_is_counted_once_by_why(landing, tmp_path, policy, formats):
    rows = [
        _row("2026-11-22T10:00:00Z"),                       # valid
        _row("2026-11-22T11:00:00Z", duration="-5"),        # fails duration_s_range
        _row("2026-11-22T11:00:00Z", duration="-5"),        # repeats the row before: a duplicate, whatever else
        _row("2026-11-22T12:00:00Z"),                       # valid
        _row("2026-11-22T10:00:00Z"),                       # repeats the first row: a duplicate
        b"+38640111222,only,three\n",                      # too few fields: unparseable
    ]
    _, row = _audit_one(landing, tmp_path, policy, formats, CSV + b"".join(rows))
    assert (row.status, row.rows_read, row.rows_loaded, row.rows_rejected) == ("loaded", 6, 2, 4)
    assert (row.rows_failing, row.rows_duplicate, row.rows_unparseable) == (1, 2, 1)
    assert row.rows_read == row.rows_loaded + row.rows_failing + row.rows_duplicate + row.rows_unparseable


def test_a_file_that_loads_no_row_is_quarantined_not_loaded(landing, tmp_path, policy, formats):
    rows = [_row("2026-11-22T10:00:00Z", duration="-1"), _row("2026-11-22T11:00:00Z", number="someone@example.com")]
    lake, row = _audit_one(landing, tmp_path, policy, formats, CSV + b"".join(rows))
    assert (row.status, row.rows_read, row.rows_loaded, row.rows_rejected) == ("quarantined", 2, 0, 2)
    assert (row.rows_failing, row.rows_duplicate, row.rows_unparseable) == (2, 0, 0)
    # Its rows are in quarantine (that is where they are kept), none in billing.
    assert list(lake.zone("billing").rglob("*.parquet")) == [] and list(lake.zone("quarantine").rglob("*.parquet"))


def test_rows_dated_before_the_lateness_window_or_after_the_night_are_counted_and_loaded(landing, tmp_path, policy,
                                                                                         formats):
    # The night is 22 Nov and the policy's window 7 days (lateness.window_days): 14 Nov is more than the window
    # before it, 15 Nov exactly the window, 23 Nov after the night.
    assert policy.lateness.window_days == 7
    rows = [_row("2026-11-14T09:00:00Z"), _row("2026-11-14T10:00:00Z"), _row("2026-11-15T10:00:00Z"),
            _row("2026-11-22T10:00:00Z"), _row("2026-11-23T10:00:00Z")]
    lake, row = _audit_one(landing, tmp_path, policy, formats, CSV + b"".join(rows))
    assert (row.status, row.rows_loaded) == ("loaded", 5)            # loaded as delivered
    assert (row.lateness_window_days, row.rows_before_lateness_window, row.rows_after_night) == (7, 2, 1)
    days = sorted(p.parent.name for p in lake.zone("billing").rglob("*.parquet"))
    assert days == ["event_date=2026-11-14", "event_date=2026-11-15", "event_date=2026-11-22",
                    "event_date=2026-11-23"]


def test_a_refused_file_has_no_row_account_and_no_lateness(landing, tmp_path, policy, formats):
    _, row = _audit_one(landing, tmp_path, policy, formats, b"alpha;beta\n1;2\n")
    assert row.status == "rejected_file"
    assert (row.rows_failing, row.rows_duplicate, row.rows_unparseable, row.lateness_window_days) == (None,) * 4
