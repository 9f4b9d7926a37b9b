"""transforms/steps/ingest.py: landing file → staged canonical text, unparseable records counted by line.

How the reader accounts for each line is tested in test_reading.py; here, what ingest makes of it.
"""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from tests.transforms.steps.conftest import SECRET, asterisk
from transforms.formats import load_formats
from transforms.policy import load_policy
from transforms.lake.commit import sha256_file
from transforms.steps.ingest import ingest_file
from transforms.steps.lines import FileShape, fingerprint
from transforms.steps.reading import INGEST_FLAG, SPANS_LINES, STAGING_TECHNICAL

FORMATS = load_formats(load_policy())    # the built-in source formats


def freeswitch(number="040123456", start="2026-11-22 10:00:00", context="default", quoted=True) -> bytes:
    """One FreeSWITCH mod_cdr_csv record (15 columns)."""
    vals = ["Ana Novak", number, "0038641765432", context, start, start, start, "65", "60", "NORMAL_CLEARING",
            "a1b2", "c3d4", "", "PCMA", "PCMA"]
    if quoted:
        return (",".join(f'"{v}"' for v in vals) + "\n").encode()
    return (",".join(vals) + "\n").encode()


def run(tmp_path, policy, name, data: bytes, **kw):
    path = tmp_path / name
    path.write_bytes(data)
    result = ingest_file(path, policy, FORMATS, tmp_path / f"work_{name}", **kw)
    assert result.rows_read == result.rows_staged + result.rows_unparseable + result.rows_refused
    assert result.rows_refused == 0 or result.status == "rejected_file"
    return result


def staged(result, pq_read, columns="origin_number, destination_number, direction, start_time, duration_s"):
    return pq_read(result.staged_path, f"SELECT {columns} FROM t")


def unparseable(result, pq_read):
    if result.unparseable_path is None:
        return []
    return pq_read(result.unparseable_path, "SELECT source_row, reason FROM t ORDER BY source_row")


# ---------------------------------------------------------------- identifiers and times

def test_identifiers_stay_strings(tmp_path, policy, pq_read):
    data = (b"origin_number,destination_number,direction,start_time,duration_s,imsi,imei\n"
            b"040123456,0038641765432,outgoing,2026-11-22T09:00:00Z,007,293400000000001,0350000000000012\n"
            b"+38640123456,00123,incoming,2026-11-22T09:00:00Z,60,029340000000001,350000000000001\n")
    r = run(tmp_path, policy, "billing.csv", data)
    assert (r.status, r.profile, r.rows_staged) == ("staged", "canonical_csv", 2)
    # Leading zeros, '+' and '00' survive: nothing is typed as a number at ingest.
    assert staged(r, pq_read, "origin_number, destination_number, duration_s, imsi, imei") == [
        ("040123456", "0038641765432", "007", "293400000000001", "0350000000000012"),
        ("+38640123456", "00123", "60", "029340000000001", "350000000000001"),
    ]


@pytest.mark.parametrize("local, utc", [
    ("2026-11-22 10:00:00", "2026-11-22 09:00:00"),   # winter: CET = UTC+1
    ("2026-07-01 10:00:00", "2026-07-01 08:00:00"),   # summer: CEST = UTC+2
    ("2026-01-01 00:30:00", "2025-12-31 23:30:00"),   # crosses midnight and the year
])
def test_asterisk_local_time_stored_as_utc(tmp_path, policy, pq_read, local, utc):
    r = run(tmp_path, policy, "Master.csv", asterisk(start=local))
    assert r.profile == "asterisk_master_18"
    assert staged(r, pq_read, "start_time") == [(utc,)]


def test_asterisk_values_and_direction(tmp_path, policy, pq_read):
    data = asterisk(src="040123456", dst="+38641765432", billsec="59", dcontext="from-pstn") + \
        asterisk(src="0038640123456", dst="100", billsec="0", dcontext="internal")
    r = run(tmp_path, policy, "Master.csv", data)
    # from-pstn is an inbound context: incoming; anything else: outgoing. billsec feeds duration_s.
    assert staged(r, pq_read, "origin_number, destination_number, direction, duration_s, service_type") == [
        ("040123456", "+38641765432", "incoming", "59", "call"),
        ("0038640123456", "100", "outgoing", "0", "call"),
    ]


