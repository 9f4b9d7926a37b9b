"""transforms/entry/commands.py: what the commands print over a small store."""

from __future__ import annotations

from datetime import date

from transforms.audit_store import LogEvent, append_log, writing
from transforms.entry.commands import EXIT_FAILED, EXIT_OK, cmd_formats, cmd_policy, cmd_summary, cmd_verify
from transforms.lake import Lake


class Args:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_policy_lists_columns_and_retention(policy, capsys):
    assert cmd_policy(Args(policy=None)) == EXIT_OK
    out = capsys.readouterr().out
    assert policy.sha256 in out and "origin_number" in out and "billing_cdr" in out


def test_formats_lists_every_format_and_the_payments_extract(capsys):
    assert cmd_formats(Args(formats_command="list", formats=None, policy=None)) == EXIT_OK
    out = capsys.readouterr().out
    assert "asterisk_master_18" in out and "ts32298_ps" in out and "payments" in out
    assert cmd_formats(Args(formats_command="show", name="ts32298_ps", formats=None, policy=None)) == EXIT_OK
    out = capsys.readouterr().out
    assert "servedMSISDN" in out and "IMEI from the IMEISV" in out
    assert "origin_country_code    ← country calling code of the number in servedMSISDN (E.164 digits)" in out


def test_summary_and_verify_of_a_store_without_a_run(tmp_path, capsys):
    lake = Lake.at(tmp_path / "lake")
    with writing(lake) as con:
        append_log(con, [LogEvent("e1", "test", "hold_placed", "H-1", {"n": 1})])
    assert cmd_summary(Args(lake=lake.root, policy=None)) == EXIT_OK
    assert "holds no run yet" in capsys.readouterr().out
    assert cmd_verify(Args(lake=lake.root)) == EXIT_OK
    assert "intact: 1 entries" in capsys.readouterr().out


def test_verify_holds_the_log_to_its_anchors(tmp_path, capsys, monkeypatch):
    import duckdb

    monkeypatch.delenv("CDR_AUDIT_ANCHOR_KEY", raising=False)
    lake = Lake.at(tmp_path / "lake")
    for i in (1, 2):
        with writing(lake) as con:
            append_log(con, [LogEvent(f"e{i}", "test", "hold_placed", f"H-{i}", {"n": i})])
    assert cmd_verify(Args(lake=lake.root)) == EXIT_OK
    assert capsys.readouterr().out == ("audit log chain intact: 2 entries; 2 anchor(s) checked,"
                                       " 2 written without an HMAC\n")
    with duckdb.connect(str(lake.audit_db)) as con:
        con.execute("DELETE FROM audit_log WHERE seq = 2")
    assert cmd_verify(Args(lake=lake.root)) == EXIT_FAILED
    (anchor,) = [p.name for p in (lake.root / "audit" / "anchors").glob("*seq000000000002.json")]
    assert capsys.readouterr().err == (f"anchor {anchor}: entry seq 2 is missing from the audit log (the log ends"
                                       " at seq 1): entries were deleted\n")


def _night_of_every_outcome(lake: Lake) -> None:
    """A closed night by hand: a mostly loaded file with late rows, a file no row of which loaded, a file refused
    whole and a copy of one (docs/design.md §9)."""
    from datetime import date, datetime, timezone

    from transforms.audit_store import insert
    from transforms.audit_store.tables import RejectionReason, Run, SourceFile

    at, night = datetime(2026, 11, 23, 2, tzinfo=timezone.utc), date(2026, 11, 22)
    files = [("calls.csv", "loaded", 100, 96, 4, dict(rows_failing=1, rows_duplicate=3, rows_unparseable=0,
                                                      lateness_window_days=7, rows_before_lateness_window=5,
                                                      rows_after_night=2)),
             ("latin.csv", "quarantined", 20, 0, 20, dict(rows_failing=0, rows_duplicate=0, rows_unparseable=20,
                                                          lateness_window_days=7, rows_before_lateness_window=0,
                                                          rows_after_night=0)),
             ("notes.csv", "rejected_file", 30, 0, 30, {}),
             ("calls_copy.csv", "duplicate_file", 100, 0, 100, {})]
    with writing(lake) as con:
        insert(con, [Run(run_id="r1", night=night, trigger="cli", started_at=at, finished_at=at, status="completed",
                         policy_id="p", policy_version="1", policy_sha256="a" * 64, code_version="c", files_seen=4,
                         files_processed=3, files_skipped_known=0, files_rejected=2, files_failed=0, rows_read=250,
                         rows_loaded=96, rows_rejected=154)])
        insert(con, [SourceFile(run_id="r1", night=night, file_name=name, sha256=name * 4, bytes=1, lines=1,
                                profile=None, status=status, reason="no known source format" if status ==
                                "rejected_file" else None, rows_read=read, rows_loaded=loaded, rows_rejected=rej,
                                billing_partitions=0, processed_at=at, **more)
                     for name, status, read, loaded, rej, more in files])
        key = {"run_id": "r1"}
        insert(con, [RejectionReason(**key, sha256="calls.csv" * 4, file_name="calls.csv", reason="duplicate_row",
                                     rows=3),
                     RejectionReason(**key, sha256="calls.csv" * 4, file_name="calls.csv",
                                     reason="duration_s_range", rows=1),
                     RejectionReason(**key, sha256="latin.csv" * 4, file_name="latin.csv",
                                     reason="unparseable: invalid encoding", rows=20),
                     RejectionReason(**key, sha256="notes.csv" * 4, file_name="notes.csv",
                                     reason="no known source format", rows=30),
                     RejectionReason(**key, sha256="calls_copy.csv" * 4, file_name="calls_copy.csv",
                                     reason="duplicate_file", rows=100)])


