"""The Airflow UI, as an engineer uses it: `airflow standalone` + headless Chromium (Debian's `chromium`),
driven by Playwright.

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
import socket
import subprocess
import time
import urllib.parse

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

from tests.conftest import BIN, NIGHT, REPO, audit_rows
from tests.servers import stop_group

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.browser]

# Debian's Chromium, not a Playwright browser build (none can be downloaded here).
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
# As root Chromium needs --no-sandbox; the rest keep it off the network, which is closed here.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACT = REPO / "tests" / "artifacts" / "airflow_ui.png"
DAG_ID = "cdr_nightly_audit"
TIMEOUT_MS = 60_000   # per page step and API request: a busy 2-core machine renders and answers slowly


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if value := check():
                return value
        except PlaywrightError:   # not answering yet, or an error status (fail_on_status_code)
            pass
        time.sleep(every)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")


@pytest.fixture
def pw():
    with sync_playwright() as playwright:   # on exit it also closes the browser launched from it
        yield playwright


@pytest.fixture
def standalone(tmp_path, pw):
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
        probe = pw.request.new_context(base_url=base, fail_on_status_code=True, timeout=10_000)

        def up():
            if proc.poll() is not None:
                pytest.fail(f"airflow standalone exited: {(tmp_path / 'standalone.log').read_text()[-3000:]}")
            return probe.get("/api/v2/version").json().get("version")

        wait_until(up, 180, "the API server")
        yield {"base": base, "password": password, "lake": lake, "home": home, "log": tmp_path / "standalone.log"}
    finally:
        stop_group(proc)
        log.close()


def overlapping(instances: list[dict]) -> list[tuple[int, int]]:
    """Pairs of task instances (by map index) whose [start, end] intervals overlap."""
    spans = sorted((ti["start_date"], ti["end_date"], ti["map_index"]) for ti in instances)
    return [(a[2], b[2]) for i, a in enumerate(spans) for b in spans[i + 1:] if b[0] < a[1]]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not found: apt-get install chromium chromium-driver")
def test_trigger_the_nightly_audit_from_the_ui(pw, standalone):
    started = time.monotonic()
    base = standalone["base"]
    expect.set_options(timeout=TIMEOUT_MS)
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    body = page.locator("body")

    # Log in through the form; Playwright waits for each field, and for Sign in to be enabled.
    def on_login(url: str) -> bool:
        return urllib.parse.urlsplit(url).path.startswith("/auth")

    page.goto(f"{base}/")
    page.wait_for_url(on_login)
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(standalone["password"])
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: not on_login(url))
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "_token")
    api = pw.request.new_context(base_url=base, extra_http_headers={"Authorization": f"Bearer {token}"},
                                 fail_on_status_code=True, timeout=TIMEOUT_MS)   # the browser session's token

    # The DAG page, once the dag processor has parsed the file; the DAG is paused at creation: unpause it.
    wait_until(lambda: api.get(f"/api/v2/dags/{DAG_ID}").ok, 120, "the DAG to be parsed", every=2)
    api.patch(f"/api/v2/dags/{DAG_ID}", data={"is_paused": False})
    page.goto(f"{base}/dags/{DAG_ID}")
    trigger = page.get_by_role("button", name="Trigger Dag", exact=True)
    expect(trigger).to_be_visible()
    expect(body).to_contain_text("data-engineering", use_inner_text=True)   # owner shown on the DAG page

    # The Trigger dialog: the params form (descriptions shown), the night typed in, then Trigger.
    trigger.click()
    dialog = page.get_by_role("dialog").filter(has=page.locator("input[name=element_night]"))
    expect(dialog).to_contain_text("Night to audit, YYYY-MM-DD", use_inner_text=True)
    dialog.locator("input[name=element_night]").fill(NIGHT)
    dialog.get_by_role("button", name="Trigger", exact=True).last.click()
    page.wait_for_url("**/runs/**")
    run_url = page.url
    run_id = urllib.parse.unquote(run_url.rstrip("/").rsplit("/runs/", 1)[1])
    run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

    run = api.get(run_path).json()
    assert run["conf"]["night"] == NIGHT and run["run_type"] == "manual"

    def finished():
        state = api.get(run_path).json()["state"]
        assert state != "failed", f"run failed; log: {standalone['log']}"
        return state == "success"

    wait_until(finished, 300, f"run {run_id} to succeed", every=2)   # a loaded machine takes its time

    # The finished run as the UI shows it.
    page.goto(run_url)
    expect(body).to_contain_text("close_night", use_inner_text=True)
    expect(body).to_contain_text("success", ignore_case=True, use_inner_text=True)
    page.wait_for_timeout(1000)   # let the grid paint its last state
    page.screenshot(path=ARTIFACT)
    assert ARTIFACT.stat().st_size > 10_000

    # Scale-out: the LocalExecutor ran mapped audit_file tasks side by side (SQLite metadata is no obstacle:
    # tasks report through the API server's execution API, not to the database).
    instances = api.get(f"{run_path}/taskInstances?task_id=audit_file&limit=100").json()["task_instances"]
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
