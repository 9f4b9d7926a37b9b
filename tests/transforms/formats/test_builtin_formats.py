"""Every built-in source format (formats/*.yaml) against a file of it: recognised with the right reason, staged by
ingest with the canonical values worked out by hand below from the fixture's text and the export's public layout,
each source column classified as the format declares it, and no value of a column off the billing-data list in
the staged file (docs/design.md §1).

The files are tests/fixtures/formats/*.csv (see its README); the canonical layouts, the refused kinds and the
delimiter variants are written inline. Every expected value is written out literally with how it follows.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from transforms.formats.recognize import detect
from transforms.steps.fieldcheck import check_fields
from transforms.steps.ingest import ingest_file
from transforms.steps.reading import STAGING_TECHNICAL

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "formats"

# The calling codes of the origin and called country are derived from the numbers (tested with the calling-code
# table in test_calling_codes.py and test_expressions.py); these tests leave them out.
COUNTRY_CODES = ("origin_country_code", "called_country_code")


# ---------------------------------------------------------------- helpers

def ingest(path: Path, policy, formats, tmp_path: Path):
    result = ingest_file(path, policy, formats, tmp_path / f"work_{path.name}")
    assert result.rows_read == result.rows_staged + result.rows_unparseable + result.rows_refused
    return result


def staged_rows(result, policy) -> list[dict]:
    """The staged rows, every canonical column but the country codes, in file order."""
    assert result.status == "staged", result.reason
    columns = [c for c in policy.allowed_columns if c not in COUNTRY_CODES]
    con = duckdb.connect()
    try:
        rows = con.execute(f"SELECT {', '.join(columns)} FROM read_parquet($p)", {"p": result.staged_path}).fetchall()
    finally:
        con.close()
    return [dict(zip(columns, row, strict=True)) for row in rows]


def expected_rows(policy, *given: dict) -> list[dict]:
    """Rows with the given values and NULL in every other canonical column (the format feeds nothing else)."""
    empty = {c: None for c in policy.allowed_columns if c not in COUNTRY_CODES}
    for row in given:
        assert set(row) <= set(empty), set(row) - set(empty)
    return [{**empty, **row} for row in given]


def staged_values(result) -> tuple[list[str], set[str]]:
    """The staged file's column names, and every value in it as text (all columns, technical ones included)."""
    con = duckdb.connect()
    try:
        rel = con.execute("SELECT * FROM read_parquet($p)", {"p": result.staged_path})
        names = [d[0] for d in rel.description]
        cells = {str(v) for row in rel.fetchall() for v in row if v is not None}
    finally:
        con.close()
    return names, cells


def assert_off_list_values_absent(result, policy, texts: tuple[str, ...], cells: tuple[str, ...] = ()) -> None:
    """`texts` occur nowhere in the staged values (not even inside one); no staged value equals one of `cells`
    (short numbers that may legitimately occur inside a kept value, e.g. a charging id inside an MSISDN)."""
    names, values = staged_values(result)
    assert set(names) <= set(policy.allowed_columns) | set(STAGING_TECHNICAL)
    joined = "\x1f".join(sorted(values))
    assert [t for t in texts if t in joined] == []
    assert [c for c in cells if c in values] == []


# A finding as (classification, action, canonical columns) — written from the format file's map, answered
# rule and not_allowed list (docs/design.md §1: a column whose value is kept, as it is or transformed, is
# allowed; one only read to choose a value is used_for_derivation; a listed off-list column is not_allowed).
DROPPED = ("not_allowed", "dropped", "")


def kept(*columns: str) -> tuple[str, str, str]:
    """Its own value is stored as it is (in the first column; the others are derived from it)."""
    return ("allowed", "kept", ",".join(columns))


def derived(*columns: str) -> tuple[str, str, str]:
    return ("allowed", "derived", ",".join(columns))


def decides(*columns: str) -> tuple[str, str, str]:
    return ("used_for_derivation", "dropped", ",".join(columns))


def classified(result, policy, formats) -> dict[str, tuple[str, str, str]]:
    fc = check_fields(result, policy, formats)
    return {f.source_column: (f.classification, f.action,
                              ",".join(c for c in f.canonical_columns.split(",") if c not in COUNTRY_CODES))
            for f in fc.findings}


