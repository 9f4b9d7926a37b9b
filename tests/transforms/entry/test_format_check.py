"""transforms/entry/format_check.py through the command line: `cdr-audit formats list`, `formats show NAME` and
`formats check FILE [--formats DIR] [--format NAME]` — which format a new source's file is and why, what becomes of
each of its columns, how many of its first records parse per canonical column, the quarantine reasons by count,
and never a value from the file (docs/design.md §1)."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from transforms.bundled import BUILTIN_FORMATS
from transforms.entry.cli import main
from transforms.entry.commands import EXIT_FAILED, EXIT_FITS_WITH_REJECTS, EXIT_NO_FORMAT, EXIT_OK, EXIT_USAGE

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "formats"
BUILTINS = ("asterisk_master_18", "asterisk_master_21", "canonical_csv", "canonical_parquet", "freeswitch_cdr_csv",
            "mediation_3gpp_csv", "refuse_asterisk_cel", "refuse_subscriber_table", "refuse_tariff_table",
            "ts32298_cs", "ts32298_ps")


def cdr_audit(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def values_of(content: bytes, header: bool, delimiter: str = ",") -> set[str]:
    """Every value of the file's records a report could leak: text of 4+ characters, or with 3+ digits (numbers,
    IMSIs, IMEIs, times, names, addresses). Shorter ones ('EUR', '60') also spell counts and column names."""
    rows = list(csv.reader(io.StringIO(content.decode(), newline=""), delimiter=delimiter))[1 if header else 0:]
    return {v for row in rows for v in row if len(v) >= 4 or len(re.findall(r"\d", v)) >= 3}


def assert_no_value(text: str, values: set[str]) -> None:
    assert values, "nothing to look for"
    assert sorted(v for v in values if v in text) == []


def column_findings(out: str) -> dict[str, tuple[str, ...]]:
    """The `columns:` block: source column -> (classification, action[, canonical columns])."""
    block = out.split("  columns:\n", 1)[1].split("  canonical columns", 1)[0]
    return {parts[0]: tuple(p for p in parts[1:] if p != "→") for parts in (line.split() for line in block.splitlines())}


def parse_counts(out: str) -> dict[str, tuple[int, int]]:
    """The `canonical columns with values` block: canonical column -> (values that parse, values present)."""
    block = out.split("(parsed / present):\n", 1)[1].split("  would be quarantined", 1)[0]
    counts = {}
    for line in block.splitlines():
        column, parsed, slash, present = line.split()
        assert slash == "/"
        counts[column] = (int(parsed.replace(",", "")), int(present.replace(",", "")))
    return counts


def quarantine_reasons(out: str) -> dict[str, int]:
    text = out.split("would be quarantined, by reason: ", 1)[1].splitlines()[0]
    if text == "none":
        return {}
    return {reason: int(n.replace(",", "")) for reason, n in
            (re.fullmatch(r"(.+) \(([\d,]+)\)", part).groups() for part in text.split("; "))}


# ---------------------------------------------------------------- list and show

def test_list_names_every_format_and_where_they_come_from(capsys):
    code, out, err = cdr_audit(capsys, "formats", "list")
    assert (code, err) == (EXIT_OK, "")
    assert out.splitlines()[0] == f"{len(BUILTINS)} formats (from {BUILTIN_FORMATS}):"
    listed = [line.split()[0] for line in out.splitlines()[1:]]
    assert listed == sorted(BUILTINS) + ["payments", "consents"]       # the extracts have their own steps
    assert re.search(r"refuse_subscriber_table\s+refused\s", out)
    assert re.search(r"asterisk_master_18\s+csv, no header\s", out)
    assert re.search(r"ts32298_ps\s+csv, header\s", out)


def test_show_says_what_each_canonical_column_is_made_of(capsys):
    code, out, _ = cdr_audit(capsys, "formats", "show", "ts32298_ps")
    assert code == EXIT_OK
    assert f"  file: {BUILTIN_FORMATS / 'ts32298_ps.yaml'}" in out
    assert re.search(r"imei\s+← IMEI from the IMEISV in servedIMEISV\n", out)
    assert re.search(r"data_volume_bytes\s+← dataVolumeGPRSUplink \+ dataVolumeGPRSDownlink\n", out)
    assert re.search(r"cell_id\s+← cellIdentifier \(hex → decimal\)\n", out)
    assert re.search(r"service_area\s+← home / roaming by the serving network in servingNodePLMNIdentifier\n", out)
    code, out, _ = cdr_audit(capsys, "formats", "show", "asterisk_master_18")
    assert "unanswered legs (not ANSWERED in disposition): kept as attempts with duration 0" in out
    code, out, _ = cdr_audit(capsys, "formats", "show", "refuse_asterisk_cel")
    assert "refused: files of it are an Asterisk CEL channel event log" in out


def test_show_of_an_unknown_format_is_bad_usage(capsys):
    code, out, err = cdr_audit(capsys, "formats", "show", "cisco_cucm")
    assert (code, out) == (EXIT_USAGE, "")
    assert err == "cdr-audit: no format 'cisco_cucm'; `cdr-audit formats list` names them\n"


# ---------------------------------------------------------------- check: files that fit

@pytest.mark.parametrize("fixture, fmt, why, records", [
    ("asterisk_master_18.csv", "asterisk_master_18", "18 fields; the shape of start", 2),
    ("asterisk_master_21.csv", "asterisk_master_21", "21 fields; the shape of start", 1),
    ("freeswitch_cdr_csv.csv", "freeswitch_cdr_csv", "15 fields; the shape of start_stamp", 2),
    ("mediation_3gpp_csv.csv", "mediation_3gpp_csv", "header names servedMSISDN, callDuration, dataVolumeUplink", 2),
    ("ts32298_cs.csv", "ts32298_cs", "header names recordType, servedIMSI, callingNumber, calledNumber", 4),
    ("ts32298_ps.csv", "ts32298_ps", "header names recordType, servedIMSI, recordOpeningTime, dataVolumeGPRSUplink",
     3),
])
def test_each_fixture_fits_its_format_and_no_value_is_printed(capsys, fixture, fmt, why, records):
    path = FIXTURES / fixture
    code, out, err = cdr_audit(capsys, "formats", "check", str(path))
    assert_no_value(out + err, values_of(path.read_bytes(), header=fmt.startswith(("mediation", "ts32298"))))
    assert (code, err) == (EXIT_OK, ""), out
    lines = out.splitlines()
    assert lines[0] == f"{fixture}: format {fmt} — {why}"
    assert lines[1] == f"  {records} record(s) read, 0 unparseable"
    assert quarantine_reasons(out) == {}
    counts = parse_counts(out)
    assert counts["origin_number"] == (records, records)         # every record has its calling party …
    assert all(parsed == present for parsed, present in counts.values())   # … and every value given parses


def test_check_of_asterisk_reports_each_column_and_each_canonical_count(capsys):
    code, out, _ = cdr_audit(capsys, "formats", "check", str(FIXTURES / "asterisk_master_18.csv"))
    assert code == EXIT_OK
    columns = column_findings(out)
    assert list(columns) == ["accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
                             "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
                             "uniqueid", "userfield"]       # the 18 columns of cdr_csv, in order
    assert columns["src"] == ("allowed", "kept", "origin_number,origin_country_code")   # and its calling code
    assert columns["dcontext"] == ("used_for_derivation", "dropped", "direction")     # read to decide, not kept
    assert columns["disposition"] == ("used_for_derivation", "dropped", "duration_s")
    assert columns["clid"] == ("not_allowed", "dropped")                                # the caller's name
    assert columns["userfield"] == ("not_allowed", "dropped")
    # Both records give the eight columns the format feeds, and every one parses; nothing else is printed.
    assert parse_counts(out) == {c: (2, 2) for c in ("origin_number", "destination_number", "direction",
                                                      "start_time", "duration_s", "service_type",
                                                      "origin_country_code", "called_country_code")}


def test_check_of_a_ts32298_cs_file_counts_only_the_values_present(capsys):
    code, out, _ = cdr_audit(capsys, "formats", "check", str(FIXTURES / "ts32298_cs.csv"))
    assert code == EXIT_OK
    counts = parse_counts(out)
    assert counts["redirection_number"] == (1, 1)     # one forwarded leg of the four records
    assert counts["start_time"] == (4, 4)              # three answer times, one seizure time (the SMS)
    assert "termination_network" not in counts and "apn" not in counts
    assert column_findings(out)["releaseTime"] == ("not_allowed", "dropped")


def test_check_of_a_canonical_parquet_file(tmp_path, capsys):
    path = tmp_path / "billing.parquet"
    con = duckdb.connect()
    try:
        con.execute("COPY (SELECT '+38640123456' AS origin_number, '+38641765432' AS destination_number,"
                    " 'outgoing' AS direction, '2026-11-22T10:00:00Z' AS start_time, 60 + range AS duration_s,"
                    " 'call' AS service_type, 'Ana Novak' AS caller_name FROM range(3)) TO $p (FORMAT parquet)",
                    {"p": str(path)})
    finally:
        con.close()
    code, out, err = cdr_audit(capsys, "formats", "check", str(path), "--records", "2")
    assert code == EXIT_OK, out + err
    assert out.splitlines()[:2] == ["billing.parquet: format canonical_parquet — at least 3 canonical column names",
                                    "  2 record(s) read, 0 unparseable"]
    assert column_findings(out)["caller_name"] == ("not_allowed", "dropped")
    assert_no_value(out + err, {"+38640123456", "+38641765432", "Ana Novak", "2026-11-22T10:00:00Z"})


def test_records_limits_the_records_checked(capsys):
    code, out, _ = cdr_audit(capsys, "formats", "check", str(FIXTURES / "asterisk_master_18.csv"), "--records", "1")
    assert (code, out.splitlines()[1]) == (EXIT_OK, "  1 record(s) read, 0 unparseable")       # no header line
    code, out, _ = cdr_audit(capsys, "formats", "check", str(FIXTURES / "ts32298_cs.csv"), "--records", "2")
    assert (code, out.splitlines()[1]) == (EXIT_OK, "  2 record(s) read, 0 unparseable")       # after the header


# ---------------------------------------------------------------- check: files that fit with rejects

# A canonical file whose records each break one thing; every reason is the one a night would quarantine for.
WITH_REJECTS = (
    b"origin_number,destination_number,direction,start_time,duration_s,service_type,email\n"
    b"+38640123456,+38641765432,outgoing,2026-11-22T10:00:00Z,60,call,ana.novak@example.com\n"     # fine
    b"bor.kos@example.com,+38641765432,outgoing,2026-11-22T10:05:00Z,61,call,\n"  # an e-mail for a number
    b"+38640123457,+38641765433,outgoing,2026-11-22T10:06:00Z,sixty,call,\n"      # a duration that is no number
    b"+38640123458,+38641765434,outgoing,2026-11-22T10:07:00Z,62,call,,spare\n"   # one field too many
    b"+38640123456,+38641765432,outgoing,2026-11-22T10:00:00Z,60,call,ana.novak@example.com\n"     # record 1 again
    b'+38640123459,+38641765435,"outgoing\nincoming",2026-11-22T10:08:00Z,63,call,\n'   # a line break in a field
)


def test_a_file_that_fits_with_rejects_gives_each_reason_by_count(tmp_path, capsys):
    path = tmp_path / "billing.csv"
    path.write_bytes(WITH_REJECTS)
    code, out, err = cdr_audit(capsys, "formats", "check", str(path))
    assert_no_value(out + err, values_of(WITH_REJECTS, header=True))
    assert code == EXIT_FITS_WITH_REJECTS, out
    assert out.splitlines()[:2] == ["billing.csv: format canonical_csv — at least 3 canonical column names",
                                    "  6 record(s) read, 1 unparseable"]
    assert quarantine_reasons(out) == {
        "unparseable: too many columns": 1,     # 8 fields under a 7-name header: never staged
        "origin_number_shape": 1,               # the e-mail is no phone number
        "duration_s_unparseable": 1,            # 'sixty' is no BIGINT
        "duplicate_row": 1,                     # record 5 repeats record 1
        "record_spans_lines": 1,                # the quoted line break …
        "direction_allowed_value": 1,           # … and what it left in direction
    }
    counts = parse_counts(out)
    assert counts["duration_s"] == (4, 5)       # of the 5 staged records, 'sixty' does not parse
    assert counts["origin_number"] == (5, 5)    # text: present is parsed; its shape is a rule of its own
    assert column_findings(out)["email"] == ("not_allowed", "dropped")


# ---------------------------------------------------------------- check: no format

def test_a_file_no_format_fits_is_described_by_its_shape_only(tmp_path, capsys):
    content = b"name;msisdn;amount\nAna Novak;38640123456;12.50\nBor Kos;38641765432;7.25\n"
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    code, out, err = cdr_audit(capsys, "formats", "check", str(path))
    assert_no_value(out + err, values_of(content, header=True, delimiter=";"))
    assert code == EXIT_NO_FORMAT
    assert out == ("export.csv: no format fits — first record has 3 field(s) separated by semicolons"
                   " (it looks like a header) and matches no known format\n")


def test_a_refused_kind_of_file_says_what_it_looks_like(tmp_path, capsys):
    content = b"customerID,gender,SeniorCitizen,tenure,MonthlyCharges,Churn\n7590-VHVEG,Female,0,1,29.85,No\n"
    path = tmp_path / "churn.csv"
    path.write_bytes(content)
    code, out, err = cdr_audit(capsys, "formats", "check", str(path))
    assert_no_value(out + err, values_of(content, header=True))
    assert code == EXIT_NO_FORMAT
    assert out == ("churn.csv: no format fits — looks like a subscriber table (one row per customer, not per"
                   " communication) (refuse_subscriber_table): not read\n")


def test_format_forces_one(capsys):
    code, out, _ = cdr_audit(capsys, "formats", "check", str(FIXTURES / "asterisk_master_18.csv"),
                             "--format", "asterisk_master_18")
    assert (code, out.splitlines()[0]) == (EXIT_OK, "asterisk_master_18.csv: format asterisk_master_18 — forced")
    code, out, _ = cdr_audit(capsys, "formats", "check", str(FIXTURES / "asterisk_master_18.csv"),
                             "--format", "cisco_cucm")
    assert code == EXIT_NO_FORMAT
    assert out == ("asterisk_master_18.csv: no format fits — format 'cisco_cucm' is not known"
                   " (cdr-audit formats list)\n")


# ---------------------------------------------------------------- a user's formats folder

def users_asterisk(folder: Path, **edit) -> Path:
    """This deployment's Asterisk: its own inbound context, and the disposition not read (every leg billed)."""
    doc = yaml.safe_load((BUILTIN_FORMATS / "asterisk_master_18.yaml").read_text())
    doc["map"]["direction"]["when"][0]["match"] = ["ext-did*"]
    del doc["answered"]
    doc["not_allowed"].append("disposition")
    doc.update(edit)
    folder.mkdir(exist_ok=True)
    path = folder / "our_asterisk.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_users_format_replaces_the_builtin_of_its_name(tmp_path, capsys):
    mine = users_asterisk(tmp_path / "formats", title="Our PBX's Master.csv")
    code, out, _ = cdr_audit(capsys, "formats", "list", "--formats", str(mine.parent))
    assert code == EXIT_OK
    assert out.splitlines()[0] == f"{len(BUILTINS)} formats (from {BUILTIN_FORMATS}, {mine.parent}):"  # replaced
    assert re.search(r"asterisk_master_18\s+csv, no header\s+Our PBX's Master.csv\n", out)
    code, out, _ = cdr_audit(capsys, "formats", "show", "asterisk_master_18", "--formats", str(mine.parent))
    assert f"  file: {mine}" in out and "ext-did*" in out and "unanswered legs" not in out
    code, out, err = cdr_audit(capsys, "formats", "check", str(FIXTURES / "asterisk_master_18.csv"),
                               "--formats", str(mine.parent))
    assert (code, err) == (EXIT_OK, "")
    assert out.splitlines()[0].startswith("asterisk_master_18.csv: format asterisk_master_18 — ")
    assert column_findings(out)["disposition"] == ("not_allowed", "dropped")      # no longer read to decide


