"""Servers the DAG tests start (the Airflow api-server, `airflow standalone`): each in its own process group."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a server started with `start_new_session=True` and everything it started (scheduler, api-server
    workers ...): SIGTERM to its process group, SIGKILL after `timeout` seconds."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
