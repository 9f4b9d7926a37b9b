"""The CLI pipeline on a generated night: conservation, no leaks, audit rows, re-runs."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.conftest import BIN, NIGHT, audit_rows, run_cli
from tests.leakscan import identifier_variants, night_identifiers, scan

pytestmark = pytest.mark.slow

ZONES_WITH_ROWS = ("billing", "invoices", "consents", "quarantine")
# A CDR file: neither of the fixed-header extracts (payments, consents).
CDR_FILE = "coalesce(profile NOT IN ('payments', 'consents'), true)"


def zone_rows(lake: Path, zone: str) -> int:
    files = list((lake / zone).rglob("*.parquet"))
    if not files:
        return 0
    return duckdb.execute("SELECT count(*) FROM read_parquet(?, union_by_name = true)",
                          [[str(f) for f in files]]).fetchone()[0]


def zone_content(lake: Path, zone: str) -> str:
    """A digest of a zone's rows, lineage run_id aside (a re-run may carry another run id).

    Quarantine holds three row shapes (CDR rows, payments rows, consent rows), hence union_by_name.
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
    assert files["payments_2026-11-22.csv"][0] == files["consents_2026-11-22.csv"][0] == "loaded"
    # What the audit says was loaded / quarantined is what the zones hold: CDRs in billing, invoices in
    # invoices, consent events in consents, the failing rows of all in quarantine.
    billed, invoiced, consented, quarantined_in_zone = audit_rows(
        cli_run.lake, f"SELECT sum(rows_loaded) FILTER (WHERE {CDR_FILE}),"
                      " sum(rows_loaded) FILTER (WHERE profile = 'payments'),"
                      " sum(rows_loaded) FILTER (WHERE profile = 'consents'),"
                      " sum(rows_rejected) FILTER (WHERE status = 'loaded') FROM source_files")[0]
    assert invoiced > 0 and billed > 0 and consented > 0
    assert zone_rows(cli_run.lake, "billing") == billed
    assert zone_rows(cli_run.lake, "invoices") == invoiced
    assert zone_rows(cli_run.lake, "consents") == consented
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


def test_the_close_builds_a_data_docs_page_for_each_validated_file(cli_run):
    # Built once for the night at its close (not per file); the night's log event says how many pages.
    validated = {sha for (sha,) in audit_rows(cli_run.lake, "SELECT DISTINCT sha256 FROM validation_results")}
    (details,) = audit_rows(cli_run.lake, "SELECT details FROM audit_log WHERE action = 'run_finished'")[0]
    assert json.loads(details)["data_docs_pages"] == len(validated) > 1
    docs = cli_run.lake / "reports" / "gx_data_docs"
    pages = {p.relative_to(docs / "validations").parts[1] for p in (docs / "validations").rglob("*.html")}
    assert pages == {f"file-{sha[:16]}" for sha in validated}
    index = (docs / "index.html").read_text()
    assert all(f"file-{sha[:16]}" in index for sha in validated)
    assert f"validation Data Docs: {docs}" in cli_run.stdout and "WARNING" not in cli_run.stdout