def test_the_policy_these_expectations_assume(policy):
    # Asterisk and FreeSWITCH times are local wall-clock times (timezone: local → operator.local_timezone);
    # the serving PLMN is home when it is one of operator.home_plmns.
    assert policy.operator.local_timezone == "Europe/Ljubljana"
    assert policy.operator.home_plmns == ("29340",)


# ---------------------------------------------------------------- recognition

@pytest.mark.parametrize("fixture, name, reason", [
    ("asterisk_master_18.csv", "asterisk_master_18", "asterisk_master_18: 18 fields; the shape of start"),
    ("asterisk_master_21.csv", "asterisk_master_21", "asterisk_master_21: 21 fields; the shape of start"),
    ("freeswitch_cdr_csv.csv", "freeswitch_cdr_csv", "freeswitch_cdr_csv: 15 fields; the shape of start_stamp"),
    ("mediation_3gpp_csv.csv", "mediation_3gpp_csv",
     "mediation_3gpp_csv: header names servedMSISDN, callDuration, dataVolumeUplink"),
    ("ts32298_cs.csv", "ts32298_cs", "ts32298_cs: header names recordType, servedIMSI, callingNumber, calledNumber"),
    ("ts32298_ps.csv", "ts32298_ps",
     "ts32298_ps: header names recordType, servedIMSI, recordOpeningTime, dataVolumeGPRSUplink"),
])
def test_each_fixture_is_recognised_as_its_format_with_the_reason(policy, formats, fixture, name, reason):
    d = detect((FIXTURES / fixture).read_bytes(), formats, policy)
    assert d.format is not None, d.reason
    assert (d.format.name, d.reason, d.delimiter) == (name, reason, ",")


# ---------------------------------------------------------------- 3GPP TS 32.298 packet-switched

PS_LINE_ENDINGS = {
    # The fixture mixes a CRLF header with LF records on purpose: files pass through Windows tools on their way.
    "as_delivered": lambda raw: raw,
    "lf_only": lambda raw: raw.replace(b"\r\n", b"\n"),
}


@pytest.fixture(params=sorted(PS_LINE_ENDINGS))
def ps_result(request, tmp_path, policy, formats):
    raw = (FIXTURES / "ts32298_ps.csv").read_bytes()
    assert b"\r\n" in raw and raw.count(b"\n") > raw.count(b"\r\n")      # the fixture really mixes them
    path = tmp_path / "ts32298_ps.csv"
    path.write_bytes(PS_LINE_ENDINGS[request.param](raw))
    return ingest(path, policy, formats, tmp_path)


def test_ts32298_ps_staged_values(ps_result, policy):
    assert (ps_result.profile, ps_result.rows_read, ps_result.rows_staged) == ("ts32298_ps", 3, 3)
    assert staged_rows(ps_result, policy) == expected_rows(
        policy,
        {
            "origin_number": "+38641123456",        # servedMSISDN: E.164 digits without '+' → '+' in front
            "direction": "outgoing",                # constant: the served subscriber's own session
            "start_time": "2026-11-21 18:56:42",    # TimeStamp 261121195642+0100: 2026-11-21 19:56:42 at UTC+1
            "duration_s": "120",
            "service_type": "data",                 # pGWRecord
            "data_volume_bytes": "3500",            # uplink 1000 + downlink 2500 octets
            "apn": "internet.a1.si",                # accessPointNameNI
            "cell_id": "49407",                     # hex C0FF = 12·4096 + 0·256 + 15·16 + 15
            "location_area": "6699",                # hex 1A2B = 1·4096 + 10·256 + 2·16 + 11
            "imsi": "293401234567890",
            # IMEISV 3520990017614823 = TAC 35209900 + SNR 176148 + SVN 23; IMEI = TAC + SNR + Luhn digit:
            # 3 5 2 0 9 9 0 0 1 7 6 1 4 8, every 2nd doubled (digit sum): 3+1+2+0+9+9+0+0+1+5+6+2+4+7 = 49 → 1
            "imei": "352099001761481",
            "origin_network": "29340",
            "service_area": "home",                 # 29340 is in operator.home_plmns
        },
        {
            "origin_number": "+38641123457",
            "direction": "outgoing",
            "start_time": "2026-11-21 23:15:00",    # 261122001500+0100: 2026-11-22 00:15 at UTC+1, the day before in UTC
            "duration_s": "60",
            "service_type": "data",                 # sGWRecord
            "data_volume_bytes": "30",              # 10 + 20
            "apn": "ims",
            "cell_id": "1",                         # hex 0001
            "location_area": "255",                 # hex 00FF
            "imsi": "293401234567891",
            # IMEISV 3520990017614900 → 35209900176149: 3+1+2+0+9+9+0+0+1+5+6+2+4+9 = 51 → check digit 9
            "imei": "352099001761499",
            "origin_network": "26201",
            "service_area": "roaming",              # 26201 is not a home PLMN
        },
        {
            "origin_number": "+38641123458",
            "direction": "outgoing",
            "start_time": "2026-11-22 07:30:00",    # 261122083000+0100
            "duration_s": "30",
            "service_type": "data",                 # record type by its ASN.1 number: 85 = P-GW record
            "data_volume_bytes": "10",              # 5 + 5
            "apn": "internet.a1.si",
            "cell_id": "49408",                     # hex C100 = 12·4096 + 1·256
            "location_area": "6699",
            "imsi": "293401234567892",
            # no IMEISV: no IMEI
            "origin_network": "29340",
            "service_area": "home",
        },
    )


