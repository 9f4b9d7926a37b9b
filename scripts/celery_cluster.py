"""A real CeleryExecutor cluster on this machine, as docker-compose.yml runs one (`make celery-demo`, and
tests/dags/test_celery_workers.py).

Docker does not run here, so the compose file's services run as processes: Redis (broker) and PostgreSQL
(Airflow's metadata and Celery's results) from Debian's packages — installed with apt-get when missing —
on loopback ports in a scratch folder, then Airflow's api-server, scheduler and dag-processor, and two
Celery workers, each in a UTS namespace of its own (`unshare --uts`), so each is a host with its own name:

* `w1` serves the store writer's queue (`dags/cdr_common.py` STORE_WRITER_QUEUE: plan_night, close_night)
  and the default queue, like compose's `airflow-store-writer`;
* `w2` serves the default queue only, like compose's `airflow-worker`.

It generates a night, triggers `cdr_nightly_audit` on it with the lake on one path both workers share,
waits for the run, and reads from the metadata database which host ran each task (task_instance.hostname).
`--compare` also audits the same night with `cdr-audit run` (no Airflow) into a second lake and compares
every zone row by row and the audit tables (tests/reliability/harness.py). Everything it started is
stopped at the end, process group by process group; the scratch folder is removed unless `--keep`.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
DAG_ID = "cdr_nightly_audit"
sys.path.insert(0, str(REPO / "dags"))
from cdr_common import STORE_WRITER_QUEUE  # noqa: E402  (the one place the queue is named)

DEFAULT_QUEUE = "default"   # Airflow's [operators] default_queue
# The two workers: celery hostname prefix (also the UTS hostname, so task_instance.hostname) and the arguments
# of `airflow celery worker` that docker-compose.yml gives the same role (tests/test_compose.py holds them equal).
WORKERS = {
    "w1": ["--queues", f"{STORE_WRITER_QUEUE},{DEFAULT_QUEUE}"],     # compose: airflow-store-writer (one replica)
    "w2": ["--queues", DEFAULT_QUEUE],                                # compose: airflow-worker
}
# What every Airflow process of the cluster is given, apart from addresses and secrets (docker-compose.yml's
# x-airflow environment sets the same names: tests/test_compose.py).
CELERY_SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
}


def say(message: str) -> None:
    print(f"celery-cluster: {message}", flush=True)


# ------------------------------------------------------------------------------------------- the servers

def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[4]))
    return Path(found[-1]).parent if found else None


def ensure_servers() -> tuple[Path, Path]:
    """redis-server and PostgreSQL's bin folder, installed from Debian's packages when missing."""
    if shutil.which("redis-server") is None or _postgres_bin() is None:
        say("installing redis-server and postgresql (apt-get)")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "redis-server", "postgresql"], check=True, env=env)
    redis, pg = shutil.which("redis-server"), _postgres_bin()
    if redis is None or pg is None:
        raise RuntimeError("redis-server or PostgreSQL is still missing after apt-get install")
    return Path(redis), pg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Stop a process started with `start_new_session=True` and all it started: `sig` to its process group,
    SIGKILL after `timeout` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass
class Cluster:
    """The running cluster: where it lives and how to reach it."""

    scratch: Path
    env: dict
    pg_port: int
    api_port: int
    logs: Path
    procs: dict = field(default_factory=dict)

    @property
    def db_url(self) -> str:
        return f"postgresql://airflow@127.0.0.1:{self.pg_port}/airflow"

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg2

        con = psycopg2.connect(self.db_url)
        try:
            with con.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            con.close()

    def airflow(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=self.scratch)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed: {done.stderr[-3000:]}")
        return done.stdout

    def alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                log = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited ({proc.returncode}): {log}")


def _start(stack: ExitStack, cluster: Cluster, name: str, argv: list[str], *, env: dict | None = None,
           stop_signal: int = signal.SIGTERM) -> subprocess.Popen:
    log = (cluster.logs / f"{name}.log").open("w")
    stack.callback(log.close)
    proc = subprocess.Popen(argv, env=env or cluster.env, stdout=log, stderr=subprocess.STDOUT, cwd=cluster.scratch,
                            start_new_session=True)
    stack.callback(stop_group, proc, stop_signal)
    cluster.procs[name] = proc
    return proc


def _wait(check, timeout: float, what: str, cluster: Cluster | None = None, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster is not None:
            cluster.alive()
        try:
            if value := check():
                return value
        except Exception:   # noqa: BLE001 — not answering yet
            pass
        time.sleep(every)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` account the package made."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _postgres(stack: ExitStack, cluster: Cluster, pg_bin: Path) -> None:
    # Its own folder under the system temp dir: the postgres account must reach it (a test's tmp_path is
    # root's alone).
    folder = Path(tempfile.mkdtemp(prefix="cdr-audit-pg-"))
    stack.callback(shutil.rmtree, folder, True)
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
    data = folder / "data"
    subprocess.run(_as_postgres([str(pg_bin / "initdb"), "-D", str(data), "-U", "airflow", "--auth=trust",
                                 "--no-sync", "-E", "UTF8"]), check=True, capture_output=True, cwd=folder)
    # A scratch cluster on loopback: no durability needed, so no fsync.
    _start(stack, cluster, "postgres", _as_postgres([
        str(pg_bin / "postgres"), "-D", str(data), "-p", str(cluster.pg_port), "-k", str(folder),
        "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
        "-c", "full_page_writes=off", "-c", "max_connections=200"]), stop_signal=signal.SIGINT)
    _wait(lambda: subprocess.run([str(pg_bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(cluster.pg_port)],
                                 capture_output=True).returncode == 0, 60, "PostgreSQL", cluster)
    subprocess.run(_as_postgres([str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(cluster.pg_port),
                                 "-U", "airflow", "airflow"]), check=True, capture_output=True, cwd=folder)


def _redis(stack: ExitStack, cluster: Cluster, redis_server: Path, port: int) -> None:
    _start(stack, cluster, "redis", [str(redis_server), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--dir", str(cluster.scratch)])

    def pong() -> bool:
        import redis

        return redis.Redis(host="127.0.0.1", port=port).ping()

    _wait(pong, 30, "Redis", cluster)


def airflow_env(home: Path, *, pg_port: int, redis_port: int, api_port: int, lake: Path, landing: str) -> dict:
    """The environment of every Airflow process of the cluster (docker-compose.yml's x-airflow, on loopback)."""
    db = f"airflow@127.0.0.1:{pg_port}/airflow"
    env = {**os.environ, **CELERY_SETTINGS,
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
           "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{db}",
           "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
           "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{db}",
           # Few slots per worker, so a night's mapped files spread over both.
           "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
           "AIRFLOW__API__PORT": str(api_port), "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__WORKERS": "1",
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
           "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
           # The host a task ran on, as its worker's (UTS) hostname says: no DNS lookup on a closed network.
           "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socket.gethostname",
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",     # only the run triggered here
           "CDR_AUDIT_LAKE": str(lake), "CDR_AUDIT_LANDING": landing, "CDR_AUDIT_DEMO_MODE": "1",
           "CDR_AUDIT_TASK_RETRIES": "0", "PYTHONPATH": str(REPO)}
    for key in ("AIRFLOW__CORE__SQL_ALCHEMY_CONN", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
                "AIRFLOW__CELERY__RESULT_BACKEND_CMD", "AIRFLOW__API_AUTH__JWT_SECRET_CMD"):
        env.pop(key, None)
    return env


@contextmanager
def cluster(scratch: Path, *, lake: Path, landing: str) -> "Cluster":
    """Redis, PostgreSQL, Airflow's api-server, scheduler, dag-processor and the two workers, up; all stopped on
    exit (the workers and Airflow first, the servers last)."""
    redis_server, pg_bin = ensure_servers()
    if shutil.which("unshare") is None:
        raise RuntimeError("unshare (util-linux) is needed: each worker runs as a host of its own name")
    home, logs = scratch / "airflow_home", scratch / "logs"
    home.mkdir(parents=True), logs.mkdir()
    redis_port = free_port()
    c = Cluster(scratch=scratch, env={}, pg_port=free_port(), api_port=free_port(), logs=logs)
    c.env = airflow_env(home, pg_port=c.pg_port, redis_port=redis_port, api_port=c.api_port, lake=lake,
                        landing=landing)
    with ExitStack() as stack:   # exits in reverse: what started last stops first
        started = time.monotonic()
        _postgres(stack, c, pg_bin)
        _redis(stack, c, redis_server, redis_port)
        say(f"PostgreSQL on 127.0.0.1:{c.pg_port}, Redis on 127.0.0.1:{redis_port}"
            f" ({time.monotonic() - started:.0f} s)")
        c.airflow("db", "migrate", timeout=600)
        say(f"Airflow metadata database migrated ({time.monotonic() - started:.0f} s)")
        airflow = str(BIN / "airflow")
        _start(stack, c, "api-server", [airflow, "api-server"])
        _start(stack, c, "scheduler", [airflow, "scheduler"])
        _start(stack, c, "dag-processor", [airflow, "dag-processor"])
        for name, args in WORKERS.items():
            _start(stack, c, f"worker-{name}", ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', name,
                                                airflow, "celery", "worker", "--celery-hostname", f"{name}@%h",
                                                "--skip-serve-logs", *args])
        _wait(lambda: _http_ok(f"http://127.0.0.1:{c.api_port}/api/v2/version"), 180, "the api-server", c)
        say(f"api-server on 127.0.0.1:{c.api_port}, scheduler, dag-processor, workers {', '.join(WORKERS)} up"
            f" ({time.monotonic() - started:.0f} s)")
        yield c


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.status == 200


