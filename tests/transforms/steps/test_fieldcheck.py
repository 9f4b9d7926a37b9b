"""transforms/steps/fieldcheck.py: every source column classified against the §3.2 list, staged schema proven."""

from __future__ import annotations

import dataclasses

import pytest

from transforms.formats import load_formats
from transforms.policy import load_policy
from transforms.steps.fieldcheck import StagedColumnViolation, check_fields
from transforms.steps.ingest import IngestResult, ingest_file
from transforms.steps.reading import STAGING_TECHNICAL

NOT_ON_LIST = "§3.2 ¶3 (not on the billing-data list)"     # policy not_allowed.clause

CANONICAL_WITH_EXTRAS = (
    b"origin_number,caller_name,destination_number,email,ip_address,start_time,duration_s,favourite_colour\n"
    b"+38640123456,Ana Novak,+38641765432,ana@example.com,10.1.2.3,2026-11-22T10:00:00Z,60,blue\n"
)
ASTERISK_ROW = (
    b'"acc1","040123456","100","from-pstn","""Ana"" <040123456>","SIP/t-1","SIP/100-1","Dial","SIP/100",'
    b'"2026-11-22 10:00:00","2026-11-22 10:00:05","2026-11-22 10:01:05",65,60,"ANSWERED","DOCUMENTATION",'
    b'"1.0","vip"\n'
)

FORMATS = load_formats(load_policy())    # the built-in source formats


def ingest_bytes(tmp_path, policy, name: str, data: bytes) -> IngestResult:
    path = tmp_path / name
    path.write_bytes(data)
    return ingest_file(path, policy, FORMATS, tmp_path / f"work_{name}")


def as_table(result):
    return [(f.column_index, f.source_column, f.classification, f.action, f.canonical_columns)
            for f in result.findings]


def test_canonical_csv_with_off_list_columns(tmp_path, policy):
    ingest = ingest_bytes(tmp_path, policy, "billing.csv", CANONICAL_WITH_EXTRAS)
    result = check_fields(ingest, policy, FORMATS)
    # By docs/design.md §1: canonical names are allowed and kept as-is; names, e-mail and IP addresses are
    # known off-list columns; a column nobody knows is "unknown" and dropped as well.
    assert as_table(result) == [
        (0, "origin_number", "allowed", "kept", "origin_number"),
        (1, "caller_name", "not_allowed", "dropped", ""),
        (2, "destination_number", "allowed", "kept", "destination_number"),
        (3, "email", "not_allowed", "dropped", ""),
        (4, "ip_address", "not_allowed", "dropped", ""),
        (5, "start_time", "allowed", "kept", "start_time"),
        (6, "duration_s", "allowed", "kept", "duration_s"),
        (7, "favourite_colour", "unknown", "dropped", ""),
    ]
    assert (result.allowed, result.not_allowed, result.unknown) == (4, 3, 1)
    assert result.staged_columns_verified is True


def test_clauses_come_from_the_policy(tmp_path, policy):
    result = check_fields(ingest_bytes(tmp_path, policy, "billing.csv", CANONICAL_WITH_EXTRAS), policy, FORMATS)
    by_name = {f.source_column: f for f in result.findings}
    assert by_name["origin_number"].clause == "§3.2 ¶3 item 1 (origin)"
    assert by_name["start_time"].clause == "§3.2 ¶3 item 4 (time and duration)"
    assert by_name["duration_s"].clause == policy.field("duration_s").clause
    for off in ("caller_name", "email", "ip_address", "favourite_colour"):
        assert by_name[off].clause == NOT_ON_LIST == policy.not_allowed_clause


def test_asterisk_columns(tmp_path, policy):
    result = check_fields(ingest_bytes(tmp_path, policy, "Master.csv", ASTERISK_ROW), policy, FORMATS)
    table = {f.source_column: (f.classification, f.action, f.canonical_columns) for f in result.findings}
    # start/billsec are mapped as-is; src/dst are kept as the numbers and give the country calling codes
    # too; dcontext is only read to decide the direction and the disposition
    # whether the leg was answered: neither is kept; clid holds a personal name, userfield free text,
    # accountcode an account: all dropped.
    assert table["src"] == ("allowed", "kept", "origin_number,origin_country_code")
    assert table["dst"] == ("allowed", "kept", "destination_number,called_country_code")
    assert table["billsec"] == ("allowed", "kept", "duration_s")
    assert table["dcontext"] == ("used_for_derivation", "dropped", "direction")
    assert table["disposition"] == ("used_for_derivation", "dropped", "duration_s")
    assert table["clid"] == ("not_allowed", "dropped", "")
    assert table["userfield"] == ("not_allowed", "dropped", "")
    assert table["accountcode"] == ("not_allowed", "dropped", "")
    # 18 columns: src, dst, dcontext, start, billsec feed billing columns; the other 13 are off the list.
    assert (result.allowed, result.not_allowed, result.unknown, result.used_for_derivation) == (4, 12, 0, 2)


def test_repeated_column_name_is_reported_dropped(tmp_path, policy):
    # Staging binds the first `origin_number`; the second one's values are never kept.
    data = (b"origin_number,destination_number,start_time,origin_number\n"
            b"+38640123456,+38641765432,2026-11-22T10:00:00Z,+38640999999\n")
    result = check_fields(ingest_bytes(tmp_path, policy, "dup.csv", data), policy, FORMATS)
    assert as_table(result)[0] == (0, "origin_number", "allowed", "kept", "origin_number")
    assert as_table(result)[3] == (3, "origin_number", "unknown", "dropped", "")