def test_freeswitch_local_time_quoted_and_resaved(tmp_path, policy, pq_read):
    data = (freeswitch("040123456", "2026-07-01 10:00:00", context="public")
            + freeswitch("+38640123456", "2026/11/22 10:00", quoted=False))   # spreadsheet-resaved
    r = run(tmp_path, policy, "freeswitch.csv", data)
    assert r.profile == "freeswitch_cdr_csv"
    assert staged(r, pq_read, "origin_number, direction, start_time, duration_s") == [
        ("040123456", "incoming", "2026-07-01 08:00:00", "60"),
        ("+38640123456", "outgoing", "2026-11-22 09:00:00", "60"),
    ]


def test_iso_times_with_offsets_are_normalised(tmp_path, policy, pq_read):
    data = (b"origin_number,destination_number,start_time\n"
            b"+38640123456,100,2026-11-22T10:00:00+01:00\n"     # -> 09:00 UTC
            b"+38640123456,100,2026-07-01 10:00:00+02:00\n"     # -> 08:00 UTC
            b"+38640123456,100,2026-11-22T09:00:00Z\n"          # already UTC
            b"+38640123456,100,2026-11-22T23:30:00-05:00\n"     # -> next day 04:30 UTC
            b"+38640123456,100,not a time\n")                   # kept as text: validate rejects it
    r = run(tmp_path, policy, "billing.csv", data)
    assert staged(r, pq_read, "start_time") == [
        ("2026-11-22 09:00:00",), ("2026-07-01 08:00:00",), ("2026-11-22 09:00:00",), ("2026-11-23 04:30:00",),
        ("not a time",)]


def test_mediation_mapping(tmp_path, policy, pq_read):
    data = (b"recordType,servedMSISDN,servedIMSI,calledNumber,recordOpeningTime,callDuration,"
            b"servingNodePLMNIdentifier,dataVolumeUplink,dataVolumeDownlink,chargingID,servedPDPAddress\n"
            b"MTC,38640123456,293400000000001,38641765432,2026-11-22T10:00:00+01:00,60,29340,,,c1,10.0.0.1\n"
            b"PGW,38640123456,293400000000001,,2026-11-22T10:00:00+01:00,0,26201,1000,2500,c2,10.0.0.2\n"
            b"CFW,38640123456,293400000000001,38641000000,2026-11-22T10:00:00+01:00,5,,,,c3,10.0.0.3\n")
    r = run(tmp_path, policy, "mediation.csv", data)
    assert r.profile == "mediation_3gpp_csv"
    # MTC: incoming call at home (29340 is the home PLMN); PGW: outgoing data roaming in 26201 with
    # 1000 + 2500 = 3500 bytes; CFW: forwarded call, no serving PLMN so no service area.
    assert staged(r, pq_read, "direction, service_type, service_area, origin_network, data_volume_bytes") == [
        ("incoming", "call", "home", "29340", None),
        ("outgoing", "data", "roaming", "26201", "3500"),
        ("forwarded", "call", None, None, None),
    ]


def test_country_calling_codes_from_the_numbers(tmp_path, policy, pq_read):
    # E.164 codes by hand: 49 Germany, 44 United Kingdom, 1 the North American plan; national numbers and
    # extensions are the operator's country, 386 (policy operator.country_calling_code).
    pbx = (asterisk(src="100", dst="0049301234567", dcontext="internal")           # out: dialled with 00
           + asterisk(src="+442071234567", dst="041765432", dcontext="from-pstn")   # in: the caller is abroad
           + asterisk(src="anonymous", dst="s", dcontext="from-pstn"))             # no number either side
    r = run(tmp_path, policy, "Master.csv", pbx)
    assert staged(r, pq_read, "direction, origin_country_code, called_country_code") == [
        ("outgoing", "386", "49"), ("incoming", "44", "386"), ("incoming", None, None)]
    cs = (b"recordType,servedIMSI,servedMSISDN,callingNumber,calledNumber,answerTime,callDuration\n"
          b"moCallRecord,293400000000001,38641123456,38641123456,4930123456,261121195642+0100,60\n"
          b"mtCallRecord,293400000000001,38641123456,0012125551234,38641123456,261121195642+0100,60\n"
          b"moSMSRecord,293400000000001,38641123456,38641123456,041765432,261121195642+0100,0\n"
          b"mtSMSRecord,293400000000001,38641123456,,38641123456,261121195642+0100,0\n")
    r = run(tmp_path, policy, "cs.csv", cs)
    assert r.profile == "ts32298_cs"
    # Mobile-terminated: the origin is the calling party, the called country the served subscriber's.
    assert staged(r, pq_read, "direction, origin_country_code, called_country_code") == [
        ("outgoing", "386", "49"), ("incoming", "1", "386"), ("outgoing", "386", "386"), ("incoming", None, "386")]