def test_verify_fails_when_the_logs_tail_is_deleted(cli_run, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(cli_run.lake, lake)          # the session's lake stays as it was
    anchors = sorted((lake / "audit" / "anchors").glob("anchor-*.json"))
    assert len(anchors) >= 2                     # the night's start (plan) and its close each anchored the head
    (last_seq,), = audit_rows(lake, "SELECT max(seq) FROM audit_log")
    assert json.loads(anchors[-1].read_text())["seq"] == last_seq
    ok = run_cli("verify", "--lake", str(lake))
    assert ok.returncode == 0 and f"{len(anchors)} anchor(s) checked" in ok.stdout, ok.stderr
    summary = run_cli("summary", "--lake", str(lake))
    assert f"head seq {last_seq}" in summary.stdout and f"latest anchor: seq {last_seq}" in summary.stdout
    assert anchors[-1].name in summary.stdout
    # The night's marketing profiles, in the store's counts; every zone the lake has.
    (days, profiled), = audit_rows(lake, "SELECT count(*), sum(subscribers) FROM marketing_profiles")
    assert days and f"marketing: {days} day(s) profiled, {profiled:,} subscriber-day profile(s)" in summary.stdout
    assert "analytics,aggregates,roaming,marketing,consents}" in summary.stdout
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"))
    con.execute("DELETE FROM audit_log WHERE seq > ?", [last_seq - 3])
    con.close()
    broken = run_cli("verify", "--lake", str(lake))
    assert broken.returncode == 1
    assert f"anchor {anchors[-1].name}: entry seq {last_seq} is missing from the audit log" in broken.stderr
    assert "intact" not in broken.stdout
    assert run_cli("summary", "--lake", str(lake)).returncode == 1


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
    billed, invoiced = audit_rows(lake, f"SELECT sum(rows_loaded) FILTER (WHERE {CDR_FILE}),"
                                        " sum(rows_loaded) FILTER (WHERE profile = 'payments') FROM source_files")[0]
    assert (billed, invoiced) == (zone_rows(lake, "billing"), zone_rows(lake, "invoices"))
    # What the killed run staged is gone, and its run says why it never closed (docs/design.md §10).
    assert not any((lake / "_work").iterdir()) and not any((lake / "audit" / "_pending").iterdir())
    runs = audit_rows(lake, "SELECT status, status_reason FROM runs ORDER BY started_at")
    assert [s for s, _ in runs] == ["abandoned", "completed"] and "is gone" in runs[0][1]
    assert audit_rows(lake, "SELECT count(*) FROM audit_log WHERE action = 'run_abandoned'") == [(1,)]


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
    assert status["calls_+<masked>.csv"] == status["a\\nb.csv"] == status["x y.csv"] == status["ž Čeh.csv"]
    assert status["x y.csv"] == "loaded"
    assert scan([tmp_path / "lake" / "audit"], ["38640123456", "root:x:0"], run.stdout + run.stderr) == {}


def test_no_name_and_no_compression_stops_the_night(night, tmp_path):
    """Names as bytes (not UTF-8, line breaks, tabs, a leading dash, glob characters, quotes, 250 characters),
    compressed deliveries and names that read the same once masked: the night runs, each entry has its row."""
    import bz2
    import gzip
    import os
    import socket

    landing, _ = night
    odd = tmp_path / "odd"
    odd.mkdir()
    src = (landing / "freeswitch_2026-11-22.csv").read_bytes()
    names = [b"ra\xe8un_2026.csv", b"a\nb.csv", b"tab\tname.csv", b"-rf.csv", b"*.csv", b"[ab]?.csv",
             b"q\"'.csv", b"n" * 246 + b".csv", b"\xff\xfe.csv"]
    for i, raw in enumerate(names):
        with open(os.path.join(os.fsencode(odd), raw), "wb") as fh:
            fh.write(src + f"\n#{i}".encode())                   # distinct bytes, so none is a copy
    (odd / "gz_named.csv").write_bytes(gzip.compress(src, mtime=1))
    (odd / "calls.csv.bz2").write_bytes(bz2.compress(src + b"\n#bz2"))
    (odd / "cut.csv.gz").write_bytes(gzip.compress(src * 40, mtime=1)[:-40])
    for raw in (b"calls_+38640111111.csv", b"calls_+38640222222.csv"):       # same bytes, names masked alike
        (odd / os.fsdecode(raw)).write_bytes(src + b"\n#same")
    os.mkfifo(odd / "feed.csv")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(odd / "s.sock"))
    (odd / "link.csv").symlink_to(odd / "-rf.csv")
    (odd / ".partial.csv").write_bytes(src)
    entries = len(os.listdir(os.fsencode(odd)))
    try:
        run = run_cli("run", "--landing", str(odd), "--lake", str(tmp_path / "lake"), "--date", NIGHT)
    finally:
        sock.close()
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stdout + run.stderr
    rows = audit_rows(tmp_path / "lake", "SELECT file_name, status, rows_read, rows_loaded, rows_rejected, reason"
                                         " FROM source_files")
    assert len(rows) == entries == len({r[0] for r in rows})          # one row per landing entry, each its own
    status = {r[0]: r[1] for r in rows}
    for name in ("ra\\xe8un_2026.csv", "a\\nb.csv", "tab\\tname.csv", "-rf.csv", "*.csv", "[ab]?.csv", "q\"'.csv",
                 "\\xff\\xfe.csv", "n" * 119 + "…", "gz_named.csv", "calls.csv.bz2", "calls_+<masked>.csv"):
        assert status[name] == "loaded", (name, status)
    assert status["calls_+<masked>.csv (2)"] == "duplicate_file"
    assert status["feed.csv"] == status["s.sock"] == status["link.csv"] == status[".partial.csv"] == "ignored"
    cut = next(r for r in rows if r[0] == "cut.csv.gz")
    assert cut[1] == "rejected_file" and cut[5].startswith("gzip stream truncated after ")
    assert all(read == loaded + rejected for _, _, read, loaded, rejected, _ in rows)
    loaded = {r[0]: r[3] for r in rows}
    assert loaded["*.csv"] == loaded["-rf.csv"] == loaded["gz_named.csv"] > 0     # its own rows, not a glob's
    assert scan([tmp_path / "lake" / "audit"], ["38640111111", "38640222222"], run.stdout + run.stderr) == {}


