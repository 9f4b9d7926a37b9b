"""The DAGs: they parse fast and clean, follow our conventions, and really run under Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import pytest

from tests.conftest import BIN, NIGHT, REPO
from tests.leakscan import night_identifiers, scan
from transforms.bundled import SAMPLE_NIGHT

DAGS = REPO / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    # Airflow's dag processor and task runner put the bundle's folder on sys.path (BundleDagBag), so the
    # DAG files can share `cdr_common`; a bare DagBag does not.
    if str(DAGS) not in sys.path:
        sys.path.append(str(DAGS))
    return DagBag(dag_folder=str(DAGS))   # examples are off: AIRFLOW__CORE__LOAD_EXAMPLES=False (conftest)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"cdr_nightly_audit", "cdr_retention_sweep"} <= set(dagbag.dag_ids)


def test_every_dag_follows_conventions(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        assert dag.catchup is False, dag_id
        assert dag.max_active_runs == 1, dag_id
        for task in dag.tasks:
            assert task.retries >= 1, (dag_id, task.task_id)
            # Airflow 3 reads retry_exponential_backoff as a multiplier: True (= 1.0) would mean no backoff.
            assert task.retry_exponential_backoff >= 2 and task.max_retry_delay, (dag_id, task.task_id)
            assert task.owner in ("data-engineering", "data-protection")
            assert task.doc_md and "If it fails" in task.doc_md, (dag_id, task.task_id)
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert [c.__name__ for c in callbacks] == ["record_failure"], (dag_id, task.task_id)
        for name, param in dag.params.items():
            assert param.description and param.schema.get("type"), (dag_id, name)


@pytest.mark.parametrize(("dag_id", "conf", "ok"), [
    ("cdr_nightly_audit", {"night": "2026-11-22"}, True),
    ("cdr_nightly_audit", {"night": "2026-13-01"}, False),
    ("cdr_nightly_audit", {"night": "22.11.2026"}, False),
    ("cdr_nightly_audit", {"formats": {"pbx_*.csv": "asterisk_master_21"}}, True),
    ("cdr_nightly_audit", {"formats": {"pbx_*.csv": "Not A Format"}}, False),
    ("cdr_nightly_audit", {"timezones": {"pbx_*.csv": "Europe/Berlin"}}, True),
    ("cdr_nightly_audit", {"formats_dir": "/etc/cdr-audit/formats"}, True),
    ("cdr_nightly_audit", {"policy": "policy/other.yaml"}, True),
    ("cdr_nightly_audit", {"policy": "policy/other.txt"}, False),
    ("cdr_nightly_audit", {"allow_open_zones": True}, True),
    ("cdr_nightly_audit", {"allow_open_zones": "yes"}, False),
    ("cdr_retention_sweep", {"as_of": "2031-01-01", "dry_run": True}, True),
    ("cdr_retention_sweep", {"as_of": "soon"}, False),
    ("cdr_retention_sweep", {"dry_run": "yes"}, False),
])
def test_params_are_validated(dagbag, dag_id, conf, ok):
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    def apply():
        params = ParamsDict({name: p for name, p in dagbag.dags[dag_id].params.items()})
        params.update(conf)   # validates each value as it is set
        return params.validate()

    if ok:
        assert apply()
    else:
        with pytest.raises(ParamValidationError):
            apply()


def test_every_builtin_format_name_passes_the_dag_param_check():
    import re

    sys.path.insert(0, str(DAGS))
    from cdr_common import FORMAT_NAME

    from transforms.formats import load_formats
    from transforms.policy import load_policy

    assert all(re.match(FORMAT_NAME, name) for name in load_formats(load_policy()).names)


def test_nightly_dag_shape(dagbag):
    dag = dagbag.dags["cdr_nightly_audit"]
    assert set(dag.params.keys()) == {"landing", "lake", "policy", "night", "formats", "formats_dir", "timezones",
                                      "allow_open_zones"}
    assert dag.params.get_param("allow_open_zones").schema["type"] == "boolean"     # default false: the file's PARAMS
    assert {t.task_id for t in dag.tasks} == {"plan_night", "audit_file", "aggregate_night", "roaming_night",
                                              "marketing_night", "close_night"}
    assert dag.get_task("roaming_night").trigger_rule == "all_done"
    assert dag.get_task("marketing_night").trigger_rule == "all_done"
    assert dag.get_task("marketing_night").upstream_task_ids == {"audit_file"}
    assert dag.get_task("close_night").upstream_task_ids == {"aggregate_night", "roaming_night", "marketing_night"}
    assert dag.get_task("aggregate_night").trigger_rule == "all_done"
    assert dag.get_task("close_night").trigger_rule == "all_done"
    assert type(dag.get_task("audit_file")).__name__.endswith("MappedOperator")   # one task per landing file


def test_plan_night_fails_without_retrying_on_a_lake_open_beyond_the_policy(dagbag, tmp_path):
    # docs/design.md §2: a retry would find the same modes, so ZonesOpen is an AirflowFailException (no retry).
    from airflow.sdk.exceptions import AirflowFailException

    lake = tmp_path / "lake"
    (lake / "billing").mkdir(parents=True)      # a lake an earlier version wrote (an empty folder is a new lake)
    lake.chmod(0o755)
    plan = dagbag.dags["cdr_nightly_audit"].get_task("plan_night").python_callable
    with pytest.raises(AirflowFailException) as failed:
        plan(params={"lake": str(lake), "landing": str(SAMPLE_NIGHT), "night": NIGHT}, ds=NIGHT, run_id="manual__x")
    assert "cdr-audit permissions --apply" in str(failed.value)


def test_retention_dag_shape(dagbag):
    dag = dagbag.dags["cdr_retention_sweep"]
    assert set(dag.params.keys()) == {"lake", "policy", "as_of", "dry_run"}
    assert [t.task_id for t in dag.topological_sort()] == ["sweep", "verify_audit_log"]
    # It follows the nightly audit by data: scheduled on the asset the nightly close_night updates.
    outlets = dagbag.dags["cdr_nightly_audit"].get_task("close_night").outlets
    assert [a.name for a in outlets] == ["cdr_audit_store"]
    assert [a.name for a in dag.timetable.asset_condition.objects] == ["cdr_audit_store"]


@pytest.mark.parametrize("dag_file", ["cdr_nightly_audit.py", "cdr_retention_sweep.py"])
def test_dag_files_parse_fast_without_heavy_imports(dag_file):
    # A fresh interpreter, as the dag processor has: the file itself must not pull in the engine.
    code = (
        "import time, importlib.util, sys\n"
        "import airflow.sdk, pendulum\n"
        f"sys.path.insert(0, {str(DAGS)!r})\n"
        "t = time.perf_counter()\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(DAGS / dag_file)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(time.perf_counter() - t)\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('duckdb', 'pandas', 'great_expectations',"
        " 'transforms')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert float(out[0]) < 0.5, f"DAG file took {out[0]} s beyond importing airflow.sdk"
    # Only the keys module (standard library only), whose hook cdr_common gives Airflow's log masker.
    assert out[1] == "['transforms', 'transforms.privacy', 'transforms.privacy.keys']"


@pytest.mark.airflow
@pytest.mark.slow
def test_airflow_dags_test_runs_the_night(night, tmp_path, cli_run):
    """A real `airflow dags test` (SQLite metadata) gives the same zones and audit counts as the CLI."""
    landing, manifest = night
    home, lake = tmp_path / "airflow_home", tmp_path / "lake"
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "CDR_AUDIT_LANDING": str(landing), "CDR_AUDIT_LAKE": str(lake),
           "CDR_AUDIT_TASK_RETRIES": "0",
           # The key comes from the Airflow connection, as in production (not the demo key).
           "AIRFLOW_CONN_CDR_AUDIT_HMAC": json.dumps({"conn_type": "generic", "login": "airflow-k1",
                                                      "password": "cd" * 32})}
    env.pop("CDR_AUDIT_DEMO_MODE", None)
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    run = subprocess.run([str(BIN / "airflow"), "dags", "test", "cdr_nightly_audit", NIGHT], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "state=success" in run.stdout + run.stderr

    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    (trigger, status, read, loaded, rejected), = con.execute(
        "SELECT trigger, status, rows_read, rows_loaded, rows_rejected FROM runs").fetchall()
    con.close()
    cli = duckdb.connect(str(cli_run.lake / "audit" / "audit.duckdb"), read_only=True)
    first_cli_run = cli.execute("SELECT rows_read, rows_loaded, rows_rejected FROM runs ORDER BY started_at LIMIT 1")
    assert (trigger, status) == ("airflow", "completed")
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    assert con.execute("SELECT DISTINCT key_id FROM pseudonymization_log").fetchall() == [("airflow-k1",)]
    # The night's days are inside their release window (policy aggregate_release): held back, and counted.
    released = con.execute("SELECT count(*) FROM aggregate_releases").fetchone()[0]
    waiting = con.execute("SELECT count(*) FROM aggregate_waiting WHERE reason = 'window_open'").fetchone()[0]
    con.close()
    assert released == 0 and waiting >= 1
    assert (read, loaded, rejected) == first_cli_run.fetchone()
    cli.close()
    assert read == sum(f.rows for f in manifest.files.values())

    # Task logs are outputs too: no identifier and no off-list value in them.
    needles = night_identifiers(manifest)
    needles += [*manifest.caller_names, *manifest.emails, *manifest.ip_addresses]
    assert scan([home / "logs", lake / "audit", lake / "reports"], needles, run.stdout + run.stderr) == {}

    # The retention sweep, as the asset-triggered DAG runs it, on the lake the night just filled: a dry run
    # first (nothing changes), then far enough ahead that the night's CDRs are due and go.
    before = sorted(p.relative_to(lake) for p in lake.rglob("*.parquet") if "audit" not in p.parts)
    for conf in ({"as_of": "2031-01-01", "dry_run": True}, {"as_of": "2031-01-01"}):
        sweep = subprocess.run([str(BIN / "airflow"), "dags", "test", "cdr_retention_sweep", "--conf",
                                json.dumps(conf)], env=env, capture_output=True, text=True, timeout=600)
        assert sweep.returncode == 0 and "state=success" in sweep.stdout + sweep.stderr, sweep.stdout[-4000:]
        if conf.get("dry_run"):
            assert sorted(p.relative_to(lake) for p in lake.rglob("*.parquet") if "audit" not in p.parts) == before
    assert not list((lake / "billing").rglob("*.parquet")) and not list((lake / "analytics").rglob("*.parquet"))
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    removed, proofs_ok = con.execute("SELECT sum(rows) FILTER (WHERE action IN ('deleted', 'anonymized')),"
                                     " (SELECT bool_and(ok) FROM retention_proofs) FROM retention_actions").fetchone()
    con.close()
    assert removed >= loaded and proofs_ok
    assert scan([home / "logs"], needles) == {}
