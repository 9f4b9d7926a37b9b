"""The Airflow UI, as an engineer uses it: `airflow standalone` + headless Chromium (Debian's `chromium`).

Logs in through the SimpleAuthManager form, opens the cdr_nightly_audit page, triggers a run from the
Trigger dialog, waits for it to succeed (REST API, with the browser session's token), checks that the
LocalExecutor ran mapped audit_file tasks side by side, and keeps a screenshot of the finished run in
tests/artifacts/airflow_ui.png.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import BIN, NIGHT, REPO, audit_rows
from tests.dags.cdp import Browser, find_chromium

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.browser]

CHROMIUM = find_chromium()
ARTIFACT = REPO / "tests" / "artifacts" / "airflow_ui.png"
DAG_ID = "cdr_nightly_audit"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """The Airflow REST API (v2) with a bearer token."""

    def __init__(self, base: str, token: str = ""):
        self.base, self.token = base, token

    def get(self, path: str) -> dict:
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    def send(self, method: str, path: str, body: dict) -> dict:
        req = urllib.request.Request(self.base + path, method=method, data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)


def wait_until(check, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if value := check():
                return value
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(every)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")


@pytest.fixture
def standalone(tmp_path):
    """`airflow standalone` (SQLite, LocalExecutor) on a free port, with a known admin password."""
    home, lake, landing = tmp_path / "airflow_home", tmp_path / "lake", tmp_path / "landing"
    shutil.copytree(REPO / "sample_data" / "night", landing)
    home.mkdir()
    password = secrets.token_urlsafe(12)
    # SimpleAuthManager reads the passwords from this file and generates none for users already in it.
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": password}))
    port = free_port()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",   # it starts `airflow ...`
           "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
           "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__HOST": "127.0.0.1",
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",    # only the run the test triggers
           "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
           "CDR_AUDIT_LANDING": str(landing), "CDR_AUDIT_LAKE": str(lake), "CDR_AUDIT_DEMO_MODE": "1",
           "CDR_AUDIT_TASK_RETRIES": "0"}
    for key in ("AIRFLOW__CORE__SQL_ALCHEMY_CONN", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__EXECUTOR"):
        env.pop(key, None)
    log = (tmp_path / "standalone.log").open("w")
    proc = subprocess.Popen([str(BIN / "airflow"), "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp_path, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def up():
            if proc.poll() is not None:
                pytest.fail(f"airflow standalone exited: {(tmp_path / 'standalone.log').read_text()[-3000:]}")
            return Api(base).get("/api/v2/version").get("version")

        wait_until(up, 180, "the API server")
        yield {"base": base, "password": password, "lake": lake, "home": home, "log": tmp_path / "standalone.log"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)   # the standalone's own process group: scheduler, api-server, ...
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def overlapping(instances: list[dict]) -> list[tuple[int, int]]:
    """Pairs of task instances (by map index) whose [start, end] intervals overlap."""
    spans = sorted((ti["start_date"], ti["end_date"], ti["map_index"]) for ti in instances)
    return [(a[2], b[2]) for i, a in enumerate(spans) for b in spans[i + 1:] if b[0] < a[1]]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not found: apt-get install chromium chromium-driver")
def test_trigger_the_nightly_audit_from_the_ui(standalone, tmp_path):
    started = time.monotonic()
    base = standalone["base"]
    browser = Browser(CHROMIUM, tmp_path / "chromium-profile")
    try:
        # Log in through the form (React inputs: type into them, do not set .value).
        browser.goto(f"{base}/")
        browser.wait_for("location.pathname.startsWith('/auth') && !!document.querySelector('input[name=password]')",
                         what="the login form")
        browser.type_into("input[name=username]", "admin")
        browser.type_into("input[name=password]", standalone["password"])
        browser.wait_for("!document.querySelector('button[type=submit]').disabled", what="an enabled Sign in")
        browser.click("button[type=submit]")
        browser.wait_for("!location.pathname.startsWith('/auth')", what="the home page after login")
        token = next(c["value"] for c in browser.send("Network.getCookies")["cookies"] if c["name"] == "_token")
        api = Api(base, token)   # the browser session's own token

        # The DAG page, once the dag processor has parsed the file; the DAG is paused at creation: unpause it.
        wait_until(lambda: api.get(f"/api/v2/dags/{DAG_ID}"), 120, "the DAG to be parsed", every=2)
        api.send("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        browser.goto(f"{base}/dags/{DAG_ID}")
        browser.wait_for("!!document.querySelector('button[aria-label=\"Trigger Dag\"]')", what="the Trigger button")
        assert "data-engineering" in browser.js("document.body.innerText")     # owner shown on the DAG page

        # The Trigger dialog: the params form (descriptions shown), the night typed in, then Trigger.
        browser.click("button[aria-label=\"Trigger Dag\"]")
        browser.wait_for("!!document.querySelector('[role=dialog] input[name=element_night]')", what="the params form")
        dialog = "document.querySelector('input[name=element_night]').closest('[role=dialog]')"
        assert "Night to audit, YYYY-MM-DD" in browser.js(f"{dialog}.innerText")
        browser.type_into("[role=dialog] input[name=element_night]", NIGHT)
        browser.js(f"[...{dialog}.querySelectorAll('button')]"
                   ".filter(b => b.innerText.trim() === 'Trigger').pop().click()")
        run_url = browser.wait_for("location.pathname.includes('/runs/') && location.href", what="the new run's page")
        run_id = urllib.parse.unquote(run_url.rstrip("/").rsplit("/runs/", 1)[1])
        run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

        run = api.get(run_path)
        assert run["conf"]["night"] == NIGHT and run["run_type"] == "manual"

        def finished():
            state = api.get(run_path)["state"]
            assert state != "failed", f"run failed; log: {standalone['log']}"
            return state == "success"

        wait_until(finished, 150, f"run {run_id} to succeed", every=2)

        # The finished run as the UI shows it.
        browser.goto(run_url)
        browser.wait_for("document.body.innerText.includes('close_night')"
                         " && document.body.innerText.toLowerCase().includes('success')", what="the finished run")
        time.sleep(1)   # let the grid paint its last state
        browser.screenshot(ARTIFACT)
    finally:
        browser.close()
    assert ARTIFACT.stat().st_size > 10_000

    # Scale-out: the LocalExecutor ran mapped audit_file tasks side by side (SQLite metadata is no obstacle:
    # tasks report through the API server's execution API, not to the database).
    instances = api.get(f"{run_path}/taskInstances?task_id=audit_file&limit=100")["task_instances"]
    instances = [ti for ti in instances if ti["task_id"] == "audit_file"]
    assert len(instances) >= 2 and all(ti["state"] == "success" for ti in instances)
    assert overlapping(instances), [(ti["map_index"], ti["start_date"], ti["end_date"]) for ti in instances]

    # And the one writer merged every file's facts.
    (status, files_failed), = audit_rows(standalone["lake"], "SELECT status, files_failed FROM runs WHERE run_id = ?",
                                         [run_id])
    assert (status, files_failed) == ("completed", 0)
    loaded = audit_rows(standalone["lake"], "SELECT count(*) FROM source_files WHERE run_id = ?", [run_id])[0][0]
    assert loaded >= len(instances)
    print(f"browser test: {time.monotonic() - started:.0f} s after the API server answered; {len(instances)} "
          f"audit_file tasks, overlapping pairs: {len(overlapping(instances))}")