def test_summary_says_refused_whole_names_each_files_main_reason_and_counts_lateness(tmp_path, capsys):
    lake = Lake.at(tmp_path / "lake")
    _night_of_every_outcome(lake)
    assert cmd_summary(Args(lake=lake.root, policy=None)) == EXIT_OK
    out = capsys.readouterr().out
    by_file = {row[0]: row for row in map(table_row, out.splitlines()) if row[0].endswith(".csv")}
    # 250 read = 96 loaded + 24 quarantined + 130 in files refused whole: nothing of those is quarantined.
    assert "night 2026-11-22: 250 rows read = 96 loaded + 24 quarantined + 130 in files refused whole" in out
    assert "event dates: 5 rows dated more than 7 day(s) before the night, 2 after it" in out
    # file, outcome, profile, read, loaded, quarantined, late, future, why
    assert by_file["calls.csv"] == ["calls.csv", "loaded", "-", "100", "96", "4", "5", "2",
                                    "main reason: duplicate_row (3 of 4 quarantined)"]
    assert by_file["latin.csv"][:8] == ["latin.csv", "quarantined", "-", "20", "0", "20", "0", "0"]
    assert by_file["notes.csv"] == ["notes.csv", "refused whole", "-", "30", "0", "—", "—", "—",
                                    "nothing kept: no known source format"]
    assert by_file["calls_copy.csv"][1:6] == ["refused whole", "-", "100", "0", "—"]
    assert "refused whole: 2 file(s), 130 rows read, nothing of them kept" in out
    # The quarantine reasons are the quarantined rows' only; a refused file's reason is not one of them.
    assert "main quarantine reasons: unparseable: invalid encoding (20); duplicate_row (3); duration_s_range (1)\n" in out


def table_row(line: str) -> list[str]:
    """A line of the summary's file table, cut at its columns' widths (36, 15, 20, 8, 8, 8, 6, 6, then why)."""
    cells, at = [], 0
    for width in (36, 15, 20, 8, 8, 8, 6, 6):
        cells.append(line[at:at + width].strip())
        at += width + 1
    return [*cells, line[at + 1:].strip()]


def _run_args(landing, lake, **kw):
    return Args(landing=landing, lake=lake, date="2026-11-22", policy=None, formats=None, format=[], timezone=[],
                demo=True, quiet=True, run_id=None, wait=0, allow_open_zones=False, **kw)


# One Asterisk Master.csv row (cdr_csv, 18 columns) of the night `day`: each night's file is new content.
def _asterisk_row(day: int) -> bytes:
    return (f'"","040123456","100","from-pstn","""Ana Novak"" <040123456>","SIP/trunk-1","SIP/100-1","Dial",'
            f'"SIP/100,30","2026-11-{day} 10:00:00","2026-11-{day} 10:00:05","2026-11-{day} 10:01:05",65,60,'
            f'"ANSWERED","DOCUMENTATION","12319770{day}.0",""\n').encode()


def _calls(day: int) -> bytes:
    return (b"origin_number,destination_number,direction,start_time,duration_s,service_type\n"
            + f"+38640111222,+38641333444,outgoing,2026-11-{day}T10:00:00Z,10,call\n".encode())