# --------------------------------------------------------------------------------------------- the night

@dataclass(frozen=True)
class TaskRun:
    task_id: str
    map_index: int
    hostname: str
    queue: str
    state: str
    seconds: float


@dataclass(frozen=True)
class NightOnCelery:
    run_id: str
    state: str
    seconds: float              # trigger to end of run
    tasks: tuple[TaskRun, ...]

    def hosts(self, task_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.tasks:
            if t.task_id == task_id:
                counts[t.hostname] = counts.get(t.hostname, 0) + 1
        return counts


def run_night(c: Cluster, night: str, timeout: float = 600) -> NightOnCelery:
    """Trigger the nightly DAG once the dag-processor has it, wait for the run to end, and read its task
    instances back from the metadata database."""
    _wait(lambda: c.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", (DAG_ID,)), 180,
          "the DAG to be parsed", c, every=1)
    c.airflow("dags", "unpause", DAG_ID)
    run_id = f"celery__{night}__{int(time.time())}"
    started = time.monotonic()
    c.airflow("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps({"night": night}))
    say(f"triggered {DAG_ID} run {run_id}")

    def ended():
        rows = c.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (DAG_ID, run_id))
        return rows and rows[0][0] in ("success", "failed") and rows[0][0]

    state = _wait(ended, timeout, "the DAG run", c, every=1)
    seconds = time.monotonic() - started
    rows = c.query("SELECT task_id, map_index, coalesce(hostname, ''), queue, state,"
                   " extract(epoch FROM end_date - start_date) FROM task_instance"
                   " WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index", (DAG_ID, run_id))
    tasks = tuple(TaskRun(t, m, h, q, s, float(sec or 0)) for t, m, h, q, s, sec in rows)
    return NightOnCelery(run_id=run_id, state=state, seconds=seconds, tasks=tasks)


def generate(landing_root: Path, night: str, rows: int, seed: int) -> Path:
    from datetime import date

    from sample_data.generate import generate_night

    landing = landing_root / night
    generate_night(landing, rows=rows, seed=seed, night=date.fromisoformat(night))
    return landing


def local_run(landing: Path, lake: Path, night: str) -> None:
    """The same night by `cdr-audit run` (the DAG's steps in one process, no Airflow): the reference."""
    env = {**os.environ, "CDR_AUDIT_DEMO_MODE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "transforms.entry.cli", "run", "--landing", str(landing),
                           "--lake", str(lake), "--date", night, "--quiet"], env=env, capture_output=True, text=True,
                          cwd=REPO, timeout=900)
    if done.returncode not in (0, 3):
        raise RuntimeError(f"cdr-audit run failed ({done.returncode}): {done.stderr[-3000:]}")


