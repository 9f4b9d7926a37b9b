"""The CLI pipeline on a generated night: conservation, no leaks, audit rows, re-runs."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.conftest import BIN, NIGHT, audit_rows, run_cli
from tests.leakscan import night_identifiers, scan

pytestmark = pytest.mark.slow

ZONES_WITH_ROWS = ("billing", "invoices", "quarantine")


def zone_rows(lake: Path, zone: str) -> int:
    files = list((lake / zone).rglob("*.parquet"))
    if not files:
        return 0
    return duckdb.execute("SELECT count(*) FROM read_parquet(?, union_by_name = true)",
                          [[str(f) for f in files]]).fetchone()[0]


def zone_content(lake: Path, zone: str) -> str:
    """A digest of a zone's rows, lineage run_id aside (a re-run may carry another run id).

    Quarantine holds two row shapes (CDR rows and payments rows), hence union_by_name.
    """
    files = sorted(str(f) for f in (lake / zone).rglob("*.parquet"))
    rows = duckdb.execute(
        "SELECT * EXCLUDE (run_id) FROM read_parquet(?, hive_partitioning = true, union_by_name = true)"
        " ORDER BY record_id", [files]).fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def file_snapshot(lake: Path) -> dict[str, str]:
    return {str(p.relative_to(lake)): hashlib.sha256(p.read_bytes()).hexdigest()
            for zone in ZONES_WITH_ROWS for p in sorted((lake / zone).rglob("*")) if p.is_file()}


def test_every_row_of_every_file_is_accounted_for(night, cli_run):
    _, manifest = night
    files = {name: (status, read, loaded, rejected) for name, status, read, loaded, rejected in audit_rows(
        cli_run.lake, "SELECT file_name, status, rows_read, rows_loaded, rows_rejected FROM source_files")}
    assert set(files) == set(manifest.files)
    for name, fm in manifest.files.items():
        status, read, loaded, rejected = files[name]
        assert read == loaded + rejected, name
        # The generator's record count is the truth: nothing silently dropped, nothing invented.
        assert read == fm.rows, (name, read, fm.rows)
    assert files["empty_2026-11-22.csv"][0] == "empty"
    assert files["header_only_2026-11-22.csv"][:2] == ("empty", 0)
    assert files["billing_2026-11-22_copy.csv"][0] == "duplicate_file"
    assert files["payments_2026-11-22.csv"][0] == "loaded"
    # What the audit says was loaded / quarantined is what the zones hold: CDRs in billing, invoices in
    # invoices, the failing rows of both in quarantine.
    billed, invoiced, quarantined_in_zone = audit_rows(
        cli_run.lake, "SELECT sum(rows_loaded) FILTER (WHERE profile IS DISTINCT FROM 'payments'),"
                      " sum(rows_loaded) FILTER (WHERE profile = 'payments'),"
                      " sum(rows_rejected) FILTER (WHERE status = 'loaded') FROM source_files")[0]
    assert invoiced > 0 and billed > 0
    assert zone_rows(cli_run.lake, "billing") == billed
    assert zone_rows(cli_run.lake, "invoices") == invoiced
    assert zone_rows(cli_run.lake, "quarantine") == quarantined_in_zone


def test_injected_defects_are_quarantined_with_their_reason(night, cli_run):
    _, manifest = night

    def injected(kind: str) -> int:   # a byte-identical copy is rejected whole, not row by row
        return sum(f.defects.get(kind, 0) for f in manifest.files.values() if "duplicate_file" not in f.defects)

    reasons = dict(audit_rows(cli_run.lake, "SELECT reason, sum(rows) FROM rejection_reasons GROUP BY reason"))
    assert reasons["duplicate_row"] == injected("duplicate_row")
    assert reasons["duration_s_range"] == injected("negative_duration")
    assert reasons["service_type_allowed_value"] == injected("unknown_service_type")
    assert reasons["imsi_shape"] == injected("bad_imsi")
    assert reasons["origin_number_shape"] >= injected("email_as_origin")
    # DuckDB's reader reports an open quote itself ("unquoted value") or, when it swallows lines without a
    # word, our line accounting does ("unterminated quote"): either way one quarantined row per defect.
    assert sum(n for r, n in reasons.items() if "quote" in r) == injected("unterminated_quote")
    assert reasons["duplicate_file"] == manifest.files["billing_2026-11-22_copy.csv"].rows
    # The cp1250 bytes of latin1_*.csv sit in caller_name, a column no format reads: every row loads.
    assert not any("encoding" in r for r in reasons)
    latin1 = next(name for name in manifest.files if name.startswith("latin1_"))
    assert audit_rows(cli_run.lake, "SELECT status, rows_read, rows_loaded FROM source_files"
                                    f" WHERE file_name = '{latin1}'") == [
        ("loaded", manifest.files[latin1].rows, manifest.files[latin1].rows)]
    # The payments extract's injected rows, each with its own reason.
    assert reasons["invoice_date_invalid"] == injected("bad_payment_date")
    assert reasons["status_invalid"] == injected("bad_payment_status")
    assert reasons["invoice_id_missing"] == injected("missing_invoice_id")
    assert reasons["duplicate_invoice"] == injected("duplicate_invoice")
    quarantine = sorted(str(f) for f in (cli_run.lake / "quarantine").rglob("*.parquet"))
    no_reason = duckdb.execute("SELECT count(*) FROM read_parquet(?, union_by_name = true)"
                               " WHERE coalesce(reason, '') = ''", [quarantine]).fetchone()[0]
    assert no_reason == 0


def test_no_off_list_value_reaches_any_output(night, cli_run):
    _, manifest = night
    off_list = [*manifest.caller_names, *manifest.emails, *manifest.ip_addresses]
    assert len(off_list) > 50
    hits = scan([cli_run.lake], off_list, cli_run.stdout + cli_run.stderr)
    assert hits == {}


def test_no_identifier_in_audit_reports_or_console(night, cli_run):
    _, manifest = night
    needles = night_identifiers(manifest)
    hits = scan([cli_run.lake / "audit", cli_run.lake / "reports"], needles, cli_run.stdout + cli_run.stderr)
    assert hits == {}


def test_off_list_columns_are_reported_by_name_with_clause(cli_run):
    rows = audit_rows(cli_run.lake, """
        SELECT source_column, classification, action, clause FROM field_findings
        WHERE file_name = 'billing_2026-11-22.csv' AND classification <> 'allowed' ORDER BY column_index""")
    by_name = {r[0]: r[1:] for r in rows}
    for column in ("caller_name", "email", "ip_address"):
        assert by_name[column][:2] == ("not_allowed", "dropped")
        assert by_name[column][2].startswith("§3.2")
    kept = audit_rows(cli_run.lake, "SELECT count(*) FROM field_findings WHERE file_name = 'billing_2026-11-22.csv'"
                                    " AND classification = 'allowed' AND action = 'kept'")[0][0]
    assert kept == 26   # every canonical column of docs/design.md §1


def test_run_row_validation_counts_and_chain(cli_run):
    from transforms.policy import load_policy

    policy = load_policy()
    (status, sha, version, read, loaded, rejected), = audit_rows(
        cli_run.lake, "SELECT status, policy_sha256, policy_version, rows_read, rows_loaded, rows_rejected FROM runs")
    assert (status, sha, version) == ("completed", policy.sha256, policy.version)
    assert read == loaded + rejected
    # validation_results: one row per (file, expectation), counts only — no column could hold a value.
    cols = [r[0] for r in audit_rows(cli_run.lake, "SELECT column_name FROM information_schema.columns"
                                                   " WHERE table_name = 'validation_results'")]
    assert not any("unexpected_list" in c or "partial" in c or "value" in c for c in cols)
    per_file = audit_rows(cli_run.lake, "SELECT file_name, count(*) FROM validation_results GROUP BY 1")
    n_expectations = len(json.loads(Path("expectations/billing_cdr.json").read_text())["expectations"])
    assert per_file and all(n == n_expectations for _, n in per_file)
    verify = subprocess.run([str(BIN / "cdr-audit"), "verify", "--lake", str(cli_run.lake)], capture_output=True,
                            text=True)
    assert verify.returncode == 0 and "intact" in verify.stdout
    exports = {p.parent.parent.name for p in (cli_run.lake / "audit" / "parquet").glob("*/run_date=*/part.parquet")}
    assert {"runs", "source_files", "field_findings", "validation_results", "audit_log", "v_last_run",
            "v_nightly_volumes", "v_policy_violations"} <= exports


def test_rerun_of_the_same_night_changes_no_zone(night, cli_run):
    landing, manifest = night
    before = file_snapshot(cli_run.lake)
    again = run_cli("run", "--landing", str(landing), "--lake", str(cli_run.lake), "--date", NIGHT, "--quiet")
    assert again.returncode == 0, again.stderr
    assert file_snapshot(cli_run.lake) == before
    last = audit_rows(cli_run.lake, "SELECT files_processed, files_skipped_known, rows_loaded FROM runs"
                                    " ORDER BY started_at DESC LIMIT 1")[0]
    # Only the empty files (never "loaded") are looked at again; nothing is loaded twice.
    assert last[2] == 0 and last[1] >= len(manifest.files) - 4


def test_killed_run_then_rerun_gives_the_same_zones(night, cli_run, tmp_path):
    landing, _ = night
    lake = tmp_path / "lake"
    proc = subprocess.Popen([str(BIN / "cdr-audit"), "run", "--landing", str(landing), "--lake", str(lake),
                             "--date", NIGHT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:                # kill it in the middle of the night
        if "[4/" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert zone_rows(lake, "billing") > 0   # it had committed some files
    rerun = run_cli("run", "--landing", str(landing), "--lake", str(lake), "--date", NIGHT, "--quiet")
    assert rerun.returncode == 0, rerun.stderr
    for zone in ZONES_WITH_ROWS:
        assert zone_content(lake, zone) == zone_content(cli_run.lake, zone), zone
    billed, invoiced = audit_rows(lake, "SELECT sum(rows_loaded) FILTER (WHERE profile IS DISTINCT FROM 'payments'),"
                                        " sum(rows_loaded) FILTER (WHERE profile = 'payments') FROM source_files")[0]
    assert (billed, invoiced) == (zone_rows(lake, "billing"), zone_rows(lake, "invoices"))


def test_cli_help_and_exit_codes(tmp_path, night):
    landing, _ = night
    help_text = subprocess.run([str(BIN / "cdr-audit"), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0
    for command in ("run", "verify", "summary", "policy", "formats"):
        assert command in help_text.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path("policy/a1_slovenia.yaml").read_text().replace("k_anonymity: 10", "k_anonymity: ten"))
    r = run_cli("run", "--landing", str(landing), "--lake", str(tmp_path / "l"), "--date", NIGHT,
                "--policy", str(bad))
    assert r.returncode == 1 and "analytics.k_anonymity" in r.stderr
    r = run_cli("run", "--landing", str(tmp_path / "nowhere"), "--lake", str(tmp_path / "l"), "--date", NIGHT)
    assert r.returncode == 1 and "landing folder" in r.stderr
    r = run_cli("run", "--landing", str(landing), "--lake", str(tmp_path / "l"), "--date", "22.11.2026")
    assert r.returncode == 2


def test_hostile_paths_are_recorded_not_followed(night, tmp_path):
    landing, _ = night
    odd = tmp_path / "odd"
    (odd / "sub").mkdir(parents=True)
    src = landing / "freeswitch_2026-11-22.csv"
    for name in ("x y.csv", "ž Čeh.csv", "a\nb.csv", "calls_+38640123456.csv"):
        (odd / name).write_bytes(src.read_bytes() + name.encode())   # distinct bytes, so none is a copy
    (odd / "passwd.csv").symlink_to("/etc/passwd")
    (odd / ".partial.csv").write_text("in flight")
    (odd / "huge.csv").write_bytes(b"A" * (3 << 20))
    run = run_cli("run", "--landing", str(odd), "--lake", str(tmp_path / "lake"), "--date", NIGHT, "--quiet")
    assert run.returncode == 0, run.stderr
    status = dict(audit_rows(tmp_path / "lake", "SELECT file_name, status FROM source_files"))
    assert status["passwd.csv"] == status[".partial.csv"] == status["sub"] == "ignored"
    assert status["huge.csv"] == "rejected_file"
    assert status["calls_+<masked>.csv"] == status["a?b.csv"] == status["x y.csv"] == status["ž Čeh.csv"] == "loaded"
    assert scan([tmp_path / "lake" / "audit"], ["38640123456", "root:x:0"], run.stdout + run.stderr) == {}
