"""transforms/steps/validate.py: a tiny staged table, one fault per row, through real GX (gx_duckdb) and the router."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from transforms.policy import LINEAGE_COLUMNS
from transforms.steps.reading import INGEST_FLAG, RECORD_DIGEST, SOURCE_ROW, SPANS_LINES, STAGING_TECHNICAL, LineNumbering
from transforms.steps import validate as validate_step
from transforms.steps.validate import DUPLICATE, RuleCheck, load_rules, typed_select, validate_staged

SHA = "e5" * 32
RUN = "manual__2026-11-23T01:00:00+00:00"
EMAIL = "ana.novak@example.com"

GOOD = dict(
    origin_number="+38640123456", destination_number="+38641765432", direction="outgoing",
    start_time="2026-11-22 09:00:00", duration_s="60", service_type="call", redirection_number=None,
    data_volume_bytes="0", data_rate_kbps="0.5", apn="internet.a1.si", free_units_used="1",
    cell_id="0A1B-00FF", location_area="1A2B", imsi="293400000000001", imei="350000000000001",
    origin_network="29340", termination_network="29341", service_area="home", origin_country_code="386",
    called_country_code="386", tariff_code="T_BASIC", unit_price="0.050000", charged_amount="3.00",
    discount_amount="0", currency="EUR", tax_amount="0.66",
)
# One row per fault; source_row is the 1-based position. Each comment is the rule the row breaks.
ROWS = [
    ({}, None),                                                    # 1 valid
    ({"origin_number": None}, None),                               # 2 origin_number_required
    ({"origin_number": EMAIL}, None),                              # 3 origin_number_shape
    ({"direction": "sideways"}, None),                             # 4 direction_allowed_value
    ({"duration_s": "90000"}, None),                               # 5 duration_s_range (> 86400 s)
    ({"imsi": "38640999888"}, None),                               # 6 imsi_shape (11 digits, needs 14-15)
    ({}, None),                                                    # 7 exact repeat of row 1: duplicate_row
    ({"duration_s": "12x"}, None),                                 # 8 duration_s_unparseable (not a BIGINT)
    ({"origin_number": "040123456", "start_time": "2026-11-21 23:30:00"}, None),   # 9 valid, day before
    ({"direction": None, "duration_s": "-5"}, None),               # 10 direction_required + duration_s_range
    ({"origin_number": "+38640555555"}, SPANS_LINES),              # 11 flagged by ingest: record_spans_lines
]
# Hand count from the comments above: 11 rows, rows 1 and 9 valid, the other 9 rejected; row 10
# counts under two reasons, so the reason counts add up to 10.
EXPECTED_BY_REASON = {
    "origin_number_required": 1, "origin_number_shape": 1, "direction_allowed_value": 1,
    "duration_s_range": 2, "imsi_shape": 1, DUPLICATE: 1, "duration_s_unparseable": 1,
    "direction_required": 1, SPANS_LINES: 1,
}
EXPECTED_REASON_OF_ROW = {
    2: "origin_number_required", 3: "origin_number_shape", 4: "direction_allowed_value", 5: "duration_s_range",
    6: "imsi_shape", 7: DUPLICATE, 8: "duration_s_unparseable", 10: "direction_required; duration_s_range",
    11: SPANS_LINES,
}
# What GX counts on the typed rows: it sees neither repeats nor casts nor ingest flags, and a value
# that did not cast is NULL to it (row 8 is not "out of range"). Every other rule: 0 unexpected.
EXPECTED_GX_UNEXPECTED = {
    "origin_number_required": 1, "origin_number_shape": 1, "direction_allowed_value": 1,
    "duration_s_range": 2, "imsi_shape": 1, "direction_required": 1,
}


def sql_text(v):
    return "NULL" if v is None else "'" + v.replace("'", "''") + "'"


def technical(flag: str | None, record: str, source_row: int | None = None) -> list[str]:
    """Ingest's technical columns of a staged row; `record` stands for the whole source record's text."""
    return [f"CAST({sql_text(flag)} AS VARCHAR) AS {INGEST_FLAG}", "CAST(1 AS BIGINT) AS _record_lines",
            f"{{'hi': hash({sql_text(record)}), 'lo': CAST(0 AS UBIGINT)}} AS {RECORD_DIGEST}",
            f"CAST({source_row if source_row is not None else 'NULL'} AS BIGINT) AS {SOURCE_ROW}"]


@pytest.fixture(scope="module")
def staged(tmp_path_factory, policy, pq_write):
    """The staged file as ingest writes it: canonical columns as VARCHAR plus ingest's technical columns."""
    path = tmp_path_factory.mktemp("staged") / "staged.parquet"
    assert STAGING_TECHNICAL == (INGEST_FLAG, "_record_lines", RECORD_DIGEST, SOURCE_ROW)
    selects = []
    for override, flag in ROWS:
        values = {**GOOD, **override}
        cols = [f"CAST({sql_text(values[c])} AS VARCHAR) AS {c}" for c in policy.allowed_columns]
        cols += technical(flag, repr(sorted(values.items())))    # row 7 repeats row 1's whole record
        selects.append("SELECT " + ", ".join(cols))
    return pq_write(path, " UNION ALL ".join(selects))