def test_a_regular_source_that_did_not_come_is_named_by_its_format_everywhere(tmp_path, capsys):
    """docs/design.md §9: the PBX's Asterisk extract came with the mediation calls on three nights running; on the
    fourth only the calls came. The night completes (exit 0) and the run, the DAG's close, the store, the summary
    and the report name the format that was not read, never a file name or a value. The late file ends it."""
    import duckdb

    from transforms.entry.commands import cmd_report, cmd_run

    lake = tmp_path / "lake"

    def night(day: int, *files: tuple[str, bytes]) -> tuple[int, str]:
        landing = tmp_path / f"landing-{day}"
        landing.mkdir(exist_ok=True)
        for name, content in files:
            (landing / name).write_bytes(content)
        args = _run_args(landing, lake)
        args.date = f"2026-11-{day}"
        return cmd_run(args), capsys.readouterr().err

    for day in (19, 20, 21):
        assert night(day, ("calls.csv", _calls(day)), ("pbx_Master.csv", _asterisk_row(day)))[0] == EXIT_OK
        assert "WARNING" not in capsys.readouterr().err
    code, err = night(22, ("calls.csv", _calls(22)))
    assert code == EXIT_OK
    said = ("WARNING: no file read as asterisk_master_18 (a regular source, last read on night 2026-11-21): check"
            " that its extract was delivered, or see the night's files for why it was not read")
    assert said in err and "canonical_csv" not in err
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    assert con.execute("SELECT night, source, last_read_on, nights_without FROM v_missing_sources").fetchall() == [
        (date(2026, 11, 22), "asterisk_master_18", date(2026, 11, 21), 1)]
    assert con.execute("SELECT CAST(json_extract(details, '$.sources_missing') AS VARCHAR) FROM audit_log"
                       " WHERE action = 'run_finished' ORDER BY seq").fetchall()[-1] == ('["asterisk_master_18"]',)
    con.close()
    assert cmd_summary(Args(lake=lake, policy=None)) == EXIT_OK
    out = capsys.readouterr().out
    assert f"  {said}" in out
    assert cmd_report(Args(lake=lake, policy=None, out=tmp_path / "report.html")) == EXIT_OK
    out, html = capsys.readouterr().out, (tmp_path / "report.html").read_text()
    assert said in out and "Warning: no file read as asterisk_master_18 (a regular source" in html
    for text in (err, out, html):
        assert "pbx_Master" not in text and "040123456" not in text and "Novak" not in text
    # The PBX's file comes late: the night's re-run reads it, and the night misses nothing.
    code, err = night(22, ("pbx_Master.csv", _asterisk_row(22)))
    assert code == EXIT_OK and "WARNING" not in err
    assert cmd_summary(Args(lake=lake, policy=None)) == EXIT_OK
    assert "no file read as" not in capsys.readouterr().out


def test_a_night_where_nothing_landed_completes_and_says_so_everywhere(tmp_path, capsys):
    """docs/design.md §9: an empty landing folder, or one holding only an in-flight file, is a night whose extracts
    did not arrive: exit 8, a warning in counts only, and the store, the summary and the report say so. Once the
    extract is there, the night's re-run audits it and says nothing of the kind."""
    import duckdb

    from transforms.entry.commands import EXIT_NOTHING_LANDED, cmd_report, cmd_run

    landing, lake = tmp_path / "landing", tmp_path / "lake"
    landing.mkdir()
    (landing / ".calls_+38640111222.csv.part").write_bytes(b"origin_number\n")    # still being delivered
    assert cmd_run(_run_args(landing, lake)) == EXIT_NOTHING_LANDED
    err = capsys.readouterr().err
    assert ("WARNING: nothing landed for night 2026-11-22: the landing folder held only 1 entry not read (hidden,"
            " in-flight or not a regular file), so no row was audited") in err
    assert "38640111222" not in err                   # the name is never said, only counted
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    assert con.execute("SELECT nothing_landed, files_seen, status FROM v_last_run").fetchall() == [
        (True, 1, "completed")]
    assert con.execute("SELECT action, json_extract(details, '$.nothing_landed') FROM audit_log"
                       " WHERE action LIKE 'run_%' ORDER BY seq").fetchall() == [
        ("run_started", "true"), ("run_finished", "true")]
    con.close()
    # The summary and the report say the same, from the store.
    said = ("nothing landed for night 2026-11-22: the landing folder held only 1 entry not read (hidden, in-flight"
            " or not a regular file), so no row was audited")
    assert cmd_summary(Args(lake=lake, policy=None)) == EXIT_OK
    assert f"WARNING: {said}" in capsys.readouterr().out
    assert cmd_report(Args(lake=lake, policy=None, out=tmp_path / "report.html")) == EXIT_OK
    assert f"WARNING: {said}" in capsys.readouterr().out
    assert f"Warning: {said}" in (tmp_path / "report.html").read_text()

    (landing / "calls.csv").write_bytes(b"origin_number,destination_number,direction,start_time,duration_s,"
                                        b"service_type\n+38640111222,+38641333444,outgoing,2026-11-22T10:00:00Z,10,"
                                        b"call\n")
    assert cmd_run(_run_args(landing, lake)) == EXIT_OK
    assert "nothing landed" not in capsys.readouterr().err
    assert cmd_report(Args(lake=lake, policy=None, out=tmp_path / "report.html")) == EXIT_OK
    assert "nothing landed" not in capsys.readouterr().out + (tmp_path / "report.html").read_text()
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    assert con.execute("SELECT nothing_landed, files_processed FROM v_last_run").fetchall() == [(False, 1)]
    con.close()
    assert cmd_run(_run_args(landing, lake)) == EXIT_OK      # a re-run: the file is known, it did land
    assert "nothing landed" not in capsys.readouterr().err
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    assert con.execute("SELECT nothing_landed, files_skipped_known FROM v_last_run").fetchall() == [(False, 1)]
    con.close()
