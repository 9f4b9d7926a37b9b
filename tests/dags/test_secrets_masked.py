"""No HMAC key reaches anything Airflow writes, and Airflow's masker knows every key a task loads.

Real `airflow dags test` runs on SQLite, with real (random, non-demo) keys:

* the nightly audit with the keys in the `cdr_audit_hmac` connection (password = current key, extra =
  retired keys) and an anchor key, run through the LocalExecutor (`--use-executor`, with an execution API
  server) so that tasks run as in production: a supervisor, a task process, task log files;
* the nightly audit with the keys in files (CDR_AUDIT_HMAC_KEY_FILE and the retired keys file, 0600),
  run in-process (plain `dags test`: Airflow masks nothing there, so this checks that nothing prints a key);
* a probe DAG that logs and prints keys on purpose and raises an exception quoting one: its task log must
  show them as *** (docs/design.md §4).

After each run everything is scanned for each key as lower- and upper-case hex and as raw bytes: the
command's stdout and stderr, every file under AIRFLOW_HOME (task logs; the SQLite metadata DB as raw bytes
and every table dumped: xcom, rendered_task_instance_fields, task_instance, log, dag_run conf, ...), the
API server's output and the lake (Parquet and DuckDB read back, tests/leakscan.py).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.conftest import BIN, NIGHT, REPO
from tests.leakscan import scan
from tests.servers import stop_group

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

# Fresh random keys for every session: nothing here may be found anywhere but where the test put it.
NIGHTLY_CONN = {"current": secrets.token_bytes(32), "retired": secrets.token_bytes(40)}
NIGHTLY_FILE = {"current": secrets.token_bytes(32), "retired": secrets.token_bytes(32)}
ANCHOR_KEY = secrets.token_bytes(32)
PROBE = {name: secrets.token_bytes(32) for name in ("conn current", "conn retired", "file current", "file retired")}

PROBE_DAG = '''
"""Test only: logs and prints the keys it loads, then fails quoting one (tests/dags/test_secrets_masked.py)."""
import logging
import os

import pendulum
from airflow.sdk import dag, task
from cdr_common import hmac_connection


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def cdr_leak_probe():
    @task
    def leak():
        from transforms.entry.tasks import keyring
        from transforms.privacy.keys import load_keyring

        log = logging.getLogger("cdr_audit")
        for source, ring in (("conn", keyring(hmac_connection())), ("file", load_keyring(os.environ))):
            for state, key in (("current", ring.current), ("retired", ring.retired[0])):
                log.info("PROBE %s %s lower %s", source, state, key.secret.hex())
                log.info("PROBE %s %s upper %s", source, state, key.secret.hex().upper())
                print(f"PROBE printed {source} {state} {key.secret.hex()}")
        raise RuntimeError(f"PROBE boom {ring.current.secret.hex()} {keyring(hmac_connection()).current.secret.hex()}")

    leak()


cdr_leak_probe()
'''

# Airflow's own settings that would point a run elsewhere, and every key source the runs set themselves.
_CLEARED = ("AIRFLOW__CORE__SQL_ALCHEMY_CONN", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__EXECUTOR",
            "CDR_AUDIT_DEMO_MODE", "CDR_AUDIT_HMAC_KEY", "CDR_AUDIT_HMAC_KEY_FILE", "CDR_AUDIT_HMAC_KEY_ID",
            "CDR_AUDIT_HMAC_RETIRED_KEYS_FILE", "CDR_AUDIT_ANCHOR_KEY", "AIRFLOW_CONN_CDR_AUDIT_HMAC",
            "CDR_AUDIT_LANDING", "CDR_AUDIT_LAKE", "CDR_AUDIT_POLICY")


def forms(secret: bytes) -> list:
    """How a key could be found: hex in either case, and its raw bytes."""
    return [secret.hex(), secret.hex().upper(), secret]


def connection(key_id: str, current: bytes, retired: dict[str, bytes]) -> str:
    """AIRFLOW_CONN_CDR_AUDIT_HMAC as JSON: login = key id, password = hex key, extra = the retired keys."""
    return json.dumps({"conn_type": "generic", "login": key_id, "password": current.hex(),
                       "extra": json.dumps({"retired": {k: v.hex() for k, v in retired.items()}})})


def key_files(folder: Path, key_id: str, current: bytes, retired_id: str, retired: bytes) -> dict[str, str]:
    """The key and the retired keys as files only their owner may read; the environment naming them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"key": folder / "hmac.key", "retired": folder / "retired.keys"}
    for path, text in ((paths["key"], current.hex() + "\n"), (paths["retired"], f"{retired_id}:{retired.hex()}\n")):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    return {"CDR_AUDIT_HMAC_KEY_FILE": str(paths["key"]), "CDR_AUDIT_HMAC_KEY_ID": key_id,
            "CDR_AUDIT_HMAC_RETIRED_KEYS_FILE": str(paths["retired"])}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Site:
    """One AIRFLOW_HOME (SQLite), its DAGs folder and the execution API server the LocalExecutor's tasks use."""

    root: Path
    home: Path
    dags: Path
    api_log: Path
    env: dict

    def run(self, dag_id: str, logical_date: str, extra_env: dict, *, use_executor: bool,
            conf: dict | None = None) -> subprocess.CompletedProcess:
        args = [str(BIN / "airflow"), "dags", "test", dag_id, logical_date]
        args += ["--use-executor"] if use_executor else []
        args += ["--conf", json.dumps(conf)] if conf else []
        out, err = self.root / f"{dag_id}-{logical_date}.out", self.root / f"{dag_id}-{logical_date}.err"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(args, env={**self.env, **extra_env}, stdout=o, stderr=e, cwd=self.root,
                                    start_new_session=True)
            deadline, finished_at = time.monotonic() + 900, None
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(1)
                if finished_at is None and b"DagRun Finished" in out.read_bytes() + err.read_bytes():
                    finished_at = time.monotonic()
                # The LocalExecutor now and then waits on a worker for ever once the run is over: the run's
                # outcome is already written, so end it after a grace period.
                if finished_at is not None and time.monotonic() - finished_at > 60:
                    break
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        stdout, stderr = out.read_bytes(), err.read_bytes()
        code = proc.returncode if proc.returncode >= 0 else (0 if b"state=success" in stdout + stderr else 1)
        return subprocess.CompletedProcess(args, code, stdout, stderr)


