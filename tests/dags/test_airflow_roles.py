"""The Airflow UI's accounts and what each may do, against a real `airflow api-server`.

The accounts are the demo's (the Makefile's AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS), their passwords
written by scripts/airflow_ui_passwords.py as `make demo` writes them. One API server per module (SQLite,
its own AIRFLOW_HOME); `airflow dags test --use-executor` runs cdr_nightly_audit once on an empty landing
folder so that real task logs exist. Each account logs in through POST /auth/token and uses the public REST
API v2, as the UI does. README "Airflow accounts and roles" has the table this checks.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import BIN, NIGHT, REPO
from tests.dags.test_airflow_ui import free_port
from tests.servers import stop_group
from tests.test_compose import makefile_users

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAG_ID = "cdr_nightly_audit"
DAG = f"/api/v2/dags/{DAG_ID}"
SCRIPT = REPO / "scripts" / "airflow_ui_passwords.py"
PROBE_CONNECTION = "cdr_roles_probe"
# Each account by its role (the Makefile names them: README "Airflow accounts and roles").
ROLES = {role: name for name, role in (u.split(":")[:2] for u in makefile_users().split(","))}


def call(base: str, method: str, path: str, body=None, token: str | None = None) -> tuple[int, object]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw or b"null")
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`airflow api-server` on a free port with the demo's accounts, and one finished run of the DAG."""
    tmp = tmp_path_factory.mktemp("roles")
    home, lake, landing = tmp / "airflow_home", tmp / "lake", tmp / "landing"
    for folder in (home, lake, landing):
        folder.mkdir()
    port = free_port()
    passwords_file = home / "simple_auth_manager_passwords.json.generated"   # Airflow's default name
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(REPO),   # the DAGs' tasks import this checkout's transforms
           "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
           "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": makefile_users(),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
           "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__WORKERS": "1",
           "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
           "CDR_AUDIT_LANDING": str(landing), "CDR_AUDIT_LAKE": str(lake), "CDR_AUDIT_DEMO_MODE": "1",
           "CDR_AUDIT_TASK_RETRIES": "0"}
    for key in ("AIRFLOW__CORE__SQL_ALCHEMY_CONN", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        env.pop(key, None)

    def run(*args, what: str, timeout: int = 300):
        done = subprocess.run(args, env=env, cwd=tmp, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{what} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    started = time.monotonic()
    # As `make demo` does: the passwords first, so Airflow generates none (and prints none).
    run(sys.executable, str(SCRIPT), str(passwords_file), what="scripts/airflow_ui_passwords.py")
    written = passwords_file.read_text()
    run(str(BIN / "airflow"), "db", "migrate", what="airflow db migrate")
    log = (tmp / "api-server.log").open("w")
    proc = subprocess.Popen([str(BIN / "airflow"), "api-server"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"airflow api-server exited: {(tmp / 'api-server.log').read_text()[-3000:]}")
            try:
                if call(base, "GET", "/api/v2/version")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("airflow api-server did not answer within 180 s")
            time.sleep(1)
        # A real run with real task logs: the LocalExecutor's tasks report to this API server.
        run(str(BIN / "airflow"), "dags", "test", "--use-executor", DAG_ID, NIGHT, what="airflow dags test")
        passwords = json.loads(passwords_file.read_text())
        tokens = {}
        for name, password in passwords.items():
            status, body = call(base, "POST", "/auth/token", {"username": name, "password": password})
            assert status == 201, (name, status, body)
            tokens[name] = body["access_token"]
        status, body = call(base, "GET", f"{DAG}/dagRuns?limit=10", token=tokens[ROLES["admin"]])
        assert status == 200 and body["dag_runs"], body
        run_id = body["dag_runs"][0]["dag_run_id"]
        status, body = call(base, "POST", "/api/v2/connections", {"connection_id": PROBE_CONNECTION,
                                                                  "conn_type": "generic"},
                            token=tokens[ROLES["admin"]])
        assert status == 201, body
        print(f"roles test: api-server and one DAG run ready in {time.monotonic() - started:.0f} s")
        yield {"base": base, "tokens": tokens, "run_id": run_id, "passwords_file": passwords_file,
               "written": written}
    finally:
        stop_group(proc)
        log.close()


def test_the_script_writes_passwords_owner_only_and_keeps_those_there(tmp_path):
    target = tmp_path / "airflow_home" / "passwords.json"
    target.parent.mkdir()
    target.write_text(json.dumps({"admin": "kept-as-it-was"}))
    target.chmod(0o644)                      # as Airflow leaves the file it makes itself (umask 022)
    done = subprocess.run([sys.executable, str(SCRIPT), str(target), "--users", makefile_users()],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    passwords = json.loads(target.read_text())
    assert passwords["admin"] == "kept-as-it-was"
    assert set(passwords) == set(ROLES.values())
    assert all(len(p) >= 24 for name, p in passwords.items() if name != "admin")
    assert not any(p in done.stdout + done.stderr for p in passwords.values())   # printed nowhere
    assert [p.name for p in target.parent.iterdir()] == ["passwords.json"]       # no temporary file left


def test_the_script_refuses_an_unknown_role(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "p.json"), "--users", "admin:superuser"],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "superuser" in done.stderr
    assert not (tmp_path / "p.json").exists()


def test_the_passwords_file_stays_owner_only_once_airflow_ran(server):
    """The API server started and every account logged in: Airflow neither loosened the file nor added to it."""
    path = server["passwords_file"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == server["written"]
    assert set(server["tokens"]) == set(ROLES.values())


def test_a_wrong_password_gets_no_token(server):
    status, _ = call(server["base"], "POST", "/auth/token", {"username": ROLES["viewer"], "password": "wrong"})
    assert status == 401


def requests(run_id: str) -> dict[str, tuple[str, str, object]]:
    run = urllib.parse.quote(run_id, safe="")
    return {
        "list DAGs": ("GET", "/api/v2/dags", None),
        "list DAG runs": ("GET", f"{DAG}/dagRuns", None),
        "read a task log": ("GET", f"{DAG}/dagRuns/{run}/taskInstances/plan_night/logs/1", None),
        # The DAG stays paused: a run is still created (queued), which is all that is asked here.
        "trigger a run": ("POST", f"{DAG}/dagRuns", {"logical_date": None, "conf": {"night": NIGHT}}),
        "clear a task": ("POST", f"{DAG}/clearTaskInstances",
                         {"dry_run": False, "dag_run_id": run_id, "task_ids": ["close_night"],
                          "only_failed": False, "reset_dag_runs": False}),
        "list connections": ("GET", "/api/v2/connections", None),
        "patch a connection": ("PATCH", f"/api/v2/connections/{PROBE_CONNECTION}",
                               {"connection_id": PROBE_CONNECTION, "conn_type": "generic", "description": "x"}),
        "list variables": ("GET", "/api/v2/variables", None),
        "set a variable": ("POST", "/api/v2/variables", {"key": "cdr_roles_probe", "value": "1"}),
    }


# role -> request -> expected status (README "Airflow accounts and roles")
EXPECTED = {
    "viewer": {"list DAGs": 200, "list DAG runs": 200, "read a task log": 200, "trigger a run": 403,
               "clear a task": 403, "list connections": 403, "patch a connection": 403,
               "list variables": 403, "set a variable": 403},
    "user": {"list DAGs": 200, "list DAG runs": 200, "read a task log": 200, "trigger a run": 200,
             "clear a task": 200, "list connections": 403, "patch a connection": 403,
             "list variables": 403, "set a variable": 403},
    "admin": {"list DAGs": 200, "list DAG runs": 200, "read a task log": 200, "trigger a run": 200,
              "clear a task": 200, "list connections": 200, "patch a connection": 200,
              "list variables": 200, "set a variable": 201},
}


@pytest.mark.parametrize("role", list(EXPECTED))
def test_what_each_account_may_do(server, role):
    token = server["tokens"][ROLES[role]]
    got = {}
    for what, (method, path, body) in requests(server["run_id"]).items():
        status, answer = call(server["base"], method, path, body, token=token)
        got[what] = status
        if status == 200 and what == "read a task log":
            events = " ".join(str(entry.get("event", "")) for entry in answer["content"])
            # The task's own log file, with what the task logged (an empty landing folder plans no file).
            assert "task_id=plan_night/attempt=1.log" in events and "Returned value was: []" in events, events[:800]
            # ... and the warning of a night whose extracts did not arrive (docs/design.md §9).
            assert "nothing landed for night" in events and "the landing folder was empty" in events, events[:800]
        if status == 200 and what == "clear a task":
            assert [ti["task_id"] for ti in answer["task_instances"]] == ["close_night"]
        if status == 200 and what == "trigger a run":
            assert answer["state"] == "queued" and answer["conf"] == {"night": NIGHT}
        if status == 403:
            assert answer == {"detail": "Forbidden"}
    assert got == EXPECTED[role]