def test_a_file_its_format_cannot_read_is_refused_naming_the_format(capsys, monkeypatch):
    # Ingest recognised the format, then the reader gave up on the whole file (it returns the format's name with a
    # rejected_file): the file would be refused, but not for want of a format.
    from transforms.entry import format_check
    from transforms.steps.ingest import IngestResult

    def unreadable(path, *_args, **_kw):
        return IngestResult(file_name=path.name, sha256="0" * 64, bytes=path.stat().st_size, status="rejected_file",
                            reason="unreadable (InvalidInputException)", profile="asterisk_master_18",
                            source_columns=("accountcode", "src"))

    monkeypatch.setattr(format_check, "ingest_file", unreadable)
    code, out, _ = cdr_audit(capsys, "formats", "check", str(FIXTURES / "asterisk_master_18.csv"))
    assert code == EXIT_NO_FORMAT
    assert out == ("asterisk_master_18.csv: format asterisk_master_18 — 18 fields; the shape of start;"
                   " but the file would be refused: unreadable (InvalidInputException)\n")


@pytest.mark.parametrize("edit, where", [
    (lambda d: d["map"]["start_time"].update(time="yesterday"),
     "map.start_time.time: 'yesterday' is not one of iso, ts32298, epoch or a strptime pattern"),
    (lambda d: d["map"]["start_time"].update(time=["%Y-%m-%d %Q"]),      # read by DuckDB: no %Q there
     "map.start_time.time: '%Y-%m-%d %Q' is not a strptime pattern the reader knows"
     " (Unrecognized format for strftime/strptime: %Q)"),
    (lambda d: d["recognize"].update(colour="blue"), "recognize: unknown key(s): colour"),
    (lambda d: d["map"]["direction"]["when"][0].update(match=True),
     "map.direction.when[0].match: a pattern or a list of patterns"),
    (lambda d: d.update(quote="''"), "quote: one character, not the delimiter, got \"''\""),
])
def test_a_malformed_users_format_is_named_with_its_key_path(tmp_path, capsys, edit, where):
    folder = tmp_path / "formats"
    mine = users_asterisk(folder)
    doc = yaml.safe_load(mine.read_text())
    edit(doc)
    mine.write_text(yaml.safe_dump(doc, sort_keys=False))
    for action in (["list"], ["show", "asterisk_master_18"], ["check", str(FIXTURES / "asterisk_master_18.csv")]):
        code, out, err = cdr_audit(capsys, "formats", *action, "--formats", str(folder))
        assert (code, out) == (EXIT_FAILED, "")
        assert err == f"cdr-audit: bad source format: format file {mine}: {where}\n"