def test_ts32298_ps_off_list_values_never_reach_the_staged_file(ps_result, policy):
    assert ps_result.status == "staged", ps_result.reason
    assert_off_list_values_absent(
        ps_result, policy,
        texts=("Ana Novak", "Bor Kos", "Cene Mlakar",                       # subscriberName
               "10.1.2.3", "10.1.2.4", "10.1.2.5",                          # servedPDPPDNAddress
               "3520990017614823", "3520990017614900",                      # the IMEISVs (their SVN is dropped)
               "261121195642", "C0FF", "1A2B"),                             # raw times and hex never kept as such
        cells=("123456", "123457", "123458", "16"))                         # chargingID, causeForRecClosing


def test_ts32298_ps_columns_classified_as_the_format_declares(ps_result, policy, formats):
    assert classified(ps_result, policy, formats) == {
        # an unlisted record type is kept in lower case as the service type (the cases' default)
        "recordType": derived("service_type"),
        "servedIMSI": kept("imsi"),
        "servedIMEISV": derived("imei"),
        "servedMSISDN": derived("origin_number"),
        "accessPointNameNI": kept("apn"),
        "servedPDPPDNAddress": DROPPED,
        "servingNodePLMNIdentifier": kept("origin_network", "service_area"),
        "locationAreaCode": derived("location_area"),
        "cellIdentifier": derived("cell_id"),
        "rATType": DROPPED,
        "recordOpeningTime": kept("start_time"),         # the same instant, in UTC
        "duration": kept("duration_s"),
        "dataVolumeGPRSUplink": derived("data_volume_bytes"),
        "dataVolumeGPRSDownlink": derived("data_volume_bytes"),
        "causeForRecClosing": DROPPED,
        "chargingID": DROPPED,
        "subscriberName": DROPPED,
    }


# ---------------------------------------------------------------- 3GPP TS 32.298 circuit-switched

@pytest.fixture()
def cs_result(tmp_path, policy, formats):
    return ingest(FIXTURES / "ts32298_cs.csv", policy, formats, tmp_path)


