"""Who may read what, end to end (docs/design.md §2, policy `access`): after a CLI run every folder and file of
each zone has the mode the policy declares; a lake left 0644 by an earlier version is refused (exit 7) until it
is fixed or the run is told to go on (recorded); `verify --permissions` and `permissions --apply`; and, as root,
an unprivileged account really cannot read billing."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import NIGHT, audit_rows, run_cli
from transforms.lake.permissions import MODES, ROOT_MODE, WORK_DIRS
from transforms.policy import load_policy

NOBODY = 65534


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def declared(lake: Path) -> dict[str, tuple[int, int]]:
    """{top-level path relative to the lake: (folder mode, file mode)} from the policy."""
    access = load_policy().access
    out = {z.zone: MODES[z.access] for z in access.zones}
    out.update({d: MODES["owner"] for d in WORK_DIRS})
    return out


def wrong_modes(lake: Path) -> list[str]:
    """Every entry under the lake whose mode is not its scope's declared one (read-only files: no write bit)."""
    scopes = declared(lake)
    # A root the run found already there keeps its mode when it is no looser (the test's was made 0700).
    bad = [] if mode(lake) & ~ROOT_MODE == 0 else [f". {mode(lake):04o}"]
    for parent, dirs, files in os.walk(lake):
        rel_parent = os.path.relpath(parent, lake)
        for name in [*dirs, *files]:
            rel = os.path.normpath(os.path.join(rel_parent, name))
            if os.path.islink(os.path.join(parent, name)):
                continue
            scope = next((s for s in sorted(scopes, key=len, reverse=True) if rel == s or rel.startswith(s + "/")),
                         None)
            if scope is None:
                bad.append(f"{rel}: in no declared scope")
                continue
            dir_mode, file_mode = scopes[scope]
            m = mode(os.path.join(parent, name))
            want = dir_mode if name in dirs else (file_mode if m & stat.S_IWUSR else file_mode & 0o444)
            if m != want:
                bad.append(f"{rel}: {m:04o}, declared {want:04o}")
    return bad


def opened(lake: Path) -> None:
    """What an earlier version left: folders 0755, files 0644 (anchors 0444), readable by every account."""
    for parent, dirs, files in os.walk(lake):
        for d in dirs:
            os.chmod(os.path.join(parent, d), 0o755)
        for f in files:
            p = os.path.join(parent, f)
            os.chmod(p, 0o444 if "/anchors/" in p else 0o644)
    os.chmod(lake, 0o755)


@pytest.fixture()
def open_lake(cli_run, tmp_path) -> Path:
    lake = tmp_path / "lake"
    shutil.copytree(cli_run.lake, lake, symlinks=True)
    opened(lake)
    return lake


def test_every_entry_of_every_zone_has_its_declared_mode(cli_run):
    lake = cli_run.lake
    assert {p.name for p in lake.iterdir()} >= {"billing", "quarantine", "invoices", "consents", "marketing", "analytics", "_work"}
    assert next((lake / "billing").rglob("*.parquet"), None) and next((lake / "reports").rglob("*.html"), None)
    assert wrong_modes(lake) == []
    assert mode(lake / "audit" / ".writer.lock") == 0o640           # a compliance reader takes a shared lock on it
    assert mode(lake / "audit" / "audit.duckdb") == 0o640
    assert {mode(p) for p in (lake / "audit" / "anchors").iterdir()} == {0o440}
    rows = audit_rows(lake, "SELECT zone, access, dir_mode, file_mode, entries_open, allowed_open FROM zone_permissions")
    assert ("billing", "owner", "0700", "0600", 0, False) in rows and ("audit", "group", "2750", "0640", 0, False) in rows
    assert ("lake_root", "traverse", "0711", None, 0, False) in rows


def test_verify_permissions_reads_and_prints_a_line_per_zone(cli_run):
    before = sorted((str(p), p.stat().st_mtime_ns) for p in cli_run.lake.rglob("*"))
    run = run_cli("verify", "--permissions", "--lake", str(cli_run.lake))
    assert run.returncode == 0, run.stderr
    for zone in ("lake_root", "billing", "invoices", "quarantine", "consents", "marketing", "analytics", "aggregates", "roaming",
                 "audit", "reports", "work"):
        assert f"\n  {zone} " in run.stdout, zone
    assert "every zone is as the policy declares" in run.stdout
    assert sorted((str(p), p.stat().st_mtime_ns) for p in cli_run.lake.rglob("*")) == before   # wrote nothing