def report(result: NightOnCelery) -> list[str]:
    lines = [f"run {result.run_id}: {result.state} in {result.seconds:.0f} s"]
    for t in result.tasks:
        index = "" if t.map_index < 0 else f"[{t.map_index}]"
        lines.append(f"  {t.task_id + index:<22} {t.state:<8} on {t.hostname:<4} queue {t.queue:<24}"
                     f" {t.seconds:6.1f} s")
    lines.append("audit_file tasks per host: " + ", ".join(f"{h} {n}" for h, n in
                                                           sorted(result.hosts("audit_file").items())))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--night", default="2026-11-22")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scratch", type=Path, default=None, help="folder for everything (default: a new temp one)")
    parser.add_argument("--compare", action="store_true", help="also run the night with `cdr-audit run` and compare")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (lakes, logs)")
    args = parser.parse_args(argv)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="cdr-audit-celery-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        landing = generate(scratch / "landing", args.night, args.rows, args.seed)
        lake = scratch / "lake"
        with cluster(scratch, lake=lake, landing=str(scratch / "landing" / "{night}")) as c:
            result = run_night(c, args.night)
        print("\n".join(report(result)))
        problems = []
        if args.compare:
            from tests.reliability.harness import compare_lakes

            local_run(landing, scratch / "lake_local", args.night)
            problems = compare_lakes(lake, scratch / "lake_local")
            print("zones and audit tables equal to `cdr-audit run`'s" if not problems else
                  "DIFFERENT from `cdr-audit run`:\n  " + "\n  ".join(problems))
        return 0 if result.state == "success" and len(result.hosts("audit_file")) >= 2 and not problems else 1
    finally:
        if args.keep:
            say(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