def test_ts32298_cs_staged_values(cs_result, policy):
    assert (cs_result.profile, cs_result.rows_read, cs_result.rows_staged) == ("ts32298_cs", 4, 4)
    device = {
        "cell_id": "49407",                   # hex C0FF
        "location_area": "6699",              # hex 1A2B
        "imsi": "293401234567890",
        "imei": "352099001761481",            # servedIMEI already 15 digits (an IMEI): passes as it is
        "origin_network": "29340",
        "service_area": "home",               # 29340 is in operator.home_plmns
    }
    assert staged_rows(cs_result, policy) == expected_rows(
        policy,
        {   # moCallRecord: the served subscriber calls
            "origin_number": "+38641123456",        # servedMSISDN, E.164 digits → '+'
            "destination_number": "+4930123456",    # calledNumber, E.164 digits → '+'
            "direction": "outgoing",
            "start_time": "2026-11-21 18:56:42",    # answerTime 261121195642+0100 (the call starts when answered)
            "duration_s": "120",
            "service_type": "call",
            **device,
        },
        {   # mtCallRecord: the served subscriber is called — calling party is the other one
            "origin_number": "+4930123456",         # callingNumber
            "destination_number": "+38641123456",   # servedMSISDN
            "direction": "incoming",
            "start_time": "2026-11-21 19:00:10",    # answerTime 261121200010+0100
            "duration_s": "60",
            "service_type": "call",
            **device,
        },
        {   # moSMSRecord: no answer time → seizureTime
            "origin_number": "+38641123456",
            "destination_number": "+38640111222",
            "direction": "outgoing",
            "start_time": "2026-11-21 19:15:00",    # seizureTime 261121201500+0100
            "duration_s": "0",
            "service_type": "sms",
            **device,
        },
        {   # mtCallRecord with a redirecting number: a forwarded leg
            "origin_number": "+38640555666",        # callingNumber
            "destination_number": "+38641123456",   # servedMSISDN
            "redirection_number": "+38641123456",   # redirectingNumber, E.164 digits → '+'
            "direction": "forwarded",
            "start_time": "2026-11-21 19:30:05",    # answerTime 261121203005+0100
            "duration_s": "60",
            "service_type": "call",
            **device,
        },
    )


def test_ts32298_cs_off_list_values_never_reach_the_staged_file(cs_result, policy):
    assert_off_list_values_absent(
        cs_result, policy,
        texts=("38640999000",                                              # mscAddress
               "261121195842", "261121200110", "261121203105"),             # releaseTime
        cells=("0A1B", "0A1C", "0A1D", "0A1E"))                             # callReference


def test_ts32298_cs_columns_classified_as_the_format_declares(cs_result, policy, formats):
    assert classified(cs_result, policy, formats) == {
        # chooses who is calling and called, the direction and the service; an unlisted type is kept lower-cased
        "recordType": derived("origin_number", "destination_number", "direction", "service_type"),
        "servedIMSI": kept("imsi"),
        "servedIMEI": derived("imei"),
        "servedMSISDN": derived("origin_number", "destination_number"),
        "callingNumber": derived("origin_number"),
        "calledNumber": derived("destination_number"),
        "redirectingNumber": derived("direction", "redirection_number"),
        "seizureTime": derived("start_time"),            # the start when there is no answer time (SMS)
        "answerTime": derived("start_time"),
        "releaseTime": DROPPED,
        "callDuration": kept("duration_s"),
        "locationAreaCode": derived("location_area"),
        "cellIdentifier": derived("cell_id"),
        "servingNodePLMNIdentifier": kept("origin_network", "service_area"),
        "mscAddress": DROPPED,
        "callReference": DROPPED,
    }


# ---------------------------------------------------------------- mediation CSV

@pytest.fixture()
def mediation_result(tmp_path, policy, formats):
    return ingest(FIXTURES / "mediation_3gpp_csv.csv", policy, formats, tmp_path)


