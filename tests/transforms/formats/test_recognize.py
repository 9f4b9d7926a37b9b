"""transforms/formats/recognize.py: the first record of a file picks its format; the delimiter is sniffed;
a file no format fits is refused with its shape, never a value."""

from __future__ import annotations

import pytest

from transforms.formats.recognize import records, sniff_delimiter

# First row of a public Asterisk cdr_csv sample (the Asterisk testsuite), as delivered.
ASTERISK_SAMPLE_ROW = (
    b'"","test","100","context","""Test User"" <test>","SIP/test-02897fd8","","Hangup","",'
    b'"2009-01-14 23:51:15","2009-01-14 23:51:15","2009-01-14 23:51:20",5,5,"ANSWERED","DOCUMENTATION",'
    b'"1231977075.0",""\n'
)
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
# Headers as TS 32.298 mediation exports name their fields.
TS32298_PS_HEADER = (b"recordType,servedIMSI,servedIMEISV,servedMSISDN,accessPointNameNI,servedPDPPDNAddress,"
                     b"servingNodePLMNIdentifier,locationAreaCode,cellIdentifier,rATType,recordOpeningTime,duration,"
                     b"dataVolumeGPRSUplink,dataVolumeGPRSDownlink,causeForRecClosing,chargingID\n")
TS32298_CS_HEADER = (b"recordType,servedIMSI,servedIMEI,servedMSISDN,callingNumber,calledNumber,redirectingNumber,"
                     b"seizureTime,answerTime,releaseTime,callDuration,locationAreaCode,cellIdentifier\n")


def canonical_header(policy, sep=",") -> bytes:
    return (sep.join(policy.allowed_columns) + "\n").encode()


def test_canonical_header(sniff, policy):
    d = sniff(canonical_header(policy) + b"+38640123456,+38641765432,outgoing\n")
    assert d.format.name == "canonical_csv"
    assert d.source_columns == policy.allowed_columns
    assert d.delimiter == "," and "canonical" in d.reason


def test_canonical_header_with_extra_columns_keeps_file_order(sniff):
    d = sniff(b"caller_name,origin_number,email,destination_number,start_time,mystery\n")
    assert d.format.name == "canonical_csv"
    assert d.source_columns == ("caller_name", "origin_number", "email", "destination_number", "start_time",
                                "mystery")


@pytest.mark.parametrize("sep", [";", "|", "\t"])
def test_other_delimiters_are_sniffed(sniff, policy, sep):
    row = sep.join(["+38640123456", "+38641765432", "outgoing"] + [""] * (len(policy.allowed_columns) - 3))
    d = sniff(canonical_header(policy, sep) + row.encode() + b"\n")
    assert (d.format.name, d.delimiter) == ("canonical_csv", sep)
    assert d.source_columns == policy.allowed_columns


def test_mediation_header(sniff):
    d = sniff(MEDIATION_HEADER)
    assert d.format.name == "mediation_3gpp_csv"
    assert d.source_columns[1] == "servedMSISDN" and len(d.source_columns) == 22


def test_ts32298_headers_are_told_apart_from_each_other_and_from_mediation(sniff):
    assert sniff(TS32298_PS_HEADER).format.name == "ts32298_ps"
    assert sniff(TS32298_CS_HEADER).format.name == "ts32298_cs"
    assert sniff(TS32298_PS_HEADER.lower()).format.name == "ts32298_ps"     # vendors' spelling of the case


def test_asterisk_18_from_the_public_sample(sniff):
    d = sniff(ASTERISK_SAMPLE_ROW * 2)
    assert d.format.name == "asterisk_master_18"
    assert d.source_columns[1] == "src" and d.source_columns[9] == "start" and d.source_columns[13] == "billsec"


def test_asterisk_18_and_21_and_freeswitch(sniff):
    assert sniff(ASTERISK_18_ROW).format.name == "asterisk_master_18"
    d = sniff(ASTERISK_21_ROW)
    assert d.format.name == "asterisk_master_21" and d.source_columns[-3:] == ("peeraccount", "linkedid", "sequence")
    d = sniff(FREESWITCH_ROW)
    assert d.format.name == "freeswitch_cdr_csv" and len(d.source_columns) == 15


def test_spreadsheet_resaved_freeswitch_unquoted_slash_dates(sniff):
    row = (b"Ana,040123456,100,default,2026/11/22 10:00,2026/11/22 10:00,2026/11/22 10:01,65,60,"
           b"NORMAL_CLEARING,u,b,,PCMA,PCMA\n")
    assert sniff(row).format.name == "freeswitch_cdr_csv"


def test_18_fields_without_a_timestamp_in_start_match_nothing(sniff):
    d = sniff(ASTERISK_18_ROW.replace(b'"2026-11-22 10:00:00"', b'"yesterday"', 1))
    assert d.format is None
    assert d.reason == "first record has 18 field(s) separated by commas (no header) and matches no known format"
    assert b"040123456" not in d.reason.encode()      # its shape, never a value