@pytest.fixture(scope="module")
def result(staged, policy, tmp_path_factory):
    work = tmp_path_factory.mktemp("validate")
    return validate_staged(str(staged), policy, work, source_sha256=SHA, run_id=RUN)


def test_counts(result):
    assert result.rows_in == 11
    assert result.rows_valid == 2
    assert result.rows_rejected == 9
    assert result.rows_valid + result.rows_rejected == result.rows_in


def valid_files(result) -> str:
    return f"{result.valid_dir}/*/*.parquet"


def test_rejected_by_reason(result):
    assert result.rejected_by_reason == EXPECTED_BY_REASON


def test_valid_rows_have_lineage_and_types(result, pq_read, pq_columns, policy):
    # Laid out as the billing zone is: the event date is the folder, not a column of the file.
    assert sorted(p.name for p in Path(result.valid_dir).iterdir()) == ["event_date=2026-11-21",
                                                                        "event_date=2026-11-22"]
    assert pq_columns(valid_files(result)) == [
        "record_id", "source_file_sha256", "source_row", "run_id", *policy.allowed_columns]
    assert LINEAGE_COLUMNS == ("record_id", "source_file_sha256", "source_row", "run_id", "event_date")
    rows = pq_read(valid_files(result), "SELECT record_id, source_file_sha256, source_row, run_id, event_date,"
                                        " origin_number, start_time, duration_s, data_rate_kbps, unit_price,"
                                        " charged_amount FROM t ORDER BY source_row", hive=True)
    assert rows == [
        (hashlib.md5(f"{SHA}:1".encode()).hexdigest(), SHA, 1, RUN, date(2026, 11, 22), "+38640123456",
         datetime(2026, 11, 22, 9, 0), 60, 0.5, Decimal("0.050000"), Decimal("3.0000")),
        (hashlib.md5(f"{SHA}:9".encode()).hexdigest(), SHA, 9, RUN, date(2026, 11, 21), "040123456",
         datetime(2026, 11, 21, 23, 30), 60, 0.5, Decimal("0.050000"), Decimal("3.0000")),
    ]


def test_valid_column_types(result, pq_read):
    types = dict(pq_read(valid_files(result), "SELECT column_name, column_type FROM (DESCRIBE t)", hive=True))
    assert types["start_time"] == "TIMESTAMP"
    assert types["duration_s"] == "BIGINT"
    assert types["data_rate_kbps"] == "DOUBLE"
    assert types["unit_price"] == "DECIMAL(18,6)"
    assert types["charged_amount"] == "DECIMAL(18,4)"
    assert types["event_date"] == "DATE"
    assert types["origin_number"] == "VARCHAR"
    assert INGEST_FLAG not in types and "_unparseable" not in types