def test_mediation_3gpp_csv_staged_values(mediation_result, policy):
    assert (mediation_result.profile, mediation_result.rows_read, mediation_result.rows_staged) == \
        ("mediation_3gpp_csv", 2, 2)
    assert staged_rows(mediation_result, policy) == expected_rows(
        policy,
        {
            "origin_number": "+38641123456",
            "destination_number": "+38640111222",
            "direction": "incoming",                 # MTC: mobile-terminated
            "start_time": "2026-11-22 09:00:00",     # 2026-11-22T10:00:00+01:00
            "duration_s": "60",
            "service_type": "call",                  # MTC
            "cell_id": "C0FF",                       # this layout keeps cell and area as delivered (no hex: true)
            "location_area": "1A2B",
            "imsi": "293401234567890",
            "imei": "352099001761481",
            "origin_network": "29340",
            "termination_network": "29340",
            "service_area": "home",
            "tariff_code": "A1_GO_M",
            "charged_amount": "0.0000",
            "discount_amount": "0.0000",
            "currency": "EUR",
            "tax_amount": "0.0000",
        },
        {
            "origin_number": "+38641123456",
            "direction": "outgoing",                 # PGW: not MTC, SMST or CFW
            "start_time": "2026-11-22 10:00:00",     # 2026-11-22T11:00:00+01:00
            "duration_s": "300",
            "service_type": "data",                  # PGW
            "data_volume_bytes": "300",              # 100 + 200
            "apn": "internet",
            "cell_id": "C0FF",
            "location_area": "1A2B",
            "imsi": "293401234567890",
            "imei": "352099001761481",
            "origin_network": "26201",
            "service_area": "roaming",               # 26201 is not a home PLMN
            "tariff_code": "A1_GO_M",
            "charged_amount": "0.5000",
            "discount_amount": "0.0000",
            "currency": "EUR",
            "tax_amount": "0.1100",
        },
    )


def test_mediation_3gpp_csv_off_list_values_never_reach_the_staged_file(mediation_result, policy):
    assert_off_list_values_absent(mediation_result, policy,
                                  texts=("10.0.0.9",),                      # servedPDPAddress
                                  cells=("c9",))                            # chargingID


def test_mediation_3gpp_csv_columns_classified_as_the_format_declares(mediation_result, policy, formats):
    assert classified(mediation_result, policy, formats) == {
        "recordType": derived("direction", "service_type"),  # an unlisted type is kept lower-cased
        "servedMSISDN": kept("origin_number"),
        "servedIMSI": kept("imsi"),
        "servedIMEI": kept("imei"),
        "calledNumber": kept("destination_number"),
        "redirectingNumber": kept("redirection_number"),
        "recordOpeningTime": kept("start_time"),
        "callDuration": kept("duration_s"),
        "locationAreaCode": kept("location_area"),
        "cellIdentifier": kept("cell_id"),
        "servingNodePLMNIdentifier": kept("origin_network", "service_area"),
        "terminatingPLMNIdentifier": kept("termination_network"),
        "dataVolumeUplink": derived("data_volume_bytes"),
        "dataVolumeDownlink": derived("data_volume_bytes"),
        "accessPointName": kept("apn"),
        "chargingID": DROPPED,
        "servedPDPAddress": DROPPED,
        "tariffClass": kept("tariff_code"),
        "chargedAmount": kept("charged_amount"),
        "discountAmount": kept("discount_amount"),
        "taxAmount": kept("tax_amount"),
        "currency": kept("currency"),
    }


# ---------------------------------------------------------------- Asterisk cdr_csv Master.csv

ASTERISK_18_COLUMNS = {   # cdr_csv's column order: accountcode, src, dst, dcontext, clid, … userfield
    "accountcode": DROPPED,
    "src": kept("origin_number"),
    "dst": kept("destination_number"),
    "dcontext": decides("direction"),           # the dial-plan context says inbound; never kept
    "clid": DROPPED,                            # caller id with the name
    "channel": DROPPED,
    "dstchannel": DROPPED,
    "lastapp": DROPPED,
    "lastdata": DROPPED,
    "start": kept("start_time"),
    "answer": DROPPED,
    "end": DROPPED,
    "duration": DROPPED,                        # ringing included: billsec is the billed duration
    "billsec": kept("duration_s"),
    "disposition": decides("duration_s"),       # an unanswered leg is an attempt with duration 0
    "amaflags": DROPPED,
    "uniqueid": DROPPED,
    "userfield": DROPPED,
}
ASTERISK_OFF_LIST_TEXTS = (
    "A1BIZ-1",                                  # accountcode
    "Ana Novak", "Bor Kos",                     # clid
    "PJSIP/trunk-1", "PJSIP/100-1", "PJSIP/100-2", "PJSIP/trunk-2",    # channel, dstchannel
    "Dial", "PJSIP/100,30", "PJSIP/trunk/",     # lastapp, lastdata
    "2026-07-01 12:00:05", "2026-07-01 12:01:05", "2026-07-01 13:00:20",   # answer, end (local times)
    "DOCUMENTATION", "1782900000.1", "1782900000.2",   # amaflags, uniqueid
    "from-pstn-custom", "from-trunk", "internal",      # dcontext: read to decide, never kept
    "ANSWERED", "NO ANSWER",                    # disposition: read to decide, never kept
)