def test_rejected_file_has_no_staged_file_to_verify(tmp_path, policy):
    ingest = ingest_bytes(tmp_path, policy, "odd.csv", b"a,b,c\n1,2,3\n")
    assert ingest.status == "rejected_file"
    result = check_fields(ingest, policy, FORMATS)
    assert result.findings == ()
    assert result.staged_columns_verified is False


def test_staged_file_with_an_extra_column_is_stopped(tmp_path, policy, pq_write):
    staged = pq_write(tmp_path / "staged.parquet",
                      "SELECT '+38640123456' AS origin_number, 'Ana Novak' AS caller_name")
    ingest = IngestResult(file_name="billing.csv", sha256="d" * 64, bytes=10, status="staged",
                          profile="canonical_csv", source_columns=("origin_number", "caller_name"),
                          rows_read=1, rows_staged=1, staged_path=str(staged))
    with pytest.raises(StagedColumnViolation) as err:
        check_fields(ingest, policy, FORMATS)
    assert str(err.value) == "staged file of billing.csv has 1 column(s) off the list"
    assert "Ana" not in str(err.value)


def test_staged_file_of_allowed_and_lineage_columns_passes(tmp_path, policy, pq_write):
    staged = pq_write(tmp_path / "staged.parquet",
                      "SELECT '+38640123456' AS origin_number, 'x' AS record_id, DATE '2026-11-22' AS event_date")
    ingest = IngestResult(file_name="billing.csv", sha256="d" * 64, bytes=10, status="staged",
                          profile="canonical_csv", source_columns=("origin_number",), staged_path=str(staged))
    assert check_fields(ingest, policy, FORMATS).staged_columns_verified is True


def test_ingests_technical_columns_pass_but_no_other(tmp_path, policy, pq_write):
    # The flag and line count ingest adds for validate are allowed in a staged file; a look-alike is not.
    allowed = pq_write(tmp_path / "staged.parquet", "SELECT '+38640123456' AS origin_number, "
                       + ", ".join(f"NULL AS {c}" for c in STAGING_TECHNICAL))
    ingest = IngestResult(file_name="billing.csv", sha256="d" * 64, bytes=10, status="staged",
                          profile="canonical_csv", source_columns=("origin_number",), staged_path=str(allowed))
    assert check_fields(ingest, policy, FORMATS).staged_columns_verified is True
    other = pq_write(tmp_path / "other.parquet", "SELECT '+38640123456' AS origin_number, 'x' AS _caller_name")
    with pytest.raises(StagedColumnViolation):
        check_fields(dataclasses.replace(ingest, staged_path=str(other)), policy, FORMATS)


MEDIATION = (
    b"recordType,servedMSISDN,calledNumber,recordOpeningTime,callDuration,servingNodePLMNIdentifier,"
    b"dataVolumeUplink,dataVolumeDownlink,chargingID,servedPDPAddress\n"
    b"PGW,38640123456,,2026-11-22T10:00:00+01:00,60,26201,1000,2500,c2,10.0.0.2\n"
)


def test_mediation_columns_kept_as_they_are_or_derived(tmp_path, policy):
    result = check_fields(ingest_bytes(tmp_path, policy, "mediation.csv", MEDIATION), policy, FORMATS)
    table = {f.source_column: (f.classification, f.action, set(f.canonical_columns.split(",")) - {""})
             for f in result.findings}
    # Kept: the source column's own value is stored as it is (it may also feed derived columns: a number
    # gives its country calling code, the serving PLMN decides home / roaming). Derived: only values made
    # from it are stored — a value it decides (recordType → direction and service type) or a combination
    # (uplink + downlink).
    assert table["servedMSISDN"] == ("allowed", "kept", {"origin_number", "origin_country_code"})
    assert table["calledNumber"] == ("allowed", "kept", {"destination_number", "called_country_code"})
    # recordType also decides whether the served number is the origin (no origin code for terminating records).
    assert table["recordType"] == ("allowed", "derived", {"direction", "service_type", "origin_country_code"})
    assert table["servingNodePLMNIdentifier"] == ("allowed", "kept", {"origin_network", "service_area"})
    assert table["dataVolumeUplink"] == table["dataVolumeDownlink"] == ("allowed", "derived", {"data_volume_bytes"})
    # A charging id and the PDP (IP) address are known columns of the format that are off the list.
    assert table["chargingID"] == table["servedPDPAddress"] == ("not_allowed", "dropped", set())
    assert (result.allowed, result.not_allowed, result.unknown) == (8, 2, 0)
    by_name = {f.source_column: f for f in result.findings}
    assert by_name["recordType"].clause == "; ".join(dict.fromkeys(
        [policy.field(c).clause for c in ("direction", "service_type", "origin_country_code")]))


def test_parquet_columns_are_classified_too(tmp_path, policy, pq_write):
    src = pq_write(tmp_path / "billing.parquet",
                   "SELECT '+38640123456' AS origin_number, '+38641765432' AS destination_number,"
                   " TIMESTAMPTZ '2026-11-22 10:00:00+00' AS start_time, 'ana@example.com' AS email, 1 AS shoe_size")
    result = check_fields(ingest_file(src, policy, FORMATS, tmp_path / "work"), policy, FORMATS)
    assert as_table(result) == [
        (0, "origin_number", "allowed", "kept", "origin_number"),
        (1, "destination_number", "allowed", "kept", "destination_number"),
        (2, "start_time", "allowed", "kept", "start_time"),
        (3, "email", "not_allowed", "dropped", ""),
        (4, "shoe_size", "unknown", "dropped", ""),
    ]
    assert result.staged_columns_verified is True
