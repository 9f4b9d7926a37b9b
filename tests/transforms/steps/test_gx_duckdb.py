"""transforms/steps/gx_duckdb.py: real GX over a DuckDB file, counts only, upstream bugs still there."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import duckdb
import pytest

from transforms.bundled import BILLING_SUITE as SUITE
from transforms.steps import gx_duckdb
from transforms.steps.gx_duckdb import DOCS_RESULTS_DIR, ExpectationOutcome, build_data_docs, run_suite
PHONE = "+38640999888"          # planted: a phone number in the IMSI column (bad shape)
EMAIL = "leak@example.com"      # planted: an e-mail address as origin_number (bad shape)

GOOD = dict(
    origin_number="'+38640123456'", destination_number="'+38641765432'", direction="'outgoing'",
    start_time="TIMESTAMP '2024-03-01 12:00:00'", duration_s="60", service_type="'call'",
    redirection_number="NULL", data_volume_bytes="0", data_rate_kbps="0.0", apn="'internet.a1.si'",
    free_units_used="1", cell_id="'0A1B-00FF'", location_area="'1A2B'", imsi="'293400000000001'",
    imei="'350000000000001'", origin_network="'29340'", termination_network="'29341'",
    service_area="'home'", origin_country_code="'386'", called_country_code="'386'",
    tariff_code="'T_BASIC'", unit_price="0.05", charged_amount="3.0", discount_amount="0",
    currency="'EUR'", tax_amount="0.66",
)
TYPES = dict(
    start_time="TIMESTAMP", duration_s="BIGINT", data_volume_bytes="BIGINT", data_rate_kbps="DOUBLE",
    free_units_used="BIGINT", unit_price="DECIMAL(18,6)", charged_amount="DECIMAL(18,4)",
    discount_amount="DECIMAL(18,4)", tax_amount="DECIMAL(18,4)",
)
# Six rows; each dict overrides the good row. Comments give the rules each row breaks.
ROWS = [
    {},
    {"origin_number": f"'{EMAIL}'", "direction": "'sideways'"},            # origin shape, direction set
    {"imsi": f"'{PHONE}'", "duration_s": "-5", "redirection_number": "'+38640111222'"},  # imsi, duration
    {"origin_number": "NULL", "service_type": "NULL",
     "start_time": "TIMESTAMP '1999-12-31 23:59:59'"},                     # origin/service required, time
    {"data_rate_kbps": "1e9", "currency": "'eur'", "redirection_number": "'12'"},  # rate, currency, redir
    {"charged_amount": "-100000", "tax_amount": "100000", "duration_s": "86400"},   # bounds are inclusive
]
# Hand-counted failing rows per rule (meta.rule in the suite); every other rule: 0.
EXPECTED_UNEXPECTED = {
    "origin_number_required": 1, "origin_number_shape": 1, "direction_allowed_value": 1,
    "start_time_range": 1, "duration_s_range": 1, "service_type_required": 1, "imsi_shape": 1,
    "data_rate_kbps_range": 1, "currency_shape": 1, "redirection_number_shape": 1,
}


def make_candidate(path: Path) -> Path:
    cols = list(GOOD)
    selects = []
    for row in ROWS:
        values = {**GOOD, **row}
        selects.append("SELECT " + ", ".join(
            f"CAST({values[c]} AS {TYPES.get(c, 'VARCHAR')}) AS {c}" for c in cols))
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE TABLE candidate AS " + " UNION ALL ".join(selects))
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def candidate_db(tmp_path_factory) -> Path:
    return make_candidate(tmp_path_factory.mktemp("gx") / "candidate.duckdb")


@pytest.fixture(scope="module")
def suite() -> dict:
    return json.loads(SUITE.read_text())


@pytest.fixture(scope="module")
def docs_run(candidate_db, tmp_path_factory):
    docs = tmp_path_factory.mktemp("docs") / "gx_data_docs"
    outcomes = run_suite(candidate_db, "candidate", SUITE, docs_dir=docs, run_name="run-a")
    kept = [p for p in docs.rglob("*") if p.is_file()]
    assert kept and all(DOCS_RESULTS_DIR in p.relative_to(docs).parts for p in kept)   # a run keeps its result only
    assert build_data_docs(docs, SUITE, ["run-a"]) == 1
    return docs, outcomes


def test_outcomes_match_hand_counts(docs_run, suite):
    _, outcomes = docs_run
    assert len(outcomes) == len(suite["expectations"]) == 30
    for exp, outcome in zip(suite["expectations"], outcomes, strict=True):
        rule = exp["meta"]["rule"]
        want = EXPECTED_UNEXPECTED.get(rule, 0)
        assert isinstance(outcome, ExpectationOutcome)
        assert (outcome.expectation_type, outcome.column) == (exp["type"], exp["kwargs"]["column"]), rule
        assert outcome.element_count == len(ROWS), rule
        assert outcome.unexpected_count == want, rule
        assert outcome.success is (want == 0), rule
    by_rule = {e["meta"]["rule"]: o for e, o in zip(suite["expectations"], outcomes)}
    # nulls are not "unexpected" for a shape rule: GX counts them as missing
    assert by_rule["origin_number_shape"].missing_count == 1
    assert by_rule["redirection_number_shape"].missing_count == 4
    assert by_rule["redirection_number_shape"].unexpected_percent == pytest.approx(50.0)


def test_no_planted_value_in_outcomes_or_data_docs(docs_run):
    docs, outcomes = docs_run
    assert PHONE not in repr(outcomes) and EMAIL not in repr(outcomes)
    files = [p for p in docs.rglob("*") if p.is_file()]
    assert (docs / "index.html").is_file()
    (page,) = [p for p in (docs / "validations").rglob("*.html") if "run-a" in p.parts]
    assert "unexpected values found" in page.read_text()         # the page shows the counts ...
    for f in files:                                # ... and no value (bad or good), anywhere
        data = f.read_bytes()
        for planted in (PHONE, EMAIL, PHONE.lstrip("+"), "040999888", "+38640123456", "293400000000001"):
            assert planted.encode() not in data, f"{planted} leaked into {f.relative_to(docs)}"


def test_runs_sharing_docs_dir_keep_each_others_pages(docs_run, candidate_db):
    docs, _ = docs_run
    run_suite(candidate_db, "candidate", SUITE, docs_dir=docs, run_name="run-b")
    run_suite(candidate_db, "candidate", SUITE, docs_dir=docs, run_name="run-c")

    def pages() -> set[str]:
        return {p.relative_to(docs / "validations").parts[1] for p in (docs / "validations").rglob("*.html")}

    assert pages() == {"run-a"}                     # kept, not rendered, until a build names them
    assert build_data_docs(docs, SUITE, ["run-b"]) == 1
    assert pages() == {"run-a", "run-b"}            # only the named run's page is rendered ...
    index = (docs / "index.html").read_text()
    assert "run-a" in index and "run-b" in index and "run-c" not in index   # ... and the index links pages only
    assert build_data_docs(docs, SUITE, ["run-c", "run-never"]) == 1
    assert pages() == {"run-a", "run-b", "run-c"}
    assert "run-c" in (docs / "index.html").read_text()


def test_db_file_is_released_and_gx_is_quiet(docs_run, candidate_db):
    # validate.py reopens the file read-write in the same process right after run_suite;
    # DuckDB refuses while GX still holds a read-only connection to it.
    con = duckdb.connect(str(candidate_db))
    try:
        con.execute("CREATE OR REPLACE TABLE scratch AS SELECT 1 AS x")
    finally:
        con.close()
    assert logging.getLogger("great_expectations._docs_decorators").getEffectiveLevel() >= logging.ERROR


def test_strip_values_keeps_counts_only():
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    cfg = ExpectationConfiguration(type="expect_column_values_to_match_regex",
                                   kwargs={"column": "imsi", "regex": "^[0-9]{15}$"})
    r = ExpectationValidationResult(
        success=False, expectation_config=cfg,
        result={"element_count": 3, "unexpected_count": 1, "unexpected_percent": 33.3, "missing_count": 0,
                "partial_unexpected_list": [PHONE], "partial_unexpected_counts": [{"value": PHONE, "count": 1}],
                "unexpected_list": [PHONE], "unexpected_index_list": [{"imsi": PHONE}],
                "unexpected_index_query": f"SELECT * WHERE imsi = '{PHONE}'", "observed_value": PHONE},
        exception_info={"MetricConfigurationID(metric_name='column_values.match_regex.unexpected_count', x)": {
            "raised_exception": True, "exception_message": f"Could not convert '{PHONE}'",
            "exception_traceback": f"Traceback ...\nduckdb.ConversionException: Could not convert '{PHONE}'"}},
    )
    suite_result = ExpectationSuiteValidationResult(success=False, results=[r], suite_name="s")
    gx_duckdb.strip_values(suite_result)
    assert set(r.result) == {"element_count", "unexpected_count", "unexpected_percent", "missing_count"}
    assert PHONE not in json.dumps(suite_result.to_json_dict())
    assert "column_values.match_regex.unexpected_count: ConversionException" in r.exception_info["exception_message"]


# --- the two upstream bugs we patch: these fail once GX no longer needs the patch -----------------

PROBE = {"name": "probe", "expectations": [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "direction"}},
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "imsi", "regex": "^[0-9]{14,15}$"}},
]}


def _probe(db: Path):
    _, _, result = gx_duckdb._validate(db, "candidate", PROBE, docs_dir=None, run_name=None,
                                       result_format="SUMMARY")
    return {r.expectation_config.type: r for r in result.results}


def _raised(exception_info: dict) -> bool:
    """GX reports an exception flat, or nested under the id of each metric that raised."""
    nested = [v for v in exception_info.values() if isinstance(v, dict)]
    return bool(exception_info.get("raised_exception") or any(v.get("raised_exception") for v in nested))


def _upstream_restored(monkeypatch, which: str) -> None:
    """Patch GX as run_suite does, then put back the upstream version of one function."""
    gx_duckdb.patch_gx_for_duckdb()
    if which == "execute_query":
        from great_expectations.execution_engine.sqlalchemy_execution_engine import (
            SqlAlchemyExecutionEngine as Engine,
        )
        monkeypatch.setattr(Engine, "execute_query", Engine.execute_query._cdr_audit_upstream)
    else:
        from great_expectations.expectations.metrics import util
        patched = util.get_dialect_regex_expression
        gx_modules = [m for name, m in list(sys.modules.items()) if name.startswith("great_expectations")]
        for module in gx_modules:   # only GX's own: other packages' lazy shims warn when probed
            if getattr(module, "get_dialect_regex_expression", None) is patched:
                monkeypatch.setattr(module, "get_dialect_regex_expression", patched._cdr_audit_upstream)


def test_patched_gx_evaluates_duckdb(candidate_db):
    gx_duckdb.patch_gx_for_duckdb()
    gx_duckdb.patch_gx_for_duckdb()   # idempotent
    from great_expectations.execution_engine.sqlalchemy_execution_engine import SqlAlchemyExecutionEngine
    upstream = SqlAlchemyExecutionEngine.execute_query._cdr_audit_upstream
    assert not hasattr(upstream, "_cdr_audit_upstream")          # patched once, not wrapped twice
    results = _probe(candidate_db)
    not_null = results["expect_column_values_to_not_be_null"]
    regex = results["expect_column_values_to_match_regex"]
    assert not _raised(not_null.exception_info) and not_null.success
    assert not_null.result["element_count"] == len(ROWS)
    assert not _raised(regex.exception_info)
    assert regex.result["unexpected_count"] == 1 and regex.result["partial_unexpected_list"] == [PHONE]


def test_upstream_execute_query_still_loses_duckdb_rows(candidate_db, monkeypatch):
    _upstream_restored(monkeypatch, "execute_query")
    info = _probe(candidate_db)["expect_column_values_to_not_be_null"].exception_info
    assert _raised(info), ("GX's own SqlAlchemyExecutionEngine.execute_query now works on DuckDB: the upstream bug "
                  "(GX #10738, #11579) is fixed; remove patch_execute_query() from transforms/steps/gx_duckdb.py "
                  "and this test.")
    assert "IndexError" in json.dumps(info), ("unpatched GX still fails on DuckDB, but no longer with "
                                              "IndexError: re-check what patch_execute_query() works around")


def test_upstream_has_no_duckdb_regex(candidate_db, monkeypatch):
    _upstream_restored(monkeypatch, "regex")
    info = _probe(candidate_db)["expect_column_values_to_match_regex"].exception_info
    assert _raised(info), ("GX's own get_dialect_regex_expression now handles DuckDB: remove "
                  "patch_regex_for_duckdb() from transforms/steps/gx_duckdb.py and this test.")
    assert "Regex is not supported for dialect duckdb" in json.dumps(info)


def test_gx_error_is_raised_without_values(candidate_db, monkeypatch, tmp_path):
    _upstream_restored(monkeypatch, "regex")
    monkeypatch.setattr(gx_duckdb, "patch_gx_for_duckdb", lambda: None)
    with pytest.raises(gx_duckdb.GXRunError, match="imsi.*NotImplementedError") as err:
        run_suite(candidate_db, "candidate", SUITE, docs_dir=tmp_path / "docs", run_name="broken")
    assert PHONE not in str(err.value)
    assert not [p for p in (tmp_path / "docs").rglob("*") if p.is_file()]   # nothing rendered


def test_a_missing_database_is_an_error_not_an_empty_table(tmp_path):
    with pytest.raises(FileNotFoundError):
        run_suite(tmp_path / "missing.duckdb", "candidate", SUITE)
    assert not (tmp_path / "missing.duckdb").exists()       # not created by asking
