"""The nightly DAG on a real CeleryExecutor cluster: Redis, PostgreSQL, Airflow's api-server, scheduler and
dag-processor, and two Celery workers that are two hosts (their own UTS hostnames), all started by
scripts/celery_cluster.py as docker-compose.yml would run them (`make celery-demo` runs the same).

The mapped audit_file tasks must have run on both workers (task_instance.hostname in the metadata database),
the store's writer tasks on the one worker of their queue, and the lake — every zone row by row, the file
names of every zone, the audit tables' facts — must equal what `cdr-audit run` makes of the same night in one
process. Redis and PostgreSQL are installed from Debian's packages when missing (about 20 s).
"""

from __future__ import annotations

import shutil
import time

import duckdb
import pytest

from tests.conftest import NIGHT
from tests.reliability.harness import ZONES, compare_lakes, zone_files
from tests.servers import cluster_script

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

ROWS, SEED = 2000, 7     # 14 landing files, 13 of them audited: enough for two workers of 2 slots each


def zone_names(lake) -> dict[str, list[str]]:
    """Every zone's Parquet files by name (parts are named by the sha256 of what they hold)."""
    return {zone: [str(type(lake)(p).relative_to(lake)) for p in zone_files(lake, zone)] for zone in ZONES}


def audit_counts(lake) -> dict[str, int]:
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    try:
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables"
                                            " WHERE table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux): a worker per hostname")
def test_two_celery_workers_audit_the_night_as_one_process_does(tmp_path):
    cc = cluster_script()
    started = time.monotonic()
    landing = cc.generate(tmp_path / "landing", NIGHT, ROWS, SEED)
    lake = tmp_path / "lake"
    with cc.cluster(tmp_path / "cluster", lake=lake, landing=str(tmp_path / "landing" / "{night}")) as c:
        result = cc.run_night(c, NIGHT)
        procs = dict(c.procs)
        logs = c.logs
    assert all(p.poll() is not None for p in procs.values()), "a process of the cluster is still running"
    on_celery = time.monotonic() - started
    lines = cc.report(result)
    tail = "\n".join(lines) + "\n" + (logs / "scheduler.log").read_text(errors="replace")[-2000:]
    assert result.state == "success", tail
    assert all(t.state == "success" for t in result.tasks), tail

    # Both workers audited files; the tasks that write the store ran on the one worker of its queue.
    per_host = result.hosts("audit_file")
    assert set(per_host) == set(cc.WORKERS) and min(per_host.values()) >= 1, tail
    for task in ("plan_night", "close_night"):
        (writer,) = [t for t in result.tasks if t.task_id == task]
        assert (writer.hostname, writer.queue) == ("w1", cc.STORE_WRITER_QUEUE), tail
    assert all(t.queue == cc.DEFAULT_QUEUE for t in result.tasks if t.task_id == "audit_file")

    # The same night in one process, no Airflow: the same lake.
    reference = tmp_path / "lake_local"
    cc.local_run(landing, reference, NIGHT)
    assert compare_lakes(lake, reference) == []
    assert zone_names(lake) == zone_names(reference)
    assert audit_counts(lake) == audit_counts(reference)
    con = duckdb.connect(str(lake / "audit" / "audit.duckdb"), read_only=True)
    (trigger, status, files, processed), = con.execute(
        "SELECT trigger, status, files_seen, files_processed FROM runs").fetchall()
    con.close()
    assert (trigger, status) == ("airflow", "completed")
    assert sum(per_host.values()) == processed >= 10      # one mapped task per file audited
    print("\n".join(lines))
    print(f"celery test: {on_celery:.0f} s to the run's end (cluster up and down included),"
          f" {time.monotonic() - started:.0f} s with the reference run; {files} landing files")