def test_rejected_rows_carry_reason_and_text(result, pq_read, pq_columns, policy):
    assert pq_columns(result.rejected_path) == [
        "record_id", "source_file_sha256", "source_row", "run_id", "reason",
        *policy.allowed_columns]
    rows = pq_read(result.rejected_path, "SELECT source_row, reason FROM t ORDER BY source_row")
    assert dict(rows) == EXPECTED_REASON_OF_ROW
    # Quarantine keeps a value that is the right kind but out of range (a 90 000 s call) for review,
    # and blanks one that failed a shape rule or the cast: it may not be the datum the column allows.
    texts = dict(pq_read(result.rejected_path, "SELECT source_row, [origin_number, duration_s, imsi] FROM t"))
    assert texts[5] == ["+38640123456", "90000", "293400000000001"]   # duration_s_range: value kept
    assert texts[3] == [None, "60", "293400000000001"]                # e-mail failed origin_number_shape
    assert texts[6] == ["+38640123456", "60", None]                   # imsi_shape
    assert texts[8] == ["+38640123456", None, "293400000000001"]      # '12x' did not cast
    assert texts[10] == ["+38640123456", "-5", "293400000000001"]     # range again: kept
    anywhere = f"list_contains([{', '.join(policy.allowed_columns)}], '{EMAIL}')"
    assert pq_read(result.rejected_path, f"SELECT count(*) FROM t WHERE {anywhere}") == [(0,)]
    assert pq_read(result.rejected_path, "SELECT record_id FROM t WHERE source_row = 7") == [
        (hashlib.md5(f"{SHA}:7".encode()).hexdigest(),)]


def test_checks_have_counts_and_no_values(result, policy):
    rules = load_rules(policy)
    assert len(result.checks) == len(rules) == 30          # expectations in billing_cdr.json
    assert {f.name for f in dataclasses.fields(RuleCheck)} == {
        "rule", "expectation", "column", "clause", "success", "element_count", "unexpected_count",
        "rows_quarantined"}
    by_rule = {c.rule: c for c in result.checks}
    for rule, check in by_rule.items():
        expected = EXPECTED_GX_UNEXPECTED.get(rule, 0)
        assert check.unexpected_count == expected, rule
        assert check.success is (expected == 0), rule
        assert check.element_count == 11, rule
        assert check.rows_quarantined == EXPECTED_BY_REASON.get(rule, 0), rule
    assert EMAIL not in repr(result.checks)
    assert "38640999888" not in repr(result.checks)


def test_duplicate_keeps_the_first_copy(result, pq_read):
    assert pq_read(valid_files(result), "SELECT count(*) FROM t WHERE source_row = 1") == [(1,)]
    assert pq_read(result.rejected_path, "SELECT count(*) FROM t WHERE source_row = 7") == [(1,)]


def test_work_database_is_removed(result):
    assert not (Path(result.valid_dir).parent / "validate.duckdb").exists()


def test_typed_select_flags_uncastable_text(policy):
    sql = typed_select(policy)
    assert "TRY_CAST(duration_s AS BIGINT) AS duration_s" in sql
    assert "'duration_s_unparseable'" in sql
    assert "'origin_number_unparseable'" not in sql       # VARCHAR columns never fail a cast


def test_all_clean_file_has_no_rejected_path(tmp_path, policy, pq_write):
    cols = [f"CAST({sql_text(GOOD[c])} AS VARCHAR) AS {c}" for c in policy.allowed_columns]
    staged = pq_write(tmp_path / "clean.parquet", "SELECT " + ", ".join(cols + technical(None, "r")))
    r = validate_staged(str(staged), policy, tmp_path / "w", source_sha256=SHA, run_id=RUN)
    assert (r.rows_in, r.rows_valid, r.rows_rejected, r.rejected_by_reason) == (1, 1, 0, {})
    assert r.rejected_path is None
    assert all(c.success and c.unexpected_count == 0 for c in r.checks)