def test_asterisk_master_18_staged_values(tmp_path, policy, formats):
    r = ingest(FIXTURES / "asterisk_master_18.csv", policy, formats, tmp_path)
    assert (r.profile, r.rows_read, r.rows_staged) == ("asterisk_master_18", 2, 2)
    assert staged_rows(r, policy) == expected_rows(
        policy,
        {
            "origin_number": "040123456",            # src as delivered (no prefix rule in this format)
            "destination_number": "0038641765432",   # dst as delivered
            "direction": "incoming",                 # dcontext from-pstn-custom matches from-pstn*
            "start_time": "2026-07-01 10:00:00",     # start 12:00:00 local; Ljubljana is UTC+2 in July
            "duration_s": "60",                      # billsec; disposition ANSWERED
            "service_type": "call",                  # constant
        },
        {
            "origin_number": "100",
            "destination_number": "0038641765432",
            "direction": "outgoing",                 # dcontext internal matches no inbound context
            "start_time": "2026-07-01 11:00:00",     # 13:00:00 local, UTC+2
            "duration_s": "0",                       # disposition NO ANSWER: an attempt, billsec 7 not billed
            "service_type": "call",
        },
    )
    assert_off_list_values_absent(r, policy, ASTERISK_OFF_LIST_TEXTS, cells=("65", "20", "7"))  # duration, billsec
    assert classified(r, policy, formats) == ASTERISK_18_COLUMNS


def test_asterisk_master_21_staged_values(tmp_path, policy, formats):
    r = ingest(FIXTURES / "asterisk_master_21.csv", policy, formats, tmp_path)
    assert (r.profile, r.rows_read, r.rows_staged) == ("asterisk_master_21", 1, 1)
    assert staged_rows(r, policy) == expected_rows(
        policy,
        {
            "origin_number": "040123456",
            "destination_number": "0038641765432",
            "direction": "incoming",                 # dcontext from-trunk matches from-trunk*
            "start_time": "2026-07-01 10:00:00",     # 12:00:00 local, UTC+2
            "duration_s": "60",                      # billsec; ANSWERED
            "service_type": "call",
        },
    )
    assert_off_list_values_absent(r, policy, ASTERISK_OFF_LIST_TEXTS, cells=("65",))
    # the 18 columns and peeraccount, linkedid, sequence: all three off the list
    assert classified(r, policy, formats) == {**ASTERISK_18_COLUMNS, "peeraccount": DROPPED, "linkedid": DROPPED,
                                               "sequence": DROPPED}


# ---------------------------------------------------------------- FreeSWITCH mod_cdr_csv

def test_freeswitch_cdr_csv_staged_values(tmp_path, policy, formats):
    r = ingest(FIXTURES / "freeswitch_cdr_csv.csv", policy, formats, tmp_path)
    assert (r.profile, r.rows_read, r.rows_staged) == ("freeswitch_cdr_csv", 2, 2)
    # The "example" template's columns: caller_id_name, caller_id_number, destination_number, context,
    # start_stamp, answer_stamp, end_stamp, duration, billsec, hangup_cause, uuid, bleg_uuid, accountcode,
    # read_codec, write_codec.
    assert staged_rows(r, policy) == expected_rows(
        policy,
        {
            "origin_number": "040123456",            # caller_id_number
            "destination_number": "0038641765432",
            "direction": "incoming",                 # context public: traffic from outside
            "start_time": "2026-07-01 10:00:00",     # start_stamp 12:00:00 local, UTC+2
            "duration_s": "60",                      # billsec (duration 65 includes ringing)
            "service_type": "call",
        },
        {
            "origin_number": "100",
            "destination_number": "0038641765432",
            "direction": "outgoing",                 # context default
            "start_time": "2026-07-01 11:00:00",     # 13:00:00 local, UTC+2
            "duration_s": "30",                      # billsec
            "service_type": "call",
        },
    )
    assert_off_list_values_absent(
        r, policy,
        texts=("Ana Novak", "Bor Kos",                                      # caller_id_name
               "2026-07-01 12:00:05", "2026-07-01 12:01:05", "2026-07-01 13:00:02", "2026-07-01 13:00:32",
               "NORMAL_CLEARING", "a1b2", "c3d4", "e5f6", "a7b8", "PCMA",     # hangup_cause, uuids, codecs
               "public", "default"),                                         # context: read to decide
        cells=("65", "32"))                                                   # duration
    assert classified(r, policy, formats) == {
        "caller_id_name": DROPPED,
        "caller_id_number": kept("origin_number"),
        "destination_number": kept("destination_number"),
        "context": decides("direction"),
        "start_stamp": kept("start_time"),
        "answer_stamp": DROPPED,
        "end_stamp": DROPPED,
        "duration": DROPPED,
        "billsec": kept("duration_s"),
        "hangup_cause": DROPPED,
        "uuid": DROPPED,
        "bleg_uuid": DROPPED,
        "accountcode": DROPPED,
        "read_codec": DROPPED,
        "write_codec": DROPPED,
    }