# ---------------------------------------------------------------- what is staged

def test_staged_parquet_holds_only_allowed_columns(tmp_path, policy, pq_columns):
    data = (b"origin_number,caller_name,email,ip_address,userfield,destination_number,start_time\n"
            b"+38640123456,Ana Novak,ana@example.com,10.1.2.3,vip customer,100,2026-11-22T09:00:00Z\n")
    r = run(tmp_path, policy, "billing.csv", data)
    cols = pq_columns(r.staged_path)
    # Every canonical column in policy order (NULL when the file lacks it), then ingest's own
    # technical columns for validate (no source values: a flag and a line count).
    assert cols == [*policy.allowed_columns, *STAGING_TECHNICAL]
    assert all(c.startswith("_") for c in STAGING_TECHNICAL)
    raw = (tmp_path / "work_billing.csv" / "staged.parquet").read_bytes()
    for off_list in (b"Ana Novak", b"ana@example.com", b"10.1.2.3", b"vip customer"):
        assert off_list not in raw


def test_parquet_input(tmp_path, policy, pq_read, pq_write):
    src = pq_write(tmp_path / "billing.parquet", """
        SELECT '040123456' AS origin_number, '+38641765432' AS destination_number, 'outgoing' AS direction,
               TIMESTAMPTZ '2026-07-01 10:00:00+02:00' AS start_time, 60 AS duration_s,
               'Ana Novak' AS caller_name""")
    r = ingest_file(src, policy, FORMATS, tmp_path / "work")
    assert (r.status, r.profile, r.rows_read, r.rows_staged, r.rows_unparseable) == (
        "staged", "canonical_parquet", 1, 1, 0)
    assert r.source_columns == ("origin_number", "destination_number", "direction", "start_time", "duration_s",
                                "caller_name")
    assert staged(r, pq_read) == [("040123456", "+38641765432", "outgoing", "2026-07-01 08:00:00", "60")]
    assert r.unparseable_path is None


def test_parquet_input_that_matches_no_format(tmp_path, policy, pq_write):
    src = pq_write(tmp_path / "other.parquet", "SELECT 1 AS a, 2 AS b")
    r = ingest_file(src, policy, FORMATS, tmp_path / "work")
    assert (r.status, r.reason, r.source_columns) == (
        "rejected_file", "a Parquet file with 2 columns that match no format", ("a", "b"))


def test_hostile_header_names(tmp_path, policy, pq_read):
    data = (b'origin_number,"x"");DROP TABLE staged;--",destination_number,"a;b\'c",start_time,'
            b'"040123456@evil.si","tab\tnul\x01",direction\n'
            b"+38640123456,v1,+38641765432,v2,2026-11-22T10:00:00Z,v3,v4,outgoing\n")
    r = run(tmp_path, policy, "hostile.csv", data)
    assert (r.status, r.rows_staged) == ("staged", 1)
    # Names are bound by position, never spliced into SQL; recorded names are printable and masked.
    assert r.source_columns == ("origin_number", 'x");DROP TABLE staged;--', "destination_number", "a;b'c",
                                "start_time", "<masked>", "tab?nul?", "direction")
    assert staged(r, pq_read, "origin_number, destination_number, direction, start_time") == [
        ("+38640123456", "+38641765432", "outgoing", "2026-11-22 10:00:00")]