def test_an_open_lake_is_refused_then_run_as_told_then_fixed(open_lake, night):
    landing, _ = night
    entries = len(audit_rows(open_lake, "SELECT * FROM audit_log"))

    refused = run_cli("run", "--landing", str(landing), "--lake", str(open_lake), "--date", NIGHT)
    assert refused.returncode == 7, refused.stderr[-2000:]
    text = refused.stderr
    assert "billing: " in text and "entries open" in text and "quarantine: " in text and "audit: " in text
    assert "billing/event_date=" in text and ".parquet is 0644" in text         # one example, relative to the lake
    assert "cdr-audit permissions --apply" in text and "--allow-open-zones" in text and "nothing was done" in text
    assert "Traceback" not in text
    assert len(audit_rows(open_lake, "SELECT * FROM audit_log")) == entries    # nothing recorded

    assert run_cli("verify", "--permissions", "--lake", str(open_lake)).returncode == 1

    allowed = run_cli("run", "--landing", str(landing), "--lake", str(open_lake), "--date", NIGHT, "--allow-open-zones")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert "going on as told" in allowed.stderr
    (details,), = audit_rows(open_lake, "SELECT details FROM audit_log WHERE action = 'zones_open_allowed'")
    logged = json.loads(details)
    assert logged["zones"]["billing"]["entries_open"] > 0 and logged["entries_open"] > 0
    assert set(logged["zones"]) >= {"lake_root", "billing", "quarantine", "audit"}
    assert "parquet" not in details                                         # zones and counts, no path
    run_id = audit_rows(open_lake, "SELECT run_id FROM v_last_run")[0][0]
    assert audit_rows(open_lake, "SELECT count(*) FROM zone_permissions WHERE run_id = ? AND allowed_open"
                                 " AND entries_open > 0", [run_id]) == [(len(logged["zones"]),)]

    fixed = run_cli("permissions", "--apply", "--lake", str(open_lake))
    assert fixed.returncode == 0, fixed.stderr
    assert "every zone is as the policy declares" in fixed.stdout
    assert wrong_modes(open_lake) == []
    (details,), = audit_rows(open_lake, "SELECT details FROM audit_log WHERE action = 'permissions_applied'")
    assert json.loads(details)["entries_changed"] > 0 and json.loads(details)["entries_open_after"] == 0
    assert audit_rows(open_lake, "SELECT sum(entries_open), bool_or(allowed_open) FROM v_zone_permissions") == [
        (0, False)]
    assert run_cli("verify", "--permissions", "--lake", str(open_lake)).returncode == 0
    assert run_cli("verify", "--lake", str(open_lake)).returncode == 0       # the chain and anchors are intact

    again = run_cli("run", "--landing", str(landing), "--lake", str(open_lake), "--date", NIGHT)
    assert again.returncode == 0, again.stderr[-2000:]
    assert wrong_modes(open_lake) == []


def test_help_texts_name_the_flags():
    out = subprocess.run([sys.executable, "-m", "transforms.entry.cli", "run", "--help"], capture_output=True,
                         text=True).stdout
    assert "--allow-open-zones" in out
    out = subprocess.run([sys.executable, "-m", "transforms.entry.cli", "verify", "--help"], capture_output=True,
                         text=True).stdout
    assert "--permissions" in out
    out = subprocess.run([sys.executable, "-m", "transforms.entry.cli", "permissions", "--help"], capture_output=True,
                         text=True).stdout
    assert "--apply" in out and "0640" in out


def _interpreter() -> str | None:
    """A Python the other account may run (the test's own may live under root's 0700 home); the code it runs
    needs nothing but `os` and `open`."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        p = Path(candidate)
        if p.exists() and all(os.stat(q).st_mode & 0o001 for q in [*p.resolve().parents, p.resolve()]):
            return str(p)
    return None


def _as_nobody(code: str) -> subprocess.CompletedProcess:
    def drop() -> None:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    return subprocess.run([_interpreter(), "-I", "-c", code], capture_output=True, text=True, preexec_fn=drop,
                          timeout=60, env={"PATH": "/usr/bin:/bin"}, cwd="/")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="root bypasses modes, so only root can drop to another account to prove them")
def test_another_account_cannot_read_or_list_billing(cli_run):
    if _interpreter() is None:
        pytest.skip("no Python interpreter another account may run")
    # The test lake sits under pytest's 0700 folder, which would stop the other account anyway: copy it (modes
    # kept) below a folder that lets anyone through, so only the lake's own modes decide.
    outer = Path(tempfile.mkdtemp(prefix="cdr-perm-", dir="/tmp"))
    try:
        os.chmod(outer, 0o711)
        lake = outer / "lake"
        shutil.copytree(cli_run.lake, lake, symlinks=True)
        os.chmod(lake, ROOT_MODE)               # pytest made the root 0700; the policy's root lets others pass
        part = next((lake / "billing").rglob("*.parquet"))
        assert mode(part) == 0o600 and mode(part.parent) == 0o700
        control = outer / "control.txt"
        control.write_text("readable")
        control.chmod(0o644)

        ok = _as_nobody(f"print(open({str(control)!r}).read())")
        assert ok.returncode == 0 and ok.stdout.strip() == "readable", ok.stderr      # the account works at all

        for code in (f"open({str(part)!r}, 'rb').read(1)",
                     f"import os; os.listdir({str(lake / 'billing')!r})",
                     f"import os; os.listdir({str(lake)!r})",
                     f"open({str(next((lake / 'analytics').rglob('*.parquet')))!r}, 'rb').read(1)",
                     f"open({str(lake / 'audit' / 'audit.duckdb')!r}, 'rb').read(1)"):
            denied = _as_nobody(code)
            assert denied.returncode != 0 and "PermissionError" in denied.stderr, (code, denied.stderr)
        # The root lets it pass (0711): it reaches a zone's folder, whose own mode then refuses it.
        passed = _as_nobody(f"import os; os.stat({str(lake / 'billing')!r}); print('ok')")
        assert passed.returncode == 0 and passed.stdout.strip() == "ok", passed.stderr
    finally:
        shutil.rmtree(outer, ignore_errors=True)