# ---------------------------------------------------------------- the canonical layouts

def canonical_text(sep: str) -> bytes:
    """A canonical CSV with two off-list columns between the policy's names; each name holds the delimiter."""
    rows = [
        ["caller_name", "origin_number", "destination_number", "direction", "start_time", "duration_s",
         "service_type", "imsi", "email", "cell_id"],
        [f'"Novak{sep} Ana"', "+38640123456", "0038641765432", "outgoing", "2026-11-22T10:00:00+01:00", "60",
         "call", "293401234567890", "ana.novak@example.com", "0A1B"],
        [f'"Kos{sep} Bor"', "040123456", "+4930123456", "incoming", "2026-11-22 23:30:00", "5",
         "sms", "293401234567891", "bor.kos@example.com", "00FF"],
    ]
    return ("\n".join(sep.join(r) for r in rows) + "\n").encode()


CANONICAL_ROWS = (
    {
        "origin_number": "+38640123456",         # every value as delivered: text, '+' and '00' kept
        "destination_number": "0038641765432",
        "direction": "outgoing",
        "start_time": "2026-11-22 09:00:00",     # ISO 8601 with +01:00 → UTC
        "duration_s": "60",
        "service_type": "call",
        "imsi": "293401234567890",
        "cell_id": "0A1B",                       # as delivered: the canonical layout converts nothing
    },
    {
        "origin_number": "040123456",
        "destination_number": "+4930123456",
        "direction": "incoming",
        "start_time": "2026-11-22 23:30:00",     # no offset: the canonical layout's times are UTC
        "duration_s": "5",
        "service_type": "sms",
        "imsi": "293401234567891",
        "cell_id": "00FF",
    },
)


@pytest.mark.parametrize("sep", [",", ";", "|", "\t"], ids=["comma", "semicolon", "pipe", "tab"])
def test_canonical_csv_in_each_delimiter_is_sniffed_and_loads(tmp_path, policy, formats, sep):
    path = tmp_path / "billing.csv"
    path.write_bytes(canonical_text(sep))
    d = detect(path.read_bytes(), formats, policy)
    assert (d.format.name, d.delimiter) == ("canonical_csv", sep)
    # 7 of the header's names are the policy's canonical columns (3 are needed)
    assert d.reason == "canonical_csv: at least 3 canonical column names"
    r = ingest(path, policy, formats, tmp_path)
    assert (r.profile, r.rows_read, r.rows_staged, r.rows_unparseable) == ("canonical_csv", 2, 2, 0)
    assert staged_rows(r, policy) == expected_rows(policy, *CANONICAL_ROWS)
    assert_off_list_values_absent(r, policy, texts=("Novak", "Kos", "@example.com"))
    columns = classified(r, policy, formats)
    assert (columns["caller_name"], columns["email"]) == (DROPPED, DROPPED)    # the format's not_allowed list
    assert columns["origin_number"] == kept("origin_number") and columns["start_time"] == kept("start_time")