def test_file_name_is_sanitized(tmp_path, policy):
    r = run(tmp_path, policy, "cdr_040123456_export.csv", b"origin_number,destination_number,start_time\n1,2,3\n")
    assert r.file_name == "cdr_<masked>_export.csv"


def test_sha256_and_size(tmp_path, policy):
    data = b"origin_number,destination_number,start_time\n+38640123456,100,2026-11-22T09:00:00Z\n"
    r = run(tmp_path, policy, "billing.csv", data)
    assert r.sha256 == hashlib.sha256(data).hexdigest() == sha256_file(tmp_path / "billing.csv")
    assert r.sha256 == fingerprint(tmp_path / "billing.csv").sha256
    assert r.bytes == len(data)


def test_shape_given_by_the_caller(tmp_path, policy):
    # The night's plan passes what its pass over the file found (here a made-up digest): not taken again.
    data = b"origin_number,destination_number,start_time\n+38640123456,100,2026-11-22T09:00:00Z\n"
    r = run(tmp_path, policy, "billing.csv", data, shape=FileShape("f" * 64, 2, "lf"))
    assert (r.sha256, r.status, r.rows_read, r.rows_staged, r.line_endings) == ("f" * 64, "staged", 1, 1, "lf")


# ---------------------------------------------------------------- records that cannot be parsed

def test_unparseable_lines_count_the_header(tmp_path, policy, pq_read):
    data = (b"origin_number,destination_number,start_time\n"                # line 1
            b"+38640123456,100,2026-11-22T09:00:00Z\n"                     # line 2 ok
            + SECRET.encode() + b",100,2026-11-22T09:00:00Z,surplus\n"     # line 3: too many
            + SECRET.encode() + b",100\n"                                  # line 4: missing
            b"+38640123457,100,2026-11-22T09:00:00Z\n")                    # line 5 ok
    r = run(tmp_path, policy, "billing.csv", data)
    assert (r.status, r.rows_read, r.rows_staged, r.rows_unparseable) == ("staged", 4, 2, 2)
    assert unparseable(r, pq_read) == [(3, "unparseable: too many columns"), (4, "unparseable: missing columns")]
    assert r.unparseable_by_reason == {"unparseable: too many columns": 1, "unparseable: missing columns": 1}
    assert staged(r, pq_read, "origin_number") == [("+38640123456",), ("+38640123457",)]
    # Never the content: not in any file ingest wrote.
    for written in (tmp_path / "work_billing.csv").rglob("*.parquet"):
        assert SECRET.encode() not in written.read_bytes()


@pytest.mark.parametrize("name", [b'"note\nx"', b'"note\n"'])     # the second one's break ends the name
def test_a_header_and_a_record_over_two_lines(tmp_path, policy, pq_read, name):
    # Ingest tells the reader how many lines the header took (a line break in a quoted name); the
    # record over two lines is staged with the flag that makes validate quarantine it.
    data = (b"origin_number,destination_number,start_time," + name + b"\n"   # lines 1-2
            b"+38640123456,100,2026-11-22T09:00:00Z,a\n"                   # 3 ok
            b'+38640123457,100,2026-11-22T09:00:00Z,"b\nc"\n'              # 4-5: one record
            + SECRET.encode() + b",100\n"                                  # 6: missing columns
            b"+38640123458,100,2026-11-22T09:00:00Z,d\n")                  # 7 ok
    r = run(tmp_path, policy, "billing.csv", data)
    assert (r.profile, r.rows_read, r.rows_staged, r.rows_unparseable) == ("canonical_csv", 4, 3, 1)
    assert unparseable(r, pq_read) == [(6, "unparseable: missing columns")]
    assert staged(r, pq_read, f"origin_number, {INGEST_FLAG}") == [
        ("+38640123456", None), ("+38640123457", SPANS_LINES), ("+38640123458", None)]


def test_empty_file(tmp_path, policy):
    r = run(tmp_path, policy, "empty.csv", b"")
    assert (r.status, r.reason, r.rows_read, r.staged_path) == ("empty", "file is empty (0 bytes)", 0, None)
    assert r.sha256 == hashlib.sha256(b"").hexdigest()