def test_duplicates_are_judged_on_the_whole_source_record(tmp_path, policy, pq_write, pq_read):
    # Three rows with the same allowed values: two ring legs whose records differ in a column the format
    # does not keep (rows 1, 2: both load), and an exact repeat of the first record (row 3: duplicate).
    cols = [f"CAST({sql_text(GOOD[c])} AS VARCHAR) AS {c}" for c in policy.allowed_columns]
    staged = pq_write(tmp_path / "legs.parquet", " UNION ALL ".join(
        "SELECT " + ", ".join(cols + technical(None, record)) for record in ("leg SIP/a", "leg SIP/b", "leg SIP/a")))
    r = validate_staged(str(staged), policy, tmp_path / "w", source_sha256=SHA, run_id=RUN)
    assert (r.rows_valid, r.rows_rejected, r.rejected_by_reason) == (2, 1, {DUPLICATE: 1})
    assert pq_read(r.rejected_path, "SELECT source_row, reason FROM t") == [(3, DUPLICATE)]


def test_source_row_is_the_records_first_physical_line(tmp_path, policy, pq_write, pq_read):
    # Rows without `_source_row` start on their position + ingest's line offset (a one-line header);
    # a row with one (written by ingest when an earlier line was no record) keeps it.
    cols = [f"CAST({sql_text(GOOD[c])} AS VARCHAR) AS {c}" for c in policy.allowed_columns]
    staged = pq_write(tmp_path / "lines.parquet", " UNION ALL ".join(
        "SELECT " + ", ".join(cols + technical(None, f"record {i}", line)) for i, line in ((1, None), (2, 9))))
    r = validate_staged(str(staged), policy, tmp_path / "w", source_sha256=SHA, run_id=RUN,
                        numbering=LineNumbering(header=1))
    assert sorted(pq_read(valid_files(r), "SELECT source_row FROM t", hive=True)) == [(2,), (9,)]


def write_suite(tmp_path: Path, *expectations: dict) -> Path:
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"name": "s", "expectations": list(expectations)}))
    return path


def test_a_suite_may_only_name_allowed_columns(tmp_path, policy):
    suite = write_suite(tmp_path, {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "caller_name"}})
    with pytest.raises(ValueError, match="suite expectation 0 names 'caller_name', which is not an allowed column"):
        load_rules(policy, suite)


def test_an_expectation_without_a_row_predicate_is_refused(tmp_path, policy):
    suite = write_suite(tmp_path, {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "imsi"}})
    with pytest.raises(ValueError, match="expect_column_values_to_be_unique has no row predicate"):
        load_rules(policy, suite)


def test_a_rule_without_meta_is_named_by_column_and_kind_under_the_policy_clause(tmp_path, policy):
    in_set = {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "currency", "value_set": ["EUR"]}}
    (rule,) = load_rules(policy, write_suite(tmp_path, in_set))
    assert (rule.name, rule.column, rule.clause) == (
        "currency_expect_column_values_to_be_in_set", "currency", policy.field("currency").clause)


def test_the_bundled_rules_name_their_rule_and_clause(policy):
    rules = load_rules(policy)
    assert len({r.name for r in rules}) == len(rules)                  # a reason names one rule
    assert all(policy.is_allowed(r.column) and r.clause for r in rules)


def test_a_sha256_of_digits_only_validates_and_renders_its_data_docs(tmp_path, policy, pq_write):
    # 16 leading digits (1 sha256 in ~1,850): GX's renderer used to read such a run name as a date and fail.
    digits = "2026112203150000" + "7" * 48
    assert validate_step.run_name_of(digits) == "file-2026112203150000"
    cols = [f"CAST({sql_text(GOOD[c])} AS VARCHAR) AS {c}" for c in policy.allowed_columns]
    staged = pq_write(tmp_path / "clean.parquet", "SELECT " + ", ".join(cols + technical(None, "r")))
    docs = tmp_path / "docs"
    r = validate_staged(str(staged), policy, tmp_path / "w", source_sha256=digits, run_id=RUN, docs_dir=docs)
    assert (r.rows_in, r.rows_valid) == (1, 1)
    assert validate_step.build_night_docs(docs, [digits]) == 1
    pages = list((docs / "validations").rglob("*.html"))
    assert pages and all("file-2026112203150000" in str(p.relative_to(docs)) for p in pages)
    assert "file-2026112203150000" in (docs / "index.html").read_text()
