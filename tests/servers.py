"""Servers the DAG tests start (the Airflow api-server, `airflow standalone`, the Celery cluster of
scripts/celery_cluster.py): each in its own process group."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from types import ModuleType

from tests.conftest import REPO


def stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a server started with `start_new_session=True` and everything it started (scheduler, api-server
    workers ...): SIGTERM to its process group, SIGKILL after `timeout` seconds."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def cluster_script() -> ModuleType:
    """scripts/celery_cluster.py as a module: Redis, PostgreSQL, Airflow and two Celery workers as processes."""
    name = "celery_cluster"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "celery_cluster.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module      # before it runs: its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]
