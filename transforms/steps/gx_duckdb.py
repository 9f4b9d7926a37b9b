"""Great Expectations over DuckDB: run the suite on one table, keep counts only.

GX runs for real here: an in-memory context, a SQL datasource on
``duckdb:///<file>`` (duckdb_engine), a whole-table batch, the suite built
from ``expectations/*.json`` and a ValidationDefinition. GX 1.24 does not know
DuckDB, so two upstream functions are patched (``patch_gx_for_duckdb``; the
tests fail when upstream no longer needs them):

* ``SqlAlchemyExecutionEngine.execute_query`` returns a result after closing
  its connection and a DuckDB cursor is empty once closed: every expectation
  raises IndexError (docs/design.md §8).
* ``get_dialect_regex_expression`` has no DuckDB branch: every regex
  expectation raises "Regex is not supported for dialect duckdb".

Counts only: GX is asked for counts (BASIC, no partial values, so failing
values are never even fetched) and every other key is removed from the result
before it is stored or rendered — the failing values are phone numbers and
IMSIs.

Data Docs (optional) form one site at ``docs_dir``: ``index.html``,
``expectations/<suite>.html``,
``validations/<suite>/<run_name>/<time>/<batch>.html``, ``static/``, and in
``_results/`` the stripped validation results the index is built from. A run
only keeps its stripped result there (``run_suite``); the pages and the index
are built once a night (``build_data_docs``), not once a file: the index build
reads up to INDEX_LIMIT stored results, so a per-file build made each file
slower as the site's history grew (0.85 s a file on an empty site, ~2 s at
200-330 results; benchmarks/README.md). GX's index build deletes pages whose result it cannot
see, so builds that share the site take an exclusive lock on ``docs_dir/.lock``
(nights closing on one machine; ``flock`` is not reliable on network
filesystems).

``great_expectations`` is imported inside functions: importing it takes ~3 s.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from transforms.lake.commit import exclusive
from transforms.lake.permissions import make_dirs, umask_for
from transforms.lake.connection import DUCKDB_MEMORY, DUCKDB_THREADS

SITE_NAME = "cdr_audit"
DOCS_RESULTS_DIR = "_results"      # under docs_dir: the stripped results the site index lists
DOCS_LOCK = ".lock"
INDEX_LIMIT = 500                  # newest validation runs linked from index.html (pages stay)

# Counts only. BASIC with partial_unexpected_count 0 makes GX's "unexpected values"
# query a LIMIT 0, so no failing value leaves DuckDB; `exclude_unexpected_values`
# keeps them out of the result should a later GX fetch them anyway.
RESULT_FORMAT = {
    "result_format": "BASIC",
    "partial_unexpected_count": 0,
    "exclude_unexpected_values": True,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}
# The only keys of an expectation result's `result` dict that are kept.
COUNT_KEYS = frozenset({
    "element_count", "unexpected_count", "unexpected_percent", "missing_count", "missing_percent",
    "unexpected_percent_total", "unexpected_percent_nonmissing",
})
_METRIC_NAME = re.compile(r"metric_name='([^']*)'")
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")   # "pkg.SomeError: message" in a traceback


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result on one table: counts only, never values."""

    expectation_type: str
    column: str | None
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    missing_count: int | None


class GXRunError(RuntimeError):
    """GX could not evaluate an expectation (a query raised): a broken run, not bad data."""


class GXDocsError(RuntimeError):
    """GX did not write every Data Docs page it was asked for."""