def test_canonical_parquet_loads_by_column_name(tmp_path, policy, formats):
    path = tmp_path / "billing.parquet"
    con = duckdb.connect()
    try:
        con.execute(
            "COPY (SELECT * FROM (VALUES"
            " ('Novak Ana', '+38640123456', '0038641765432', 'outgoing', '2026-11-22T10:00:00+01:00', 60, 'call',"
            "  '293401234567890', 'ana.novak@example.com', '0A1B'),"
            " ('Kos Bor', '040123456', '+4930123456', 'incoming', '2026-11-22 23:30:00', 5, 'sms',"
            "  '293401234567891', 'bor.kos@example.com', '00FF'))"
            " AS t(caller_name, origin_number, destination_number, direction, start_time, duration_s, service_type,"
            "      imsi, email, cell_id)) TO $p (FORMAT parquet)", {"p": str(path)})
    finally:
        con.close()
    r = ingest(path, policy, formats, tmp_path)
    assert (r.profile, r.rows_read, r.rows_staged) == ("canonical_parquet", 2, 2)
    # the same values as the CSV: duration_s an INTEGER in the file, staged as its text
    assert staged_rows(r, policy) == expected_rows(policy, *CANONICAL_ROWS)
    assert_off_list_values_absent(r, policy, texts=("Novak", "Kos", "@example.com"))


# ---------------------------------------------------------------- files that are not CDRs

# cel_custom's Master.csv mapping: eventtype, eventtime, cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid, exten,
# context, channame, appname, appdata, amaflags, accountcode, uniqueid, linkedid, peer, userfield, userdeftype,
# extra — one row per channel event of one call.
CEL = (
    b'"CHAN_START","2026-11-22 10:00:00","Ana Novak","040123456","040123456","","","100","from-pstn",'
    b'"PJSIP/trunk-1","","","3","","1782900000.1","1782900000.1","","","",""\n'
    b'"ANSWER","2026-11-22 10:00:05","Ana Novak","040123456","040123456","","","100","from-pstn",'
    b'"PJSIP/trunk-1","Dial","PJSIP/100,30","3","","1782900000.1","1782900000.1","","","",""\n'
    b'"HANGUP","2026-11-22 10:01:05","Ana Novak","040123456","040123456","","","100","from-pstn",'
    b'"PJSIP/trunk-1","","","3","","1782900000.1","1782900000.1","","","",""\n'
)
# A churn table: one row per customer.
SUBSCRIBERS = (b"customerID,gender,SeniorCitizen,Partner,tenure,PhoneService,Contract,MonthlyCharges,Churn\n"
               b"7590-VHVEG,Female,0,Yes,1,No,Month-to-month,29.85,No\n"
               b"5575-GNVDE,Male,0,No,34,Yes,One year,56.95,No\n")
# A rating engine's rates: connect fee, rate per unit, the unit and increment.
TARIFFS = (b"#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n"
           b"RT_SI_MOBILE,0.05,0.12,60s,60s,0s\n"
           b"RT_SI_FIXED,0,0.03,60s,1s,0s\n")


@pytest.mark.parametrize("content, reason, records", [
    (CEL, "looks like an Asterisk CEL channel event log (one row per channel event, not per call)"
          " (refuse_asterisk_cel): not read", 3),                          # cel_custom writes no header
    (SUBSCRIBERS, "looks like a subscriber table (one row per customer, not per communication)"
                  " (refuse_subscriber_table): not read", 2),
    (TARIFFS, "looks like a tariff table (rates and rating units, not usage records) (refuse_tariff_table): not read",
     2),
], ids=["asterisk_cel", "subscriber_table", "tariff_table"])
def test_files_that_are_not_cdrs_are_refused_saying_what_they_look_like(tmp_path, policy, formats, content, reason,
                                                                        records):
    path = tmp_path / "extract.csv"
    path.write_bytes(content)
    r = ingest(path, policy, formats, tmp_path)
    # Refused whole: its records (lines, less a header) are counted as read and refused, none kept.
    assert (r.status, r.reason, r.profile, r.rows_read, r.rows_refused, r.staged_path) == (
        "rejected_file", reason, None, records, records, None)
    for value in ("Ana Novak", "040123456", "7590-VHVEG", "29.85", "RT_SI_MOBILE", "0.12"):
        assert value not in r.reason
