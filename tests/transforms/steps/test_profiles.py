"""transforms/steps/profiles.py: the first record of a file picks its profile; payments extracts are told apart."""

from __future__ import annotations

import pytest

from transforms.steps.profiles import (
    ALL_PROFILES,
    CANONICAL_COLUMNS,
    PAYMENTS_COLUMNS,
    detect,
    first_record,
    is_payments_extract,
    is_payments_header,
)

# First row of a public Asterisk cdr_csv sample (the Asterisk testsuite), as delivered.
ASTERISK_SAMPLE_ROW = (
    b'"","test","100","context","""Test User"" <test>","SIP/test-02897fd8","","Hangup","",'
    b'"2009-01-14 23:51:15","2009-01-14 23:51:15","2009-01-14 23:51:20",5,5,"ANSWERED","DOCUMENTATION",'
    b'"1231977075.0",""\n'
)

CANONICAL_HEADER = (",".join(CANONICAL_COLUMNS) + "\n").encode()
MEDIATION_HEADER = (
    b"recordType,servedMSISDN,servedIMSI,servedIMEI,calledNumber,redirectingNumber,recordOpeningTime,"
    b"callDuration,locationAreaCode,cellIdentifier,servingNodePLMNIdentifier,terminatingPLMNIdentifier,"
    b"dataVolumeUplink,dataVolumeDownlink,accessPointName,chargingID,servedPDPAddress,tariffClass,"
    b"chargedAmount,discountAmount,taxAmount,currency\n"
    b"MOC,38640123456,293400000000001,350000000000001,38641765432,,2026-11-22T10:00:00+01:00,60,1A2B,"
    b"0A1B-00FF,29340,29341,,,,c1,,T1,0.10,0,0.02,EUR\n"
)
# Asterisk cdr_csv Master.csv, 18 columns, every text value quoted, clid with a doubled quote.
ASTERISK_18_ROW = (
    b'"","040123456","100","from-pstn","""Ana Novak"" <040123456>","SIP/trunk-02897fd8","SIP/100-1",'
    b'"Dial","SIP/100,30","2026-11-22 10:00:00","2026-11-22 10:00:05","2026-11-22 10:01:05",65,60,'
    b'"ANSWERED","DOCUMENTATION","1231977075.0",""\n'
)
# Newer builds append peeraccount, linkedid, sequence (21 columns).
ASTERISK_21_ROW = ASTERISK_18_ROW.rstrip(b"\n") + b',"","1231977075.0",7\n'
FREESWITCH_ROW = (
    b'"Ana Novak","040123456","0038641765432","default","2026-11-22 10:00:00","2026-11-22 10:00:05",'
    b'"2026-11-22 10:01:05","65","60","NORMAL_CLEARING","a1b2c3","d4e5f6","","PCMA","PCMA"\n'
)


def test_canonical_header():
    d = detect(CANONICAL_HEADER + b"+38640123456,+38641765432,outgoing\n")
    assert d.profile is ALL_PROFILES["canonical_csv"]
    assert d.source_columns == CANONICAL_COLUMNS
    assert d.reason == ""


def test_canonical_header_with_extra_columns_keeps_file_order():
    head = b"caller_name,origin_number,email,destination_number,start_time,mystery\n"
    d = detect(head)
    assert d.profile.name == "canonical_csv"
    assert d.source_columns == ("caller_name", "origin_number", "email", "destination_number", "start_time",
                                "mystery")


def test_mediation_header():
    d = detect(MEDIATION_HEADER)
    assert d.profile.name == "mediation_3gpp_csv"
    assert d.source_columns[1] == "servedMSISDN"
    assert len(d.source_columns) == 22


def test_mediation_is_chosen_by_served_msisdn_even_with_few_columns():
    d = detect(b"recordType,servedMSISDN,calledNumber\n")
    assert d.profile.name == "mediation_3gpp_csv"


def test_asterisk_18_from_the_shared_sample():
    d = detect(ASTERISK_SAMPLE_ROW * 2)
    assert d.profile.name == "asterisk_master_18"
    assert d.source_columns[1] == "src" and d.source_columns[9] == "start" and d.source_columns[13] == "billsec"


def test_asterisk_18_handmade_row():
    d = detect(ASTERISK_18_ROW)
    assert d.profile.name == "asterisk_master_18"
    assert len(d.source_columns) == 18


def test_asterisk_21():
    d = detect(ASTERISK_21_ROW)
    assert d.profile.name == "asterisk_master_21"
    assert d.source_columns[-3:] == ("peeraccount", "linkedid", "sequence")


def test_freeswitch_15():
    d = detect(FREESWITCH_ROW)
    assert d.profile.name == "freeswitch_cdr_csv"
    assert d.source_columns[1] == "caller_id_number" and d.source_columns[4] == "start_stamp"
    assert len(d.source_columns) == 15


def test_spreadsheet_resaved_freeswitch_unquoted_slash_dates():
    row = (b"Ana,040123456,100,default,2026/11/22 10:00,2026/11/22 10:00,2026/11/22 10:01,65,60,"
           b"NORMAL_CLEARING,u,b,,PCMA,PCMA\n")
    assert detect(row).profile.name == "freeswitch_cdr_csv"


def test_18_fields_without_a_timestamp_in_start_match_nothing():
    row = ASTERISK_18_ROW.replace(b'"2026-11-22 10:00:00"', b'"yesterday"', 1)
    d = detect(row)
    assert d.profile is None
    assert d.reason == "first record has 18 fields and matches no profile"