def test_header_only_file(tmp_path, policy):
    r = run(tmp_path, policy, "header.csv", b"origin_number,destination_number,start_time\n")
    assert (r.status, r.reason, r.rows_read) == ("empty", "no data rows", 0)


@pytest.mark.parametrize("data", [b"\n", b"\r\n\r\n", b"\n\n  \n\t\n", b"\r"])
def test_a_file_of_blank_lines_only_is_empty(tmp_path, policy, data):
    # Blank lines are not records (README "How a file is read"); found by tests/reliability (only_blank_lines):
    # such a file was refused whole with its blank lines counted as rows read.
    r = run(tmp_path, policy, "blank.csv", data)
    assert (r.status, r.rows_read, r.rows_refused) == ("empty", 0, 0)


def test_unmatched_file_is_rejected_whole(tmp_path, policy):
    r = run(tmp_path, policy, "odd.csv", b"a;b;c\n1;2;3\n")
    assert r.status == "rejected_file"
    # The delimiter is sniffed: the reason tells the file's real shape, not "1 field".
    assert r.reason == ("first record has 3 field(s) separated by semicolons (it looks like a header)"
                        " and matches no known format")
    # Refused whole: its one record (the header is not one) is read and refused, nothing of it staged.
    assert (r.rows_read, r.rows_refused, r.staged_path, r.source_columns) == (1, 1, None, ())


def test_bom_prefixed_canonical_file(tmp_path, policy, pq_read):
    data = b"\xef\xbb\xbforigin_number,destination_number,start_time\n+38640123456,100,2026-11-22T09:00:00Z\n"
    r = run(tmp_path, policy, "bom.csv", data)
    assert r.source_columns[0] == "origin_number"
    assert (r.rows_read, r.rows_staged) == (1, 1)
    assert staged(r, pq_read, "origin_number") == [("+38640123456",)]


def test_format_override(tmp_path, policy, pq_read):
    # An 18-field record whose start does not look like a timestamp is not detected; forced, it reads.
    data = asterisk(start="22.11.2026 10:00:00")
    assert run(tmp_path, policy, "a.csv", data).status == "rejected_file"
    r = run(tmp_path, policy, "b.csv", data, format_override="asterisk_master_18")
    assert r.profile == "asterisk_master_18"
    assert staged(r, pq_read, "start_time") == [("2026-11-22 09:00:00",)]


def test_parallel_read_keeps_source_order(tmp_path, policy):
    # DuckDB turns an IN list of 5+ constants (the Asterisk direction mapping) into a hash join that,
    # under a parallel scan, loses row order; source_row / record_id must still name the right record.
    path = tmp_path / "Master.csv"
    duckdb.execute(f"""
        COPY (SELECT '' AS accountcode, '0401' || lpad(i::VARCHAR, 6, '0') AS src, '100' AS dst,
                     CASE WHEN i % 2 = 0 THEN 'from-pstn' ELSE 'from-internal' END AS dcontext,
                     '"N" <1>' AS clid, 'SIP/x' AS channel, '' AS dstchannel, 'Dial' AS lastapp, '' AS lastdata,
                     '2026-11-22 10:00:00' AS start, '' AS answer, '' AS "end", 1 AS duration,
                     i AS billsec, 'ANSWERED' AS disposition, 'BILLING' AS amaflags, i::VARCHAR AS uniqueid,
                     '' AS userfield
              FROM range(300000) t(i))
        TO '{path}' (FORMAT csv, HEADER false, QUOTE '"', FORCE_QUOTE *)""")
    result = ingest_file(path, policy, FORMATS, tmp_path / "work")
    assert result.profile == "asterisk_master_18" and result.rows_staged == 300000
    out_of_order = duckdb.execute(
        "SELECT count(*) FROM (SELECT file_row_number AS pos, CAST(duration_s AS BIGINT) AS i"
        " FROM read_parquet(?, file_row_number = true)) WHERE pos <> i", [result.staged_path]).fetchone()[0]
    assert out_of_order == 0