def test_override_by_name(sniff):
    d = sniff(FREESWITCH_ROW, override="asterisk_master_18")
    assert d.format.name == "asterisk_master_18" and len(d.source_columns) == 18
    assert "forced" in d.reason


def test_override_header_format_takes_names_from_the_file(sniff):
    d = sniff(b"a,servedMSISDN,b\n", override="canonical_csv")
    assert d.format.name == "canonical_csv" and d.source_columns == ("a", "servedMSISDN", "b")


def test_unknown_override(sniff, policy):
    d = sniff(canonical_header(policy), override="cisco_cucm")
    assert d.format is None and d.reason == "format 'cisco_cucm' is not known (cdr-audit formats list)"


def test_unmatched_shape(sniff):
    d = sniff(b"a,b,c\n1,2,3\n")
    assert d.format is None and d.source_columns == ()
    assert d.reason == "first record has 3 field(s) separated by commas (it looks like a header) and matches no known format"


@pytest.mark.parametrize("head, looks_like", [
    (b"customerID,gender,SeniorCitizen,tenure,MonthlyCharges,Churn\n7590-VHVEG,Female,0,1,29.85,No\n",
     "a subscriber table"),
    (b"#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\nRT_1,0,0.2,60s,60s,0s\n", "a tariff table"),
    (b'"CHAN_START","1231977075.123","Alice","100","","","","s","default","SIP/100-0001","","","3","","1231977075.0",'
     b'"1231977075.0","","","",""\n', "an Asterisk CEL channel event log"),
])
def test_files_that_are_not_cdrs_are_refused_with_what_they_look_like(sniff, head, looks_like):
    d = sniff(head)
    assert d.format is None and d.reason.startswith(f"looks like {looks_like}")


def test_no_first_record(sniff):
    assert sniff(b"").reason == "no complete first record"
    assert sniff(b"  \n\n").format is None


@pytest.mark.parametrize("encoding, bom, said", [
    ("utf-16", True, "UTF-16 (little-endian)"), ("utf-16-be", False, "UTF-16 (big-endian)"),
    ("utf-16-le", False, "UTF-16 (little-endian)"), ("utf-32", True, "UTF-32 (little-endian)")])
def test_a_utf16_or_utf32_file_is_refused_as_what_it_is(sniff, encoding, bom, said):
    text = "origin_number,destination_number,direction,start_time\n+38640111222,+38641333444,outgoing,2026-11-22\n"
    head = text.encode(encoding)
    assert head.startswith((b"\xff\xfe", b"\xfe\xff")) == bom
    d = sniff(head)
    assert d.format is None and d.reason == f"encoded as {said}, not UTF-8: not read (deliver it as UTF-8)"
    assert sniff(head, override="canonical_csv").format is None          # no format reads it, forced or not


def test_a_nul_byte_in_a_utf8_file_is_not_taken_for_utf16(sniff):
    d = sniff(b"origin_number,destination_number,direction,start_time\n+386\x0040111222,+38641333444,outgoing,x\n")
    assert d.format is not None and d.format.name == "canonical_csv"


def test_bom_prefixed_headers(sniff):
    d = sniff(b"\xef\xbb\xbfcaller_name,origin_number,destination_number,start_time\n")
    assert d.format.name == "canonical_csv" and d.source_columns[0] == "caller_name"   # not "\ufeffcaller_name"
    assert sniff(b"\xef\xbb\xbf" + MEDIATION_HEADER).format.name == "mediation_3gpp_csv"


def test_header_names_are_stripped(sniff):
    d = sniff(b" origin_number , destination_number ,start_time\n")
    assert d.format.name == "canonical_csv"


def test_parquet_columns(sniff, policy):
    d = sniff(b"", parquet_columns=("origin_number", "destination_number", "start_time", "email"))
    assert d.format.name == "canonical_parquet"
    assert d.source_columns == ("origin_number", "destination_number", "start_time", "email")
    d = sniff(b"", parquet_columns=("a", "b", "origin_number"))   # 1 canonical name < 3
    assert d.format is None and d.reason == "a Parquet file with 3 columns that match no format"
    d = sniff(b"", parquet_columns=policy.allowed_columns, override="freeswitch_cdr_csv")
    assert d.format is None and d.reason == "format freeswitch_cdr_csv cannot read this Parquet file"


def test_records_handle_quoted_delimiters_and_doubled_quotes():
    assert records('"a,b","say ""hi""",c\nnext\n', ",")[0] == ["a,b", 'say "hi"', "c"]
    assert records('a;b\n"cut', ";") == [["a", "b"]]          # a record cut off by the head's end is left out


def test_a_single_column_file_sniffs_as_commas():
    assert sniff_delimiter("just\none\ncolumn\n") == ","