def test_override_by_name():
    # A FreeSWITCH-shaped row forced to Asterisk: the override wins, columns are the profile's.
    d = detect(FREESWITCH_ROW, override="asterisk_master_18")
    assert d.profile.name == "asterisk_master_18"
    assert len(d.source_columns) == 18


def test_override_header_profile_takes_names_from_the_file():
    d = detect(b"a,servedMSISDN,b\n", override="canonical_csv")
    assert d.profile.name == "canonical_csv"
    assert d.source_columns == ("a", "servedMSISDN", "b")


def test_unknown_override():
    d = detect(CANONICAL_HEADER, override="cisco_cucm")
    assert d.profile is None
    assert d.reason == "unknown profile override cisco_cucm"


@pytest.mark.parametrize("head, fields", [
    (b"a,b,c\n1,2,3\n", 3),
    (b"origin_number;destination_number;direction;start_time\n", 1),  # semicolons: one field
])
def test_unmatched_shape(head, fields):
    d = detect(head)
    assert d.profile is None
    assert d.source_columns == ()
    assert d.reason == f"first record has {fields} fields and matches no profile"


def test_no_first_record():
    assert detect(b"").reason == "no complete first record"
    assert detect(b"  \n\n").profile is None


def test_bom_prefixed_header():
    d = detect(b"\xef\xbb\xbf" + CANONICAL_HEADER)
    assert d.profile.name == "canonical_csv"
    assert d.source_columns[0] == "origin_number"     # not "\ufefforigin_number"


def test_bom_prefixed_mediation_header():
    assert detect(b"\xef\xbb\xbf" + MEDIATION_HEADER).profile.name == "mediation_3gpp_csv"


def test_header_names_are_stripped():
    d = detect(b" origin_number , destination_number ,start_time\n")
    assert d.profile.name == "canonical_csv"
    assert d.source_columns[:2] == ("origin_number", "destination_number")


def test_parquet_columns():
    d = detect(b"", is_parquet_columns=("origin_number", "destination_number", "start_time", "email"))
    assert d.profile.name == "canonical_parquet"
    assert d.source_columns == ("origin_number", "destination_number", "start_time", "email")


def test_parquet_columns_that_match_nothing():
    d = detect(b"", is_parquet_columns=("a", "b", "origin_number"))   # 1 canonical name < 3
    assert d.profile is None
    assert d.source_columns == ("a", "b", "origin_number")
    assert d.reason == "parquet columns match no profile"


def test_parquet_with_a_csv_override():
    d = detect(b"", is_parquet_columns=CANONICAL_COLUMNS, override="freeswitch_cdr_csv")
    assert d.profile is None
    assert d.reason == "profile freeswitch_cdr_csv cannot read Parquet"


def test_first_record_handles_quoted_commas_and_doubled_quotes():
    assert first_record(b'"a,b","say ""hi""",c\nnext\n') == ["a,b", 'say "hi"', "c"]


def test_profiles_map_only_onto_canonical_columns():
    for prof in ALL_PROFILES.values():
        assert set(prof.mapping) <= set(CANONICAL_COLUMNS), prof.name
        # every source name a mapping uses is a column of the format
        assert prof.source_columns_used() <= set(prof.columns), prof.name


# ------------------------------------------------------------------ payments extracts (not a CDR profile)

PAYMENTS_HEADER = ",".join(PAYMENTS_COLUMNS) + "\n"
PAYMENTS_ROW = "INV-1,ACC-1,+38640123456,2026-10,2026-11-03,2026-11-18,24.99,24.99,2026-11-10,paid,general\n"


def test_detection_prefers_the_header_so_renamed_extracts_still_work():
    assert is_payments_extract((PAYMENTS_HEADER + PAYMENTS_ROW).encode(), "invoice_status_export.csv")
    assert is_payments_extract(("\ufeff" + PAYMENTS_HEADER).encode(), "x.csv")       # a BOM does not hide it
    assert not is_payments_extract(b"origin_number,destination_number,start_time\n", "billing_2026-11-22.csv")
    assert not is_payments_extract(PAYMENTS_HEADER.replace("status", "state").encode(), "export.csv")


@pytest.mark.parametrize("name, sent", [
    ("payments_2026-11-22.csv", True), ("PAYMENTS_night.CSV", True),     # the name alone sends it there
    ("payments_2026-11-22.parquet", False), ("my_payments_2026.csv", False), ("payments.csv", False),
])
def test_a_payments_name_sends_any_content_to_the_payments_step(name, sent):
    assert is_payments_extract(b"origin_number,destination_number,start_time\n", name) is sent


@pytest.mark.parametrize("head, exact", [
    (PAYMENTS_HEADER, True),
    (" " + PAYMENTS_HEADER.replace(",", " , "), True),                  # names are compared stripped
    (PAYMENTS_HEADER.rstrip("\n") + ",note\n", False),                # an extra column
    (",".join(PAYMENTS_COLUMNS[:-1]) + "\n", False),                   # one column short
    (",".join(reversed(PAYMENTS_COLUMNS)) + "\n", False),              # same names, other order
    ("", False),
])
def test_payments_header_is_exactly_the_payments_columns(head, exact):
    assert is_payments_header(head.encode()) is exact


def test_a_payments_header_is_no_cdr_profile():
    # The payments step owns it: no CDR profile claims the payments columns.
    assert detect(PAYMENTS_HEADER.encode()).profile is None