def silence_gx_logging() -> None:
    """GX logs hundreds of 'Skipping registering function' INFO lines at import; keep warnings."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.ERROR)


def patch_execute_query() -> None:
    """Make GX's SQL engine read each query result before it closes the connection.

    Upstream bug, GX issues #10738 and #11579: ``SqlAlchemyExecutionEngine.
    execute_query`` runs the query inside ``with self.get_connection()`` and
    returns the CursorResult after that block closed the connection; callers
    fetch from it afterwards. A duckdb_engine cursor is empty once closed, so
    every metric comes back ``[]`` and every expectation raises IndexError.
    ``result.freeze()`` buffers the rows while the connection is open; calling
    the FrozenResult gives a Result with the same fetch API. Same body as
    upstream plus the freeze; idempotent. Remove when
    ``test_upstream_execute_query_still_loses_duckdb_rows`` fails.
    """
    silence_gx_logging()
    from great_expectations.execution_engine.sqlalchemy_execution_engine import (
        SqlAlchemyExecutionEngine,
    )

    upstream = SqlAlchemyExecutionEngine.execute_query
    if hasattr(upstream, "_cdr_audit_upstream"):
        return

    def execute_query(self, query):
        with self.get_connection() as connection:
            result = self._execute_query_with_recovery(connection, query)
            return result.freeze()() if result.returns_rows else result

    execute_query._cdr_audit_upstream = upstream  # type: ignore[attr-defined]
    execute_query.__doc__ = upstream.__doc__
    SqlAlchemyExecutionEngine.execute_query = execute_query  # type: ignore[method-assign]


def patch_regex_for_duckdb() -> None:
    """Give GX's regex expectations a DuckDB predicate: ``regexp_matches(column, regex)``.

    GX 1.24's ``get_dialect_regex_expression`` knows no DuckDB, returns None
    and every regex expectation raises "Regex is not supported for dialect
    duckdb". ``regexp_matches`` is a search like GX's pandas path and the
    predicate transforms/validate.py routes rows with. The metric modules
    import the function by name, so each module's reference is replaced.
    Idempotent. Remove when ``test_upstream_has_no_duckdb_regex`` fails.
    """
    import sqlalchemy as sa

    silence_gx_logging()
    from great_expectations.expectations.metrics import util

    upstream = util.get_dialect_regex_expression
    if hasattr(upstream, "_cdr_audit_upstream"):
        return

    def get_dialect_regex_expression(column, regex, dialect, positive=True):
        if getattr(dialect, "name", None) == "duckdb":
            matches = sa.func.regexp_matches(column, sa.literal(regex))
            return matches if positive else sa.not_(matches)
        return upstream(column, regex, dialect, positive)

    get_dialect_regex_expression._cdr_audit_upstream = upstream  # type: ignore[attr-defined]
    for module in list(sys.modules.values()):
        if (getattr(module, "__name__", "").startswith("great_expectations.")
                and getattr(module, "get_dialect_regex_expression", None) is upstream):
            module.get_dialect_regex_expression = get_dialect_regex_expression  # type: ignore[attr-defined]


def patch_gx_for_duckdb() -> None:
    """Both DuckDB patches; idempotent."""
    patch_execute_query()
    patch_regex_for_duckdb()


def run_suite(db_path: str | Path, table: str, suite_path: str | Path, *,
              docs_dir: str | Path | None = None, run_name: str | None = None) -> list[ExpectationOutcome]:
    """Validate `table` of the DuckDB file `db_path` against the suite JSON at `suite_path`.

    Returns one outcome per expectation, in the suite's order, counts only.
    GX opens the file read-only; nobody may hold it open for writing. With
    `docs_dir`, the stripped result is kept for the Data Docs site there
    (`build_data_docs` renders it).
    Raises GXRunError if GX could not evaluate an expectation.
    """
    silence_gx_logging()
    patch_gx_for_duckdb()
    spec = json.loads(Path(suite_path).read_text())
    if docs_dir is not None:
        make_dirs(Path(docs_dir) / DOCS_RESULTS_DIR)    # with the reports zone's modes (docs/design.md §2)
    context, suite, result = _validate(db_path, table, spec, docs_dir=docs_dir, run_name=run_name,
                                       result_format=dict(RESULT_FORMAT))
    strip_values(result)
    # The key GX stored this run's raw result under, in memory only (the context ends with this call): the
    # stripped result is kept under it for Data Docs. Storing it there too cost ~20–25 ms a file, for nothing.
    (key,) = context.validation_results_store.list_keys()

    by_id = {r.expectation_config.id: r for r in result.results}
    ordered = [by_id[e.id] for e in suite.expectations]
    failed = [r for r in ordered if r.exception_info.get("raised_exception")]
    if failed:
        raise GXRunError("GX could not evaluate " + "; ".join(
            f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column')}): "
            f"{r.exception_info['exception_message']}" for r in failed))
    if docs_dir is not None:
        # GX writes the file itself: it takes the reports zone's access from the umask (docs/design.md §2).
        with umask_for(Path(docs_dir)):
            context.stores["docs_results_store"].set(key, result)
    return [_outcome(r) for r in ordered]


def strip_values(suite_result: Any) -> None:
    """Remove, in place, everything in a GX suite result that can carry a row's value.

    Each expectation keeps only the count keys of its `result` (an allow-list:
    partial_unexpected_list/_counts, unexpected_list, unexpected_index_list,
    unexpected_index_query, unexpected_rows, observed_value ... all go). Exception
    messages and tracebacks are replaced by the failing metrics' names and
    exception classes: a database error can quote the value it choked on.
    """
    for r in suite_result.results:
        r.result = {k: v for k, v in (r.result or {}).items() if k in COUNT_KEYS}
        r.rendered_content = None     # GX renders it from the values when asked; not used here
        info = r.exception_info or {}
        if not info:
            continue
        entries = {"expectation": info} if "raised_exception" in info else info
        raised = []
        for where, entry in entries.items():
            if isinstance(entry, dict) and entry.get("raised_exception"):
                metric = _METRIC_NAME.search(where)
                chain = [m.group(1).rsplit(".", 1)[-1] for line in
                         (entry.get("exception_traceback") or "").splitlines()
                         if (m := _EXCEPTION_LINE.match(line))]      # root cause first
                raised.append(f"{metric.group(1) if metric else where}: "
                              f"{' -> '.join(dict.fromkeys(chain)) or 'exception'}")
        r.exception_info = {
            "raised_exception": bool(raised),
            "exception_message": ("; ".join(sorted(set(raised))) + " (message withheld: it may quote row values)")
            if raised else None,
            "exception_traceback": None,
        }


def _validate(db_path: str | Path, table: str, spec: dict, *, docs_dir: str | Path | None,
              run_name: str | None, result_format: Any) -> tuple[Any, Any, Any]:
    """Run GX as it comes (no patching, no stripping): (context, suite, raw suite result)."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    db_path = Path(db_path).resolve()
    if not db_path.is_file():
        raise FileNotFoundError(f"DuckDB database {db_path} does not exist")
    context = _context(Path(docs_dir) if docs_dir is not None else None)
    try:
        source = context.data_sources.add_sql(
            name="duckdb", connection_string=f"duckdb:///{db_path}",
            kwargs={"connect_args": {"read_only": True, "config": {
                "threads": DUCKDB_THREADS, "memory_limit": DUCKDB_MEMORY}}},
        )
        batch_definition = (source.add_table_asset(name=table, table_name=table)
                            .add_batch_definition_whole_table(name="whole_table"))
        suite = _add_suite(context, spec)
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{spec['name']}-{table}", data=batch_definition, suite=suite))
        run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc))
        result = validation.run(result_format=result_format, run_id=run_id)
    finally:
        # The datasource and its execution engine each hold a SQLAlchemy engine with an open
        # read-only DuckDB connection; while one lives, this process cannot reopen the file
        # for writing ("different configuration than existing connections").
        for ds in context.data_sources.all().values():
            ds.get_engine().dispose()
            ds.get_execution_engine().engine.dispose()
    return context, suite, result