# ---------------------------------------------------------------- what the night prints (docs/design.md §9)

# A file's last progress line (transforms/entry/console.py): where each of its rows went.
FILE_LINE = re.compile(r"^\[\s*[\d.]+s\] \[\d+/\d+\] (?P<file>\S+): (?P<outcome>[a-z ]+) — (?P<read>[\d,]+) read"
                       r"(?: = (?P<valid>[\d,]+) valid \+ (?P<failing>[\d,]+) failing a rule \+ (?P<duplicate>[\d,]+)"
                       r" duplicate \+ (?P<unparseable>[\d,]+) unparseable; (?P<loaded>[\d,]+) loaded,"
                       r" (?P<quarantined>[\d,]+) quarantined)?(?P<rest>.*)$")


def file_lines(stderr: str) -> dict[str, dict]:
    """Each file's last progress line, its counts as integers."""
    out = {}
    for line in stderr.splitlines():
        if m := FILE_LINE.match(line):
            out[m["file"]] = {k: (int(v.replace(",", "")) if v and v[0].isdigit() else v)
                              for k, v in m.groupdict().items()}
    return out


def test_each_files_console_line_adds_up(night, cli_run):
    _, manifest = night
    lines = file_lines(cli_run.stderr)
    # The files the first run audited (a later test re-runs the night: its rows say 'known').
    audited = {r[0]: r[1:] for r in audit_rows(cli_run.lake, """
        SELECT file_name, status, rows_read, rows_loaded, rows_rejected FROM source_files
        WHERE run_id = (SELECT run_id FROM runs ORDER BY started_at LIMIT 1) AND status <> 'duplicate_file'""")}
    assert set(lines) == set(audited)                      # one line per file audited tonight
    for name, f in lines.items():
        if f["read"]:                                      # read row by row: every row accounted for once
            assert f["valid"] + f["failing"] + f["duplicate"] + f["unparseable"] == f["read"], name
            assert f["loaded"] + f["quarantined"] == f["read"] and f["loaded"] == f["valid"], name
            assert (f["read"], f["loaded"], f["quarantined"]) == audited[name][1:], name
            assert f["outcome"] == ("loaded" if f["loaded"] else "quarantined"), name
        else:
            assert f["outcome"] == "empty" and f["valid"] is None, name
    # The generator's injected defects show up under their own term (seed 11's night has every kind).
    assert sum(f["duplicate"] or 0 for f in lines.values()) >= sum(
        m.defects.get("duplicate_row", 0) for n, m in manifest.files.items() if "duplicate_file" not in m.defects)
    assert sum(f["unparseable"] or 0 for f in lines.values()) > 0 and sum(f["failing"] or 0 for f in lines.values()) > 0
    # The copy is refused whole by the plan: the night's summary says so, and does not call its rows quarantined.
    copy_rows = manifest.files["billing_2026-11-22_copy.csv"].rows
    assert re.search(rf"rows: +[\d,]+ read = [\d,]+ loaded \+ [\d,]+ quarantined \+ {copy_rows:,} in files refused"
                     r" whole \(nothing kept\)", cli_run.stdout)


