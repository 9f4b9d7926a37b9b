"""What the cdr-audit DAGs share: the audit store asset, retry and failure-callback defaults, the HMAC key
connection, the masking of every key a task loads, and the shape of a source format's name (no DAG here)."""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from airflow.sdk import Asset
from airflow.sdk.log import mask_secret

from transforms.privacy.keys import on_secret

log = logging.getLogger("cdr_audit")

# Every HMAC key (current and retired, from the connection, the environment or a key file) and the anchor
# key a task loads is masked in its logs, rendered fields and error messages: Airflow masks a connection's
# password as given and its extra only as one whole string, so the keys themselves are registered as they
# load (docs/design.md §4). airflow.sdk.log.mask_secret masks in the task process and tells the supervisor.
on_secret(mask_secret)

# Updated by the nightly audit's close_night; the retention sweep is scheduled on it.
AUDIT_STORE = Asset("cdr_audit_store")

# The Celery queue of the tasks that write the audit store (plan_night, close_night, the retention sweep): one
# worker serves it (docker-compose.yml's airflow-store-writer, scripts/celery_cluster.py's w1), so the store's
# writer is one host; the mapped per-file tasks go to the default queue on every worker and leave fragments.
# The store enforces the same on its own (its writer lease, docs/design.md §6). LocalExecutor ignores queues.
STORE_WRITER_QUEUE = "cdr_audit_store_writer"

# A source format's name (formats/*.yaml, or the user's own folder; `cdr-audit formats list`).
FORMAT_NAME = r"^[a-z][a-z0-9_]*$"

DATE_OR_EMPTY = r"^(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))?$"


def record_failure(context) -> None:
    """on_failure_callback: chain a `task_failed` event onto the audit log (transforms.entry.tasks.record_task_failure).

    Only plain facts leave Airflow: ids, try, map index and the exception's class name — never its message.
    A callback that cannot write logs why and lets Airflow carry on (the task has failed either way).
    """
    ti, error = context["ti"], context.get("exception")
    facts = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "try_number": ti.try_number,
             "map_index": ti.map_index, "exception_type": type(error).__name__ if error is not None else None}
    try:
        from transforms.entry import tasks

        tasks.record_task_failure(dict(context.get("params") or {}), facts)
    except Exception as err:   # noqa: BLE001 — a callback must not mask the task's own failure
        log.warning("could not record %s.%s failure in the audit store: %s", ti.dag_id, ti.task_id,
                    type(err).__name__)


def default_args(owner: str, retry_delay: timedelta, max_retry_delay: timedelta) -> dict:
    """Owner, retries with exponential backoff (CDR_AUDIT_TASK_RETRIES=0 in tests and the demo, so a failure
    shows at once) and the audit-store failure callback, for every task of a DAG."""
    return {"owner": owner, "retries": int(os.environ.get("CDR_AUDIT_TASK_RETRIES", "2")),
            "retry_delay": retry_delay, "retry_exponential_backoff": 2.0, "max_retry_delay": max_retry_delay,
            "on_failure_callback": record_failure}


def hmac_connection() -> dict | None:
    """The `cdr_audit_hmac` connection's fields, or None (then the environment holds the key)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get("cdr_audit_hmac")
    except AirflowNotFoundException:
        return None
    return {"login": conn.login, "password": conn.password, "extra": conn.extra}
