"""docker-compose.yml cannot run here (no Docker engine): check it is whole and consistent instead."""

from __future__ import annotations

import re
import subprocess

import yaml

from tests.conftest import REPO
from tests.servers import cluster_script

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
AIRFLOW_SERVICES = ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-worker", "airflow-store-writer")


def test_production_services_are_all_there():
    assert set(COMPOSE["services"]) == {"postgres", "redis", *AIRFLOW_SERVICES}
    commands = {name: COMPOSE["services"][name]["command"] for name in AIRFLOW_SERVICES}
    assert commands["airflow-apiserver"][:2] == ["bash", "-c"]      # copies its passwords first (see below)
    assert commands["airflow-apiserver"][2].endswith("&& exec airflow api-server")
    assert commands["airflow-dag-processor"] == ["airflow", "dag-processor"]
    assert commands["airflow-worker"][:3] == commands["airflow-store-writer"][:3] == ["airflow", "celery", "worker"]


def test_airflow_services_share_image_lake_and_secrets():
    for name in AIRFLOW_SERVICES:
        svc = COMPOSE["services"][name]
        assert svc["build"] == "." and svc["image"] == "cdr-audit:latest", name
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["CDR_AUDIT_LAKE"] == "/lake" and "lake:/lake" in svc["volumes"]
        assert {"cdr_audit_hmac_key", "postgres_password", "airflow_jwt_secret"} <= set(svc["secrets"])
        assert "postgresql+psycopg2" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"]
        # No secret value is written in the file: secrets come from files or commands that read them.
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET|KEY$", key):
                assert key.endswith(("_FILE", "_CMD")), key
    assert set(COMPOSE["volumes"]) == {"lake", "postgres-db"}


def test_every_referenced_path_exists_and_secrets_stay_out_of_git():
    assert (REPO / "Dockerfile").is_file()
    for src in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", (REPO / "Dockerfile").read_text(), re.M):
        for part in src.split():
            assert (REPO / part).exists(), part
    gitignore = (REPO / ".gitignore").read_text()
    assert "/secrets/*" in gitignore
    for name, secret in COMPOSE["secrets"].items():
        path = REPO / secret["file"]
        assert path.parent.is_dir(), name
        assert path.parent.name == "secrets"        # git-ignored folder: keys never reach the repo
    env = COMPOSE["services"]["airflow-scheduler"]["environment"]
    assert (REPO / env["CDR_AUDIT_POLICY"].replace("/opt/cdr-audit/", "")).is_file()
    dags = REPO / env["AIRFLOW__CORE__DAGS_FOLDER"].replace("/opt/cdr-audit/", "")
    # Every DAG (the nightly audit and the asset-scheduled retention sweep) and the module they share.
    for dag_file in ("cdr_nightly_audit.py", "cdr_retention_sweep.py", "cdr_common.py"):
        assert (dags / dag_file).is_file(), dag_file
    assert re.search(r"^COPY (?:--\S+ )*dags/ dags/$", (REPO / "Dockerfile").read_text(), re.M)


def test_the_image_carries_every_file_the_engine_finds_beside_it():
    """transforms/bundled.py and the policy name files relative to the checkout; the image must hold them
    there, and install the engine in place (editable) so it looks for them there."""
    from transforms.bundled import BILLING_SUITE, DEFAULT_POLICY, REPO_ROOT
    from transforms.policy import load_policy

    dockerfile = (REPO / "Dockerfile").read_text()
    copied = {src.rstrip("/") for src in re.findall(r"^COPY (?:--\S+ )*(\S+) \S+$", dockerfile, re.M)}
    needed = {p.relative_to(REPO_ROOT).parts[0] for p in (BILLING_SUITE, DEFAULT_POLICY,
                                                          load_policy().roaming.reference_table)}
    assert needed <= copied, needed - copied
    assert re.search(r"^RUN pip install .*-e \.$", dockerfile, re.M)


def test_image_matches_the_tested_versions():
    lock = dict(line.split("==") for line in (REPO / "requirements.lock").read_text().split() if "==" in line)
    base = re.search(r"^FROM apache/airflow:(\S+)-python(\S+)$", (REPO / "Dockerfile").read_text(), re.M)
    assert base and base.group(1) == lock["apache-airflow"] and base.group(2) == "3.11"


def makefile_users() -> str:
    """The demo's accounts, as the Makefile exports them."""
    found = re.search(r"^export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS \??= (\S+)$",
                      (REPO / "Makefile").read_text(), re.M)
    assert found, "Makefile exports no AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"
    return found.group(1)


