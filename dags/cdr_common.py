"""What the cdr-audit DAGs share: the audit store asset and the HMAC key connection (no DAG here)."""

from __future__ import annotations

from airflow.sdk import Asset

# Updated by the nightly audit's close_night; the retention sweep is scheduled on it.
AUDIT_STORE = Asset("cdr_audit_store")


def hmac_connection() -> dict | None:
    """The `cdr_audit_hmac` connection's fields, or None (then the environment holds the key)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get("cdr_audit_hmac")
    except AirflowNotFoundException:
        return None
    return {"login": conn.login, "password": conn.password, "extra": conn.extra}
