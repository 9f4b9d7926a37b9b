"""transforms/retention/sweep.py: a dry run writes nothing, a re-run changes nothing, a killed sweep is finished."""

from __future__ import annotations

import duckdb
import pytest

from tests.transforms.retention.conftest import run_sweep
from transforms.lake import Lake, records
from transforms.retention import rewrite


def test_dry_run_writes_nothing(golden_lake, policy):
    lake = golden_lake
    before = {p: p.read_bytes() for p in lake.root.rglob("*.parquet")}
    result = run_sweep(lake, policy, "2030-01-01", dry_run=True)
    assert result.rows("anonymized") == 7 and result.rows("deleted") > 0
    assert {p: p.read_bytes() for p in lake.root.rglob("*.parquet")} == before
    assert not (lake.zone("audit") / "retention").exists() and not lake.audit_db.exists()


def test_rerun_changes_nothing_and_records_once(golden_lake, policy):
    lake = golden_lake
    first = run_sweep(lake, policy, "2027-04-01")
    state = {p: p.read_bytes() for p in lake.root.rglob("*.parquet") if "audit" not in p.parts}
    second = run_sweep(lake, policy, "2027-04-01")
    assert {p: p.read_bytes() for p in lake.root.rglob("*.parquet") if "audit" not in p.parts} == state
    assert first.actions == second.actions and first.proofs == second.proofs
    con = duckdb.connect(str(lake.audit_db), read_only=True)
    assert con.execute("SELECT count(*) FROM audit_log WHERE action = 'retention_sweep'").fetchone()[0] == 1
    assert con.execute("SELECT sum(rows) FROM retention_actions WHERE action = 'anonymized'").fetchone()[0] == \
        first.rows("anonymized")
    con.close()


@pytest.mark.parametrize("day, dies_at", [("2029-04-01", 2), ("2027-04-01", 2), ("2027-04-01", 3)])
def test_killed_sweep_is_finished_by_the_rerun(golden_lake, policy, tmp_path, monkeypatch, day, dies_at):
    """The process dies at the `dies_at`-th commit of the sweep (a journal entry or a rewritten file), after
    the journal's intent and before the rename; the re-run finishes the day exactly as an unbroken sweep."""
    import shutil

    lake = golden_lake
    twin = Lake.at(tmp_path / "twin")
    shutil.copytree(lake.root, twin.root)
    clean = run_sweep(twin, policy, day)
    real_commit, calls = rewrite.commit_file, []

    def dies(tmp, final):
        calls.append(final)
        if len(calls) == dies_at:
            raise KeyboardInterrupt
        real_commit(tmp, final)
    for module in (rewrite, records):       # the rewritten files and the journal's own writes
        monkeypatch.setattr(module, "commit_file", dies)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(lake, policy, day)
    for module in (rewrite, records):
        monkeypatch.setattr(module, "commit_file", real_commit)
    resumed = run_sweep(lake, policy, day)
    files = lambda lk: sorted(str(p.relative_to(lk.root)) for p in lk.root.rglob("*.parquet")   # noqa: E731
                              if "audit" not in p.parts)
    assert files(lake) == files(twin)
    assert resumed.rows("anonymized") == clean.rows("anonymized") and resumed.rows("deleted") == clean.rows("deleted")
    assert all(p.ok for p in resumed.proofs)
