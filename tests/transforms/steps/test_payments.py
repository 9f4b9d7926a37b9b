"""transforms/steps/payments.py: the payments / invoice-status extract into the invoices zone, on tiny hand-made files.

Expected counts and reasons are written from the rules (one fault per bad row), not copied from a run.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date
from pathlib import Path

import pytest

from tests.transforms.steps.extracts import assert_quarantined_as_declared, write, zone_rows
from transforms.lake.partitions import part_name
from transforms.steps.payments import (IDENTIFYING_COLUMNS, NOT_PAYMENTS, PAYMENTS_COLUMNS, is_payments_extract,
                                      is_payments_header, load_payments)
from transforms.steps.lines import fingerprint

HEADER = ",".join(PAYMENTS_COLUMNS) + "\n"
NIGHT = "2026-11-22"
# One valid invoice row per billing period; the fields are, in order: PAYMENTS_COLUMNS.
PAID = "INV-1,ACC-10000001,+38640123456,2026-10,2026-11-03,2026-11-18,24.99,24.99,2026-11-10,paid,consumer_services\n"
OPEN = "INV-2,ACC-10000001,040 123 456,2026-09,2026-10-03,2026-10-18,12.20,0.00,,open,consumer_services\n"
OLD = "INV-3,ACC-90000001,0038640123456,2025-12,2026-01-03,2026-01-18,100,40.5,2026-01-20,partially_paid,general\n"




def run(path: Path, policy, lake, work_dir, run_id: str = "r1"):
    return load_payments(path, policy, lake, work_dir, night=NIGHT, run_id=run_id)


def test_valid_invoices_land_by_invoice_year_typed_with_lineage(tmp_path, policy, lake, work_dir):
    path = write(tmp_path, "payments_2026-11-22.csv", HEADER + PAID + OPEN + OLD)
    sha = fingerprint(path).sha256
    result = run(path, policy, lake, work_dir)
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == ("loaded", 3, 3, 0)
    assert result.rows_by_invoice_year == {"2025": 1, "2026": 2}      # year of the billing period, not the invoice
    assert sorted(result.invoice_files) == [f"invoices/invoice_year=2025/{part_name(sha)}",
                                            f"invoices/invoice_year=2026/{part_name(sha)}"]
    assert result.quarantine_files == () and not list(lake.zone("quarantine").rglob("*.parquet"))
    got = zone_rows(lake, "invoices", """
        SELECT invoice_id, invoice_year, billing_period, invoice_date, due_date, paid_date, CAST(amount_due AS VARCHAR),
               CAST(amount_paid AS VARCHAR), status, claim_type, source_row, as_of, source_file_sha256 = ? FROM t
        ORDER BY source_row""".replace("?", f"'{sha}'"))
    assert got[0] == ("INV-1", 2026, "2026-10", date(2026, 11, 3), date(2026, 11, 18), date(2026, 11, 10), "24.9900",
                      "24.9900", "paid", "consumer_services", 2, date(2026, 11, 22), True)   # line 2: after the header
    assert got[1][5:10] == (None, "12.2000", "0.0000", "open", "consumer_services")
    assert got[2][:2] == ("INV-3", 2025) and got[2][6:10] == ("100.0000", "40.5000", "partially_paid", "general")
    types = dict(zone_rows(lake, "invoices", "SELECT column_name, column_type FROM (DESCRIBE t)"))
    assert types["invoice_date"] == "DATE" and types["amount_due"] == "DECIMAL(18,4)"


def test_three_spellings_of_one_number_become_one_e164_number(tmp_path, policy, lake, work_dir):
    path = write(tmp_path, "payments_2026-11-22.csv", HEADER + PAID + OPEN + OLD)
    run(path, policy, lake, work_dir)
    numbers = zone_rows(lake, "invoices", "SELECT DISTINCT subscriber_number FROM t")
    # +38640123456, 040 123 456 and 0038640123456 are one subscriber, spelt as billing rows are normalized.
    assert numbers == [("+38640123456",)]


BAD_ROWS = {  # source_row (the line: header 1, three good rows 2-4) -> (row, its reason, the column that must be blank)
    5: (",ACC-1,+38640123456,2026-10,2026-11-03,2026-11-18,1.00,1.00,2026-11-05,paid,consumer_services",
        "invoice_id_missing", None),
    6: ("INV-5,ACC-1,+38640123456,2026-13,2026-12-03,2026-12-18,1.00,0,,open,consumer_services",
        "billing_period_invalid", "billing_period"),
    7: ("INV-6,ACC-1,+38640123456,2026-01,2026-02-30,2026-02-18,1.00,0,,open,consumer_services",
        "invoice_date_invalid", "invoice_date"),
    8: ("INV-7,ACC-1,+38640123456,2026-10,2026-11-03,2026-11-18,-5.00,0,,open,consumer_services",
        "amount_due_invalid", "amount_due"),
    9: ("INV-8,ACC-1,+38640123456,2026-10,2026-11-03,2026-11-18,1.23456,0,,open,consumer_services",
        "amount_due_invalid", "amount_due"),                    # more than 4 decimals: never rounded silently
    10: ("INV-9,ACC-1,+38640123456,2026-10,2026-11-03,2026-11-18,1.00,0,,pending,consumer_services",
        "status_invalid", "status"),
    11: ("INV-10,ACC-1,+38640123456,2026-10,2026-11-03,2026-11-18,1.00,1.00,,paid,consumer_services",
         "paid_without_paid_date", None),
    12: ("INV-11,ACC-1,+38640123456,2026-10,2026-11-03,2026-11-18,1.00,0,,open,gold_customer",
         "claim_type_invalid", "claim_type"),
    13: (PAID.strip(), "duplicate_invoice", None),              # INV-1 again: the first copy (line 2) stays
    14: ("INV-13,ACC-1,someone@example.com,2026-10,2026-11-03,2026-11-18,1.00,0,,open,consumer_services",
         "subscriber_number_invalid", "subscriber_number"),
    15: ("INV-14,ACC-1,+38640123456,2026-10,2026-11-03,2026-11-18,1.00,0,2026-11-31,open,consumer_services",
         "paid_date_invalid", "paid_date"),
}


def test_each_kind_of_bad_row_is_quarantined_with_its_reason_and_failing_value_blanked(tmp_path, policy, lake,
                                                                                        work_dir):
    text = HEADER + PAID + OPEN + OLD + "".join(row + "\n" for row, _, _ in BAD_ROWS.values())
    result = run(write(tmp_path, "payments_2026-11-22.csv", text), policy, lake, work_dir)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (14, 3, 11)
    # By why, each row once: row 12 repeats INV-1, the other ten fail a check, every line parsed.
    assert (result.rows_duplicate, result.rows_unparseable) == (1, 0)
    assert result.quarantine_files == (f"quarantine/night={NIGHT}/{part_name(result.sha256)}",)
    assert_quarantined_as_declared(lake, result, BAD_ROWS, list(PAYMENTS_COLUMNS), NIGHT, "invoices")
    # The invoices zone holds only the three good rows, INV-1 once.
    assert zone_rows(lake, "invoices", "SELECT invoice_id FROM t ORDER BY source_row") == [
        ("INV-1",), ("INV-2",), ("INV-3",)]


def test_claim_types_are_the_policys_limitation_periods(policy):
    periods = policy.retention_for("billing_cdr").limitation_periods
    assert policy.claim_types == tuple(name for name, _ in periods)
    assert {"consumer_services", "business_services"} <= set(policy.claim_types)


def with_billing_limitation_periods(policy, *names: str):
    """The policy, its billing category limited to the claim types `names`."""
    retention = tuple(dataclasses.replace(r, limitation_periods=tuple(p for p in r.limitation_periods if p[0] in names))
                      if "billing" in r.datasets else r for r in policy.retention)
    return dataclasses.replace(policy, retention=retention)


def test_claim_types_checked_are_the_policys(tmp_path, policy, lake, work_dir):
    # OLD names the claim type `general`: valid under the real policy, not under one without that period.
    narrow = with_billing_limitation_periods(policy, "consumer_services")
    assert narrow.claim_types == ("consumer_services",)
    result = run(write(tmp_path, "payments_2026-11-22.csv", HEADER + PAID + OPEN + OLD), narrow, lake, work_dir)
    assert (result.rows_loaded, result.rows_quarantined, result.quarantined_by_reason) == (
        2, 1, {"claim_type_invalid": 1})
    assert zone_rows(lake, "quarantine", "SELECT source_row, claim_type FROM t") == [(4, None)]


def subscriber_numbers(tmp_path, policy, lake, work_dir, *spellings: str) -> dict[str, str | None]:
    """Load one open invoice per spelling: {spelling: the stored number, or None when quarantined}."""
    rows = "".join(f"INV-{i},ACC-1,{n},2026-10,2026-11-03,2026-11-18,1.00,0,,open,general\n"
                   for i, n in enumerate(spellings))
    result = run(write(tmp_path, "payments_2026-11-22.csv", HEADER + rows), policy, lake, work_dir)
    assert result.rows_read == len(spellings)
    stored = dict(zone_rows(lake, "invoices", "SELECT source_row, subscriber_number FROM t"))
    refused = zone_rows(lake, "quarantine", "SELECT source_row, reason FROM t")
    assert {reason for _, reason in refused} <= {"subscriber_number_invalid"}
    return {n: stored.get(i + 2) for i, n in enumerate(spellings)}       # line 1 is the header


def test_numbers_are_normalized_with_the_operators_country_code_and_number_length(tmp_path, policy, lake, work_dir):
    # Slovenia: country code 386, national numbers of 8 digits. Bare digits are an international number
    # without its '+' only when they are the country code and a whole national number.
    assert (policy.operator.country_calling_code, policy.operator.national_number_length) == ("386", 8)
    got = subscriber_numbers(tmp_path, policy, lake, work_dir,
                             "38640123456", "3864012345", "(040) 123-456", "00436641234567", "+38640123456")
    assert got == {"38640123456": "+38640123456",       # 386 + 8 digits
                   "3864012345": None,                  # 386 + 7 digits: not a number, quarantined
                   "(040) 123-456": "+38640123456",     # national, separators removed
                   "00436641234567": "+436641234567",   # 00 + any country
                   "+38640123456": "+38640123456"}


def test_another_operator_binds_its_own_numbering(tmp_path, policy, lake, work_dir):
    # The same step under an operator with country code 43 and 10-digit national numbers.
    austria = dataclasses.replace(policy, operator=dataclasses.replace(
        policy.operator, country_calling_code="43", national_number_length=10))
    got = subscriber_numbers(tmp_path, austria, lake, work_dir, "0664 1234567", "436641234567", "38640123456")
    assert got == {"0664 1234567": "+436641234567",     # the national trunk 0 → +43
                   "436641234567": "+436641234567",     # 43 + 10 digits
                   "38640123456": None}                 # 386…: not this operator's country, no '+': invalid


def test_identifying_columns_are_columns_of_the_invoices_zone(tmp_path, policy, lake, work_dir, pq_columns):
    # The retention proof looks for these values after a deletion: they must be what the zone holds.
    result = run(write(tmp_path, "payments_2026-11-22.csv", HEADER + PAID), policy, lake, work_dir)
    columns = pq_columns(lake.root / result.invoice_files[0])
    assert set(IDENTIFYING_COLUMNS) <= set(columns)
    assert set(IDENTIFYING_COLUMNS) == {"invoice_id", "account_id", "subscriber_number"}


def test_a_line_that_does_not_parse_is_quarantined_by_line_without_content(tmp_path, policy, lake, work_dir):
    broken = "INV-4,ACC-1,+38640999888,2026-10\n"                   # too few fields: line 4
    cut = 'INV-5,ACC-1,+38640999777,2026-10,"2026-11-03'             # a quote that never closes: line 6
    result = run(write(tmp_path, "payments_2026-11-22.csv", HEADER + PAID + OPEN + broken + OLD + cut),
                 policy, lake, work_dir)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (5, 3, 2)
    assert sum(n for r, n in result.quarantined_by_reason.items() if r.startswith("unparseable")) == 2
    assert (result.rows_unparseable, result.rows_duplicate) == (2, 0)
    got = zone_rows(lake, "quarantine", "SELECT source_row, reason, invoice_id, subscriber_number FROM t"
                                        " ORDER BY source_row")
    assert [(line, invoice, number) for line, _, invoice, number in got] == [(4, None, None), (6, None, None)]
    assert all(reason.startswith("unparseable") for _, reason, _, _ in got)


def test_a_quote_open_over_the_trailing_blank_line_leaves_the_rows_before_it_on_their_lines(tmp_path, policy, lake,
                                                                                          work_dir):
    # Line 2 is blank, PAID is line 3, line 4 opens a quote that runs over the blank line 5 to the end of the
    # file: PAID is the record of line 3 (its record_id names line 3), the broken record is quarantined as
    # line 4. (The reader once counted line 5 twice, as the broken record's and as a trailing blank line.)
    cut = 'INV-5,ACC-1,+38640999777,2026-10,"2026-11-03\n'
    path = write(tmp_path, "payments_2026-11-22.csv", HEADER + "\n" + PAID + cut + "\n")
    sha = fingerprint(path).sha256
    result = run(path, policy, lake, work_dir)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (2, 1, 1)
    assert zone_rows(lake, "invoices", "SELECT invoice_id, source_row, record_id FROM t") == [
        ("INV-1", 3, hashlib.md5(f"{sha}:3".encode()).hexdigest())]
    assert zone_rows(lake, "quarantine", "SELECT source_row, record_id FROM t") == [
        (4, hashlib.md5(f"{sha}:4".encode()).hexdigest())]
    # The unparseable line's source_row is an integer in quarantine, as a loaded row's is.
    assert zone_rows(lake, "quarantine", "SELECT typeof(source_row) FROM t") == [("BIGINT",)]


def test_records_over_two_lines_are_quarantined_once_and_the_rest_loads(tmp_path, policy, lake, work_dir):
    spans = 'INV-5,"ACC\n5",+38640123456,2026-10,2026-11-03,2026-11-18,1.00,0,,open,general\n'      # lines 3-4
    broken = 'INV-6,"ACC\n6",+38640123456,2026-10,2026-11-03,2026-11-18,1.00,0,,open,general,x\n'  # 5-6: 12 fields
    result = run(write(tmp_path, "payments_2026-11-22.csv", HEADER + PAID + spans + broken + OPEN),
                 policy, lake, work_dir)
    # Four records: PAID and OPEN load; the one over two lines is flagged, the broken one unparseable.
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 2, 2)
    assert result.quarantined_by_reason == {"record_spans_lines": 1, "unparseable: too many columns": 1}
    assert (result.rows_unparseable, result.rows_duplicate) == (1, 0)
    got = zone_rows(lake, "quarantine", "SELECT source_row, reason, invoice_id, account_id FROM t ORDER BY source_row")
    assert got == [(3, "record_spans_lines", "INV-5", None),         # the value with a line break blanked
                   (5, "unparseable: too many columns", None, None)]
    assert zone_rows(lake, "invoices", "SELECT invoice_id FROM t ORDER BY source_row") == [("INV-1",), ("INV-2",)]


def test_a_header_name_that_ends_in_a_line_break_takes_two_lines(tmp_path, policy, lake, work_dir):
    header = HEADER.replace("claim_type", '"claim_type\n"')          # still the payments header, over lines 1-2
    result = run(write(tmp_path, "payments_2026-11-22.csv", header + PAID + OPEN), policy, lake, work_dir)
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == ("loaded", 2, 2, 0)
    assert result.quarantine_files == ()


def test_a_mis_encoded_line_is_quarantined_and_the_rest_loads(tmp_path, policy, lake, work_dir):
    bad = "INV-9,ACC-1,+38640123456,2026-10,2026-11-03,2026-11-18,1.00,0,,open,consumer_services\n".encode()
    bad = bad.replace(b"ACC-1", "ACČ-1".encode("cp1250"))      # not UTF-8, in account_id (every column is read)
    result = run(write(tmp_path, "payments_2026-11-22.csv", (HEADER + PAID).encode() + bad), policy, lake, work_dir)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (2, 1, 1)
    assert result.quarantined_by_reason == {"invalid_encoding": 1}
    assert zone_rows(lake, "quarantine", "SELECT source_row, account_id FROM t") == [(3, None)]


@pytest.mark.parametrize("content, reason", [(b"", "file is empty (0 bytes)"), (HEADER.encode(), "no data rows")])
def test_an_empty_extract_is_reported_and_writes_nothing(tmp_path, policy, lake, work_dir, content, reason):
    result = run(write(tmp_path, "payments_2026-11-22.csv", content), policy, lake, work_dir)
    assert (result.status, result.reason, result.rows_read, result.rows_loaded) == ("empty", reason, 0, 0)
    assert not list(lake.root.rglob("*.parquet"))


def test_a_payments_named_file_without_the_payments_header_is_refused(tmp_path, policy, lake, work_dir):
    cdr = "origin_number,destination_number,start_time\n+38640111222,+38641333444,2026-11-22T10:00:00Z\n"
    path = write(tmp_path, "payments_2026-11-22.csv", cdr)
    assert is_payments_extract(path.read_bytes(), path.name)           # its name sends it to the payments step
    result = run(path, policy, lake, work_dir)
    # Its one record counts as read and refused (its first line reads as column names: not a record);
    # nothing reaches a zone.
    assert (result.status, result.reason, result.rows_read, result.rows_quarantined) == ("rejected_file",
                                                                                         NOT_PAYMENTS, 1, 1)
    assert not list(lake.root.rglob("*.parquet"))


def test_loading_the_same_extract_again_replaces_its_rows(tmp_path, policy, lake, work_dir):
    path = write(tmp_path, "payments_2026-11-22.csv", HEADER + PAID + OPEN + OLD + BAD_ROWS[9][0] + "\n")
    first = run(path, policy, lake, work_dir, run_id="r1")
    files = sorted(p.relative_to(lake.root) for p in lake.root.rglob("*.parquet"))
    second = run(path, policy, lake, work_dir, run_id="r2")
    assert (first.rows_loaded, first.rows_quarantined) == (second.rows_loaded, second.rows_quarantined) == (3, 1)
    assert sorted(p.relative_to(lake.root) for p in lake.root.rglob("*.parquet")) == files
    assert zone_rows(lake, "invoices", "SELECT count(*), count(DISTINCT run_id) FROM t") == [(3, 1)]
    assert zone_rows(lake, "quarantine", "SELECT count(*) FROM t") == [(1,)]


def test_the_night_routes_payments_extracts_and_records_them(tmp_path, policy, formats):
    """Payments files go through the payments step (by header or name), are audited, and a re-run adds nothing."""
    from tests.conftest import audit_rows
    from transforms.lake import Lake
    from transforms.nightly.audit_file import audit_file
    from transforms.nightly.close import close_night
    from transforms.nightly.plan import plan_night
    from transforms.privacy.keys import demo_keyring

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "invoice_status.csv").write_text(HEADER + PAID + OPEN + OLD + BAD_ROWS[10][0] + "\n")  # renamed
    (landing / "payments_broken.csv").write_text("origin_number,destination_number\n+38640111222,+38641333444\n")
    (landing / "payments_empty.csv").write_bytes(b"")
    (landing / "calls.csv").write_text("origin_number,destination_number,direction,start_time,duration_s,"
                                       "service_type\n+38640111222,+38641333444,outgoing,2026-11-22T10:00:00Z,10,call\n")
    lake = Lake.at(tmp_path / "lake")
    for run_id in ("r1", "r2"):
        plan = plan_night(landing, lake, policy, night=NIGHT, run_id=run_id, trigger="test")
        for planned in plan.to_audit:
            audit_file(planned, lake, policy, formats, run_id=run_id, night=NIGHT, keyring=demo_keyring())
        summary = close_night(lake, policy, run_id=run_id)
        assert summary.status == "completed"
        if run_id == "r1":
            snapshot = sorted((p.relative_to(lake.root), p.read_bytes()) for z in ("billing", "invoices", "quarantine")
                              for p in lake.zone(z).rglob("*.parquet"))
    got = {r[0]: r[1:] for r in audit_rows(lake.root, "SELECT file_name, profile, status, rows_read, rows_loaded,"
                                                      " rows_rejected, reason FROM source_files WHERE run_id = 'r1'")}
    assert got["invoice_status.csv"] == ("payments", "loaded", 4, 3, 1, None)
    assert got["payments_broken.csv"] == ("payments", "rejected_file", 1, 0, 1, NOT_PAYMENTS)   # header not a row
    assert got["payments_empty.csv"][:5] == ("payments", "empty", 0, 0, 0)
    assert got["calls.csv"][:4] == ("canonical_csv", "loaded", 1, 1)
    reasons = dict(audit_rows(lake.root, "SELECT file_name || ':' || reason, rows FROM rejection_reasons"
                                         " WHERE run_id = 'r1'"))
    assert reasons["invoice_status.csv:status_invalid"] == 1
    # No CDR step looked at a payments file: no field findings, no suite results, no analytics for it.
    for table in ("field_findings", "validation_results", "pseudonymization_log"):
        assert audit_rows(lake.root, f"SELECT count(*) FROM {table} WHERE file_name LIKE '%invoice%'"
                                     " OR file_name LIKE 'payments%'") == [(0,)], table
    assert len(list(lake.zone("invoices").rglob("*.parquet"))) == 2
    # The re-run knows every file by its content, but for the one refused whole, which a re-run of its night reads
    # again (it may bring the format it lacked) and refuses for the same reason: nothing is written again.
    again = sorted((p.relative_to(lake.root), p.read_bytes()) for z in ("billing", "invoices", "quarantine")
                   for p in lake.zone(z).rglob("*.parquet"))
    assert again == snapshot
    rerun = dict(audit_rows(lake.root, "SELECT file_name, status || ': ' || coalesce(reason, '') FROM source_files"
                                       " WHERE run_id = 'r2' AND file_name <> 'payments_empty.csv'"))
    assert rerun.pop("payments_broken.csv") == f"rejected_file: {NOT_PAYMENTS}"
    assert {s.split(":")[0] for s in rerun.values()} == {"known"}


# ------------------------------------------------------------------ telling a payments extract apart

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


def test_a_payments_header_is_no_cdr_format(policy):
    from transforms.formats import load_formats
    from transforms.formats.recognize import detect

    # The payments step owns it: no CDR format claims the payments columns.
    assert detect(PAYMENTS_HEADER.encode(), load_formats(policy), policy).format is None


def test_a_repeated_invoice_that_also_fails_a_check_counts_once_as_a_duplicate(tmp_path, policy, lake, work_dir):
    # INV-1 again with a status off the list: one row, quarantined under both reasons, counted once (a duplicate).
    again = PAID.replace(",paid,", ",pending,")
    result = run(write(tmp_path, "payments_2026-11-22.csv", HEADER + PAID + OPEN + again), policy, lake, work_dir)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    assert result.quarantined_by_reason == {"duplicate_invoice": 1, "status_invalid": 1}
    assert (result.rows_duplicate, result.rows_unparseable) == (1, 0)


def test_a_payments_file_of_blank_lines_only_is_empty(tmp_path, policy, lake, work_dir):
    # Blank lines are not records (README "How a file is read"); found by tests/reliability (only_blank_lines):
    # such a payments_*.csv was refused as not a payments extract, its blank lines counted as rows read.
    r = run(write(tmp_path, "payments_blank.csv", b"\n\r\n\n"), policy, lake, work_dir)
    assert (r.status, r.rows_read) == ("empty", 0)