def test_a_malformed_users_format_ends_the_command_without_a_traceback(tmp_path):
    folder = tmp_path / "formats"
    mine = users_asterisk(folder)
    mine.write_text(mine.read_text().replace("map:", "map:\n  origin_number: [src", 1))     # broken YAML
    proc = subprocess.run([str(Path(sys.executable).parent / "cdr-audit"), "formats", "check",
                           str(FIXTURES / "asterisk_master_18.csv"), "--formats", str(folder)],
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (EXIT_FAILED, "")
    assert proc.stderr.startswith(f"cdr-audit: bad source format: format file {mine}: not valid YAML at line ")
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_a_compressed_file_under_a_glob_name_is_checked_as_the_night_reads_it(capsys, tmp_path):
    import gzip

    plain = (FIXTURES / "mediation_3gpp_csv.csv").read_bytes()
    (tmp_path / "*.csv").write_bytes(gzip.compress(plain))          # gzip, named like a glob of CSV files
    (tmp_path / "other.csv").write_bytes(plain + plain.split(b"\n", 1)[1])
    code, out, _ = cdr_audit(capsys, "formats", "check", str(tmp_path / "*.csv"))
    assert code == EXIT_OK, out
    assert out.startswith("*.csv: format mediation_3gpp_csv") and "2 record(s) read, 0 unparseable" in out