def test_ui_accounts_are_the_demos_with_least_privilege():
    """README "Airflow accounts and roles": one admin, the engineers' account with role user (trigger, clear,
    logs; no connections or variables), the compliance readers' viewer; the same as `make demo` sets up."""
    for name in AIRFLOW_SERVICES:
        users = COMPOSE["services"][name]["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
        assert users == makefile_users(), name
        assert dict(u.split(":") for u in users.split(",")) == {
            "admin": "admin", "engineer": "user", "compliance": "viewer"}, name
        assert COMPOSE["services"][name]["environment"].get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS",
                                                            "False") == "False", name


def test_ui_passwords_are_a_secret_only_the_api_server_reads_from_a_private_copy():
    assert COMPOSE["secrets"]["airflow_ui_passwords"] == {"file": "./secrets/airflow_ui_passwords.json"}
    readers = [name for name, svc in COMPOSE["services"].items() if "airflow_ui_passwords" in svc.get("secrets", [])]
    assert readers == ["airflow-apiserver"]
    api = COMPOSE["services"]["airflow-apiserver"]
    copy = api["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert copy.startswith("/opt/airflow/") and not copy.startswith("/run/secrets/")
    # Compose writes $$ for a literal $: the shell in the container expands the variable.
    assert api["command"][2].startswith(
        'install -m 600 /run/secrets/airflow_ui_passwords "$$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" &&')
    for name in AIRFLOW_SERVICES:
        if name != "airflow-apiserver":
            assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" not in COMPOSE["services"][name]["environment"]
    # How to make it is documented beside the other secrets; the file itself stays out of git.
    assert "airflow_ui_passwords.json" in (REPO / "secrets" / "README.md").read_text()
    ignored = subprocess.run(["git", "check-ignore", "-q", "secrets/airflow_ui_passwords.json"], cwd=REPO)
    assert ignored.returncode == 0


def test_the_store_writer_queue_has_one_worker_here_and_in_the_celery_test():
    """The tasks that write audit.duckdb go to one queue (dags/cdr_common.py), served by one compose service that
    never scales and by the Celery test's w1; the other workers serve the default queue only."""
    cluster = cluster_script()
    services = COMPOSE["services"]
    serving = {name: svc["command"][svc["command"].index("--queues") + 1].split(",")
               for name, svc in services.items() if svc.get("command", [])[:3] == ["airflow", "celery", "worker"]}
    assert [name for name, queues in serving.items() if cluster.STORE_WRITER_QUEUE in queues] == \
        ["airflow-store-writer"]
    assert services["airflow-store-writer"]["deploy"]["replicas"] == 1
    assert serving["airflow-worker"] == [cluster.DEFAULT_QUEUE]
    # The test's two workers are these two services, queue for queue.
    assert cluster.WORKERS == {"w1": services["airflow-store-writer"]["command"][3:],
                               "w2": services["airflow-worker"]["command"][3:]}


def test_the_celery_test_configures_airflow_as_compose_does():
    """Every Airflow setting the Celery test gives its processes that compose needs too is in compose's
    environment, under the same name (or its _CMD form, where compose reads a secret), with the same value or,
    for addresses, the same driver."""
    cluster = cluster_script()
    env = cluster.airflow_env(REPO, pg_port=5432, redis_port=6379, api_port=8080, lake=REPO / "lake",
                              landing="/landing/{night}")
    compose_env = COMPOSE["x-airflow"]["environment"]
    # Only for a loopback test cluster: ports, one API worker, no schedule, few slots, names without DNS.
    test_only = {"AIRFLOW__CORE__UNIT_TEST_MODE", "AIRFLOW__API__PORT", "AIRFLOW__API__HOST", "AIRFLOW__API__WORKERS",
                 "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "AIRFLOW__CELERY__WORKER_CONCURRENCY",
                 "AIRFLOW__CORE__HOSTNAME_CALLABLE", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"}
    for key in sorted(k for k in env if k.startswith("AIRFLOW__") and k not in test_only):
        name = key if key in compose_env else f"{key}_CMD"
        assert name in compose_env, key
        if key in cluster.CELERY_SETTINGS:
            assert compose_env[key] == cluster.CELERY_SETTINGS[key], key
        elif "://" in env[key]:
            scheme = env[key].split("://")[0]
            assert f"{scheme}://" in compose_env[name], (key, scheme)
    for key in ("CDR_AUDIT_LAKE", "CDR_AUDIT_LANDING"):
        assert key in compose_env