@dataclass(frozen=True)
class Run:
    proc: subprocess.CompletedProcess
    lake: Path
    seconds: float

    @property
    def output(self) -> bytes:
        return self.proc.stdout + b"\n" + self.proc.stderr

    def text(self) -> str:
        return self.output.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("airflow_secrets")
    home, dags = root / "airflow_home", root / "dags"
    dags.mkdir()
    for name in ("cdr_nightly_audit.py", "cdr_common.py"):     # the project's files, as they are
        (dags / name).symlink_to(REPO / "dags" / name)
    (dags / "cdr_leak_probe.py").write_text(PROBE_DAG)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False", "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # This checkout's code, in the airflow processes too (ahead of an installed copy).
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "CDR_AUDIT_TASK_RETRIES": "0",
    })
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    api_log = root / "api-server.log"
    with api_log.open("wb") as out:
        api = subprocess.Popen([str(BIN / "airflow"), "api-server", "--apps", "execution", "-H", "127.0.0.1",
                                "-p", str(port), "-w", "1"], env=env, stdout=out, stderr=subprocess.STDOUT,
                               cwd=root, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            if api.poll() is not None:
                pytest.fail(f"the execution API server exited: {api_log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/execution/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the execution API server did not answer within 180 s")
            time.sleep(1)
        yield Site(root, home, dags, api_log, env)
    finally:
        stop_group(api)


def _timed(site: Site, *args, **kwargs) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = site.run(*args, **kwargs)
    return proc, time.monotonic() - started


@pytest.fixture(scope="module")
def nightly_connection(site) -> Run:
    """The nightly audit, keys from the connection (current + retired) and an anchor key, under the
    LocalExecutor: supervisor, task processes, task log files — as in production."""
    lake = site.root / "lake-connection"
    env = {"AIRFLOW_CONN_CDR_AUDIT_HMAC": connection("k-conn-2026", NIGHTLY_CONN["current"],
                                                     {"k-conn-2025": NIGHTLY_CONN["retired"]}),
           "CDR_AUDIT_ANCHOR_KEY": ANCHOR_KEY.hex(), "CDR_AUDIT_LAKE": str(lake)}
    proc, seconds = _timed(site, "cdr_nightly_audit", NIGHT, env, use_executor=True)
    return Run(proc, lake, seconds)


@pytest.fixture(scope="module")
def nightly_key_file(site) -> Run:
    """The nightly audit, keys from files (0600), run in-process by plain `airflow dags test`."""
    lake = site.root / "lake-file"
    env = {**key_files(site.root / "keys-nightly", "k-file-2026", NIGHTLY_FILE["current"], "k-file-2025",
                       NIGHTLY_FILE["retired"]), "CDR_AUDIT_LAKE": str(lake)}
    # Another logical date than the connection run's, the same night (the bundled sample night).
    proc, seconds = _timed(site, "cdr_nightly_audit", "2026-11-23", env, use_executor=False, conf={"night": NIGHT})
    return Run(proc, lake, seconds)


@pytest.fixture(scope="module")
def probe(site) -> Run:
    lake = site.root / "lake-probe"
    env = {"AIRFLOW_CONN_CDR_AUDIT_HMAC": connection("k-probe", PROBE["conn current"],
                                                     {"k-probe-old": PROBE["conn retired"]}),
           **key_files(site.root / "keys-probe", "k-probe-file", PROBE["file current"], "k-probe-file-old",
                       PROBE["file retired"]), "CDR_AUDIT_LAKE": str(lake)}
    proc, seconds = _timed(site, "cdr_leak_probe", "2026-01-02", env, use_executor=True)
    return Run(proc, lake, seconds)


def _key_ids(lake: Path) -> set[str]:
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT DISTINCT key_id FROM pseudonymization_log").fetchall()}
    finally:
        con.close()


def _assert_succeeded(run: Run) -> None:
    assert run.proc.returncode == 0, run.text()[-6000:]
    assert "state=success" in run.text(), run.text()[-6000:]


def test_nightly_with_the_connection_keys_writes_no_key_anywhere(site, nightly_connection):
    run = nightly_connection
    _assert_succeeded(run)
    assert _key_ids(run.lake) == {"k-conn-2026"}
    # The LocalExecutor ran the tasks: their log files exist (and were scanned below).
    task_logs = list((site.home / "logs" / "dag_id=cdr_nightly_audit").rglob("*.log"))
    assert {part for p in task_logs for part in p.parts if part.startswith("task_id=")} >= {
        "task_id=plan_night", "task_id=audit_file", "task_id=roaming_night", "task_id=close_night"}
    # The anchor key was used: the anchors carry an HMAC.
    anchors = [json.loads(p.read_text()) for p in (run.lake / "audit" / "anchors").glob("anchor-*.json")]
    assert anchors and all(a["hmac_sha256"] for a in anchors)
    secrets_ = [f for s in (*NIGHTLY_CONN.values(), ANCHOR_KEY) for f in forms(s)]
    assert scan([site.home, site.api_log, run.lake], secrets_, run.output) == {}
    print(f"nightly audit under the LocalExecutor: {run.seconds:.0f} s")


def test_nightly_with_key_files_writes_no_key_anywhere(site, nightly_key_file):
    run = nightly_key_file
    _assert_succeeded(run)
    assert _key_ids(run.lake) == {"k-file-2026"}
    # In-process `dags test` masks nothing on its console: the clean stdout shows nothing printed a key.
    secrets_ = [f for s in NIGHTLY_FILE.values() for f in forms(s)]
    assert scan([site.home, site.api_log, run.lake], secrets_, run.output) == {}
    print(f"nightly audit in-process: {run.seconds:.0f} s")


def test_every_key_a_task_loads_is_masked_in_its_log(site, probe):
    """The probe logs and prints all four keys (connection and files, current and retired, lower and upper
    case) and fails quoting two: the task log shows *** for each, and no key is anywhere Airflow keeps."""
    text = probe.text()
    assert probe.proc.returncode != 0 and "PROBE" in text, text[-6000:]
    logs = list((site.home / "logs" / "dag_id=cdr_leak_probe").rglob("*.log"))
    assert len(logs) == 1, logs
    log = logs[0].read_text()
    for source in ("conn", "file"):
        for state in ("current", "retired"):
            for case in ("lower", "upper"):
                assert f"PROBE {source} {state} {case} ***" in log, (source, state, case)
            assert f"PROBE printed {source} {state} ***" in log, (source, state)
    # The exception's message, as the task log records it (error_detail.exc_value).
    assert re.search(r'"exc_value":\s*"PROBE boom \*\*\* \*\*\*"', log), log[-3000:]
    assert "RuntimeError" in log
    secrets_ = [f for s in PROBE.values() for f in forms(s)]
    # Not the command's console: the LocalExecutor also copies every task log line to its own stdout, and
    # that copy is not masked (Airflow's, not ours: it shows a connection's password as well).
    assert scan([site.home, site.api_log, probe.lake], secrets_) == {}
    print(f"probe under the LocalExecutor: {probe.seconds:.0f} s")