def _outcome(r: Any) -> ExpectationOutcome:
    res = r.result or {}
    return ExpectationOutcome(
        expectation_type=r.expectation_config.type,
        column=r.expectation_config.kwargs.get("column"),
        success=bool(r.success),
        element_count=res.get("element_count"),
        unexpected_count=res.get("unexpected_count"),
        unexpected_percent=res.get("unexpected_percent"),
        missing_count=res.get("missing_count"),
    )


def _context(docs_dir: Path | None) -> Any:
    """An in-memory GX context; with `docs_dir`, a local Data Docs site rooted there."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults()
    stores, sites = dict(defaults.stores), {}
    if docs_dir is not None:
        # GX writes the raw result to its in-memory store; the site reads the stripped
        # copies in this filesystem store, shared by every run that uses docs_dir.
        stores["docs_results_store"] = {
            "class_name": "ValidationResultsStore",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(docs_dir / DOCS_RESULTS_DIR)},
        }
        sites[SITE_NAME] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder",
                                   "validation_results_limit": INDEX_LIMIT},
            "site_section_builders": {
                "validations": {"source_store_name": "docs_results_store"},
                "profiling": "None",
            },
        }
    config = DataContextConfig(
        store_backend_defaults=defaults, stores=stores, data_docs_sites=sites,
        analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _add_suite(context: Any, spec: dict) -> Any:
    """The suite of the JSON `spec`, added to `context`."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    # Built one by one: ExpectationSuite(expectations=[dict, ...]) logs and drops an
    # invalid expectation, which would silently shift every outcome after it.
    expectations = [ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e.get("meta") or {})
                    .to_domain_obj() for e in spec["expectations"]]
    return context.suites.add(gx.ExpectationSuite(name=spec["name"], expectations=expectations,
                                                  meta=spec.get("meta")))


def build_data_docs(docs_dir: str | Path, suite_path: str | Path, run_names: Collection[str]) -> int:
    """Render the Data Docs site at `docs_dir`: a page for each result kept there by a run named in
    `run_names`, the suite's page and the index (the newest INDEX_LIMIT pages). Returns the pages rendered.

    Holds the docs lock while GX builds (see the module's doc). GX logs a page it could not write and
    goes on: a page missing afterwards raises GXDocsError.
    """
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    silence_gx_logging()
    docs_dir = Path(docs_dir)
    make_dirs(docs_dir / DOCS_RESULTS_DIR)    # with the reports zone's modes (docs/design.md §2)
    context = _context(docs_dir)
    suite = _add_suite(context, json.loads(Path(suite_path).read_text()))
    names = set(run_names)
    keys = [k for k in context.stores["docs_results_store"].list_keys() if k.run_id.run_name in names]
    # GX writes the site itself: what it makes takes the reports zone's access from the umask (docs/design.md §2).
    with exclusive(docs_dir / DOCS_LOCK), umask_for(docs_dir):
        context.build_data_docs(site_names=[SITE_NAME],
                                resource_identifiers=[*keys, ExpectationSuiteIdentifier(name=suite.name)])
    # A result's page sits where the result does under _results/ (suite, run name, run time, batch).
    missing = [k for k in keys if not (docs_dir / "validations").joinpath(*k.to_tuple()).with_suffix(".html").is_file()]
    if missing:
        raise GXDocsError(f"GX rendered {len(keys) - len(missing)} of {len(keys)} validation pages"
                          " (its log says why)")
    return len(keys)