@pytest.fixture(scope="module")
def odd_night(tmp_path_factory):
    """A small night with rows dated long before it and after it, a file no row of which loads, and a file that is
    no known format: the CLI run, then `summary` and `report`."""
    landing = tmp_path_factory.mktemp("odd") / NIGHT
    landing.mkdir()
    header = "origin_number,destination_number,direction,start_time,duration_s,service_type\n"

    def row(start: str, duration: int = 60, n: int = 1) -> str:
        return f"+3864055500{n},+3864166600{n},outgoing,{start},{duration},call\n"
    (landing / "late_2026-11-22.csv").write_text(header + "".join([
        row("2026-11-01T10:00:00Z", n=1), row("2026-11-01T11:00:00Z", n=2), row("2026-11-13T23:00:00Z", n=3),  # late
        row("2026-11-15T10:00:00Z", n=4),                    # exactly the window before the night: not late
        row("2026-11-23T09:00:00Z", n=5), row("2026-11-24T09:00:00Z", n=6),                                   # after
        row("2026-11-22T10:00:00Z", n=7), row("2026-11-22T10:00:00Z", n=7),                                   # repeat
        row("2026-11-22T12:00:00Z", duration=-5, n=8),                                                        # fails
        "+38640555009,only,three\n"]))                                                                        # unparseable
    (landing / "all_bad_2026-11-22.csv").write_text(header + row("2026-11-22T10:00:00Z", duration=-1, n=1)
                                                    + row("2026-11-22T11:00:00Z", duration=-2, n=2))
    (landing / "notes_2026-11-22.csv").write_text("alpha;beta;gamma\n1;2;3\n4;5;6\n")
    lake = tmp_path_factory.mktemp("odd_lake")
    run = run_cli("run", "--landing", str(landing), "--lake", str(lake), "--date", NIGHT)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = run_cli("summary", "--lake", str(lake))
    report = run_cli("report", "--lake", str(lake))
    assert summary.returncode == 0 and report.returncode == 0, summary.stderr + report.stderr
    return lake, run, summary, report


def test_rows_outside_the_lateness_window_are_loaded_recorded_and_counted(odd_night):
    from transforms.policy import load_policy

    lake, run, summary, report = odd_night
    window = load_policy().lateness.window_days
    assert window == 7         # as shipped (policy/a1_slovenia.yaml lateness.window_days); the rows above assume it
    got = audit_rows(lake, "SELECT status, rows_read, rows_loaded, rows_failing, rows_duplicate, rows_unparseable,"
                           " lateness_window_days, rows_before_lateness_window, rows_after_night FROM source_files"
                           " WHERE file_name = 'late_2026-11-22.csv'")
    # 10 records: 7 valid (3 late, 2 after the night) + 1 failing + 1 repeat + 1 unparseable.
    assert got == [("loaded", 10, 7, 1, 1, 1, 7, 3, 2)]
    days = sorted(p.parent.name for p in (lake / "billing").rglob("*.parquet"))
    assert "event_date=2026-11-01" in days and "event_date=2026-11-24" in days     # loaded as delivered
    late = file_lines(run.stderr)["late_2026-11-22.csv"]
    assert late["rest"] == "; 3 rows dated more than 7 day(s) before the night, 2 after it (loaded as delivered)"
    assert "event dates: 3 rows dated more than 7 day(s) before the night, 2 after it" in run.stdout
    assert "event dates: 3 rows dated more than 7 day(s) before the night, 2 after it" in summary.stdout
    assert "event dates: 3 rows dated more than 7 day(s) before the night, 2 after it" in report.stdout
    assert audit_rows(lake, "SELECT rows_before_lateness_window, rows_after_night FROM v_nightly_volumes") == [(3, 2)]
    page = " ".join((lake / "reports" / "compliance-2026-11-22.html").read_text().split())
    assert "Event dates: 3 rows dated more than 7 day(s) before the night, 2 after it." in page
    # Six event dates, each with too few subscribers to release a group. The three whose release window
    # (policy aggregate_release, 3 days) closed before the night wait below k, the three inside it wait for it:
    # one line each, and nothing released.
    below_k = [line for line in run.stderr.splitlines() if "waiting until their rows pass k" in line]
    assert len(below_k) == 1 and "aggregates: 3 day(s) waiting" in below_k[0]
    assert below_k[0].endswith(": 2026-11-01, 2026-11-13, 2026-11-15 (4 rows)")
    window = [line for line in run.stderr.splitlines() if "inside their 3-day window" in line]
    assert len(window) == 1 and window[0].endswith("aggregates: 3 day(s) inside their 3-day window, released once it"
                                                   " closes: 2026-11-22…2026-11-24 (3 rows)")
    assert not re.search(r"\] aggregates 2026-11-\d\d release", run.stderr)
    assert not list((lake / "aggregates").rglob("*.parquet"))


def test_a_file_that_loads_nothing_is_not_loaded_and_a_refused_file_is_not_quarantined(odd_night):
    lake, run, summary, report = odd_night
    status = dict(audit_rows(lake, "SELECT file_name, status FROM source_files"))
    assert status == {"late_2026-11-22.csv": "loaded", "all_bad_2026-11-22.csv": "quarantined",
                      "notes_2026-11-22.csv": "rejected_file"}
    lines = file_lines(run.stderr)
    assert lines["all_bad_2026-11-22.csv"]["outcome"] == "quarantined"
    assert (lines["all_bad_2026-11-22.csv"]["failing"], lines["all_bad_2026-11-22.csv"]["loaded"]) == (2, 0)
    refused = lines["notes_2026-11-22.csv"]
    assert refused["outcome"] == "refused whole" and refused["rest"].startswith(", nothing kept: ")
    assert refused["quarantined"] is None
    # The summary and the report: "refused whole", and its rows never counted as quarantined.
    table = {r[0]: r for r in map(summary_row, summary.stdout.splitlines()) if r[0].endswith(".csv")}
    (refused_rows,), = audit_rows(lake, "SELECT rows_read FROM source_files WHERE status = 'rejected_file'")
    # file, outcome, format, read, loaded, quarantined, late, future, why
    assert table["notes_2026-11-22.csv"][1:6] == ["refused whole", "-", str(refused_rows), "0", "—"]
    assert table["notes_2026-11-22.csv"][8].startswith("nothing kept: ")
    assert table["all_bad_2026-11-22.csv"][1:6] == ["quarantined", "canonical_csv", "2", "0", "2"]
    assert table["all_bad_2026-11-22.csv"][8] == "main reason: duration_s_range (2 of 2 quarantined)"
    assert table["late_2026-11-22.csv"][1:8] == ["loaded", "canonical_csv", "10", "7", "3", "3", "2"]
    # 3 quarantined of the late file, 2 of the file that loaded nothing; the refused file's rows apart.
    assert f"rows read = 7 loaded + 5 quarantined + {refused_rows:,} in files refused whole" in summary.stdout
    assert "main quarantine reasons: " in summary.stdout and "no known" not in summary.stdout.split(
        "main quarantine reasons: ")[1].splitlines()[0]
    assert "files: 3 (1 loaded, 1 with every row quarantined, 1 refused whole, 0 failed)" in report.stdout
    assert audit_rows(lake, "SELECT rows_quarantined, rows_refused FROM v_nightly_volumes") == [(3 + 2, refused_rows)]
    page = " ".join((lake / "reports" / "compliance-2026-11-22.html").read_text().split())
    assert "<td>notes_2026-11-22.csv</td><td>refused whole</td>" in page
    assert "<td>all_bad_2026-11-22.csv</td><td>quarantined</td>" in page
    assert f'<div class="card"><b>{refused_rows}</b>rows in files refused whole (nothing kept)</div>' in page
    assert '<div class="card"><b>5</b>rows quarantined</div>' in page


def test_the_odd_night_leaks_no_number(odd_night):
    lake, run, summary, report = odd_night
    numbers = [f"+3864{a}{b}{n}" for a, b in (("0", "55500"), ("1", "66600")) for n in range(1, 10)]
    text = run.stdout + run.stderr + summary.stdout + report.stdout
    assert scan([lake / "audit", lake / "reports"], identifier_variants(numbers, [], [], []), text) == {}


def summary_row(line: str) -> list[str]:
    """A line of `cdr-audit summary`'s file table, cut at its columns (36, 15, 20, 8, 8, 8, 6, 6, then why)."""
    cells, at = [], 0
    for width in (36, 15, 20, 8, 8, 8, 6, 6):
        cells.append(line[at:at + width].strip())
        at += width + 1
    return [*cells, line[at + 1:].strip()]
