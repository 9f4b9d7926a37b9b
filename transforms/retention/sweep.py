"""The retention sweep: the policy's catalog enforced over every zone as of a day (policy §5, §3.2, §3.3;
docs/design.md §3).

For an as-of date, every row of every personal data set gets its due date (`due`); a due row under an
active legal hold (`holds`) is kept and recorded as held with the hold's id. The sweep rewrites each
affected Parquet file without its due rows (`rewrite`), removes files and folders left empty, then proves
the removed rows' identifiers are gone from the rewritten files' bytes and values (`proof`), and records
one `retention_actions` row per (data set, partition, category, action) plus `retention_proofs`. The
audit log gets counts, never values, and is only appended to.

Kill-safe: every file rewrite is journaled (`journal`), so a re-run finishes what a killed sweep began and
records what it did exactly once. One sweep runs at a time (it holds the lease `retention`), and a real
sweep first clears what dead nightly runs staged (`transforms.runs.recovery`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from transforms.audit_store import LogEvent, append_log, insert, now_utc, writing
from transforms.audit_store.exports import export_parquet
from transforms.audit_store.tables import RETENTION_TABLES, RetentionActionRow, RetentionProof
from transforms.audit_store.views import define_views
from transforms.lake import Lake
from transforms.lake.commit import remove_tree
from transforms.lake.connection import connect
from transforms.policy import Policy
from transforms.privacy.keys import KeyRing
from transforms.privacy.releases import ensure_released
from transforms.retention.catalog import RetentionError, check_catalog
from transforms.retention.holds import list_holds
from transforms.retention.journal import Journal
from transforms.retention.plan import RetentionAction, SweepPlan, drop_key_tables, plan_sweep
from transforms.retention.proof import Proof, prove
from transforms.retention.release_retention import DATASET as RELEASES
from transforms.retention.release_retention import delete_releases, plan_releases
from transforms.retention.rewrite import rewrite
from transforms.runs import held, recover

ACTIONS = ("deleted", "anonymized", "held", "kept")


@dataclass(frozen=True)
class SweepResult:
    run_id: str
    as_of: str
    dry_run: bool
    actions: tuple[RetentionAction, ...]
    proofs: tuple[Proof, ...]
    seconds: float

    def rows(self, action: str) -> int:
        return sum(a.rows for a in self.actions if a.action == action)


SWEEP_LEASE = "retention"


def run_id_for(as_of: date) -> str:
    return f"retention-{as_of.isoformat()}"


def sweep(lake: Lake, policy: Policy, keyring: KeyRing, as_of: date, *, dry_run: bool = False,
          progress: Callable[[str], None] | None = None) -> SweepResult:
    """Enforce the catalog as of `as_of` (the day the sweep acts for). See the module docstring."""
    started = time.monotonic()
    say = progress or (lambda _m: None)
    categories = check_catalog(lake, policy)
    run_id = run_id_for(as_of)
    # One sweep at a time, its work folder known live; a real sweep first clears what dead runs staged.
    with held(lake, SWEEP_LEASE, run_id):
        if not dry_run:
            cleared = recover(lake, actor="retention")
            if cleared.runs_abandoned or cleared.folders_removed or cleared.strays_removed:
                say(f"recovery: {len(cleared.runs_abandoned)} dead run(s) marked abandoned, "
                    f"{cleared.folders_removed + cleared.strays_removed} staged folder(s) removed")
        return _sweep(lake, policy, keyring, as_of, categories, run_id, dry_run, say, started)


def _sweep(lake: Lake, policy: Policy, keyring: KeyRing, as_of: date, categories, run_id: str, dry_run: bool,
           say: Callable[[str], None], started: float) -> SweepResult:
    journal = Journal(lake.zone("audit") / "retention" / as_of.isoformat() / "journal.json", lake.root)
    if not dry_run:
        journal.resume(say)          # a killed sweep of this day is finished first
    work = lake.work_dir(run_id)
    remove_tree(work)
    con = connect(work / "tmp")
    con.execute("SET preserve_insertion_order = false")
    try:
        holds = list_holds(lake, active_only=True)
        # Releases are deleted whole, per day, when the policy gives them a category (docs/design.md §4).
        releases_rule = categories.pop(RELEASES, None)
        plan = plan_sweep(con, lake, policy, keyring, categories, holds, as_of, say)
        drop_key_tables(con)
        releases = plan_releases(lake, releases_rule, holds, as_of) if releases_rule else []
        actions = [a for a in [*plan.actions, *releases] if a.action in ("held", "kept")]
        proofs: list[Proof] = []
        if dry_run:
            actions = [*plan.actions, *releases]
        else:
            _anonymize_first(lake, policy, plan, run_id, say)
            for i, job in enumerate(plan.jobs, 1):
                say(f"[{i}/{len(plan.jobs)}] {job.dataset}/{job.partition}/{Path(job.file).name}:"
                    f" removing {job.rows_removed:,} of {job.rows_before:,} rows")
                journal.note(rewrite(con, lake, policy, job, journal, work / "evidence"))
            delete_releases(lake, releases, journal, say)
            say(f"proving {len(journal.done())} file(s): the removed identifiers gone from values and bytes …")
            proofs = sorted((Proof(**p) for p in journal.prove(lambda done: prove(con, lake, policy, done))),
                            key=lambda pr: (pr.dataset, pr.partition, pr.file_name))
            actions += _removal_actions(journal.done())
            bad = [p for p in proofs if not p.ok]
            say(f"proof: {len(proofs) - len(bad)} of {len(proofs)} file(s) hold none of the removed identifiers")
    finally:
        con.close()
        remove_tree(work)
    result = SweepResult(run_id, as_of.isoformat(), dry_run,
                         tuple(sorted(actions, key=lambda a: (a.dataset, a.partition, a.category, a.action))),
                         tuple(proofs), round(time.monotonic() - started, 3))
    if not dry_run:
        _record(lake, policy, result)
        journal.close()
        if any(not p.ok for p in proofs):
            raise RetentionError("a removed identifier is still in a rewritten file; see retention_proofs")
    return result


def _anonymize_first(lake: Lake, policy: Policy, plan: SweepPlan, run_id: str, say) -> None:
    """Billing rows are anonymized, not only deleted: their day's k-anonymous aggregate must exist first.

    A day whose billing rows are due is long past its release window (policy `aggregate_release`), so the
    nightly run has released it; one that was never released (its window closed while no run ran, or
    every figure was suppressed then) is released now, once, from every analytics part of the day, before
    any analytics row goes. Late rows still waiting to pass k go with their rows: released alone they
    would describe fewer than k subscribers (docs/design.md §4).
    """
    days = sorted({j.partition.split("=", 1)[1] for j in plan.jobs if j.action == "anonymized" and
                   j.dataset == "billing"})
    for day in days:
        made = ensure_released(lake, policy, day, run_id=run_id)
        if made is not None:
            say(f"anonymize: released {day} (release {made.manifest.release}) before its rows go")


def _removal_actions(done: list[dict]) -> list[RetentionAction]:
    """The deleted / anonymized actions of the files the journal holds as done (this sweep's and a
    killed one's alike), per data set, partition, category and action."""
    acc: dict[tuple, dict] = {}
    for e in done:
        a = acc.setdefault((e["dataset"], e["partition"], e["category"], e["action"]),
                           {"rows": 0, "files": 0, "due_on": e["due_on"], "basis": e["legal_basis"],
                            "clause": e["clause"]})
        a["rows"] += e["rows_removed"]
        a["files"] += 1
        a["due_on"] = min(a["due_on"], e["due_on"])
    return [RetentionAction(dataset=d, partition=p, category=c, action=act, rows=v["rows"], due_on=v["due_on"],
                            legal_basis=v["basis"], clause=v["clause"], hold_ids=None, files=v["files"])
            for (d, p, c, act), v in acc.items()]


def _record(lake: Lake, policy: Policy, result: SweepResult) -> None:
    """Replace this sweep's rows in the audit store and chain one log entry of counts."""
    now = now_utc()
    as_of = date.fromisoformat(result.as_of)
    action_rows = [RetentionActionRow(
        run_id=result.run_id, as_of=as_of, dataset=a.dataset, partition=a.partition, category=a.category,
        action=a.action, rows=a.rows, due_on=date.fromisoformat(a.due_on) if a.due_on else None,
        legal_basis=a.legal_basis, clause=a.clause, hold_ids=a.hold_ids, files=a.files, dry_run=False)
        for a in result.actions]
    proof_rows = [RetentionProof(
        run_id=result.run_id, dataset=p.dataset, partition=p.partition, file_name=p.file_name, outcome=p.outcome,
        rows_removed=p.rows_removed, identifiers_checked=p.identifiers_checked,
        identifiers_found=p.identifiers_found, ok=p.ok, checked_at=now) for p in result.proofs]
    summary = {
        "as_of": result.as_of, "policy_version": policy.version, "policy_sha256": policy.sha256,
        "rows": {act: result.rows(act) for act in ACTIONS},
        "files_rewritten": sum(p.outcome == "rewritten" for p in result.proofs),
        "files_removed": sum(p.outcome == "removed" for p in result.proofs),
        "proofs_ok": all(p.ok for p in result.proofs),
    }
    digest = hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()[:16]
    with writing(lake) as con:
        con.execute("BEGIN TRANSACTION")
        for table in RETENTION_TABLES:
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [result.run_id])
        insert(con, action_rows)
        insert(con, proof_rows)
        append_log(con, [LogEvent(f"{result.run_id}:{digest}", "retention", "retention_sweep", result.run_id,
                                  summary)], now)
        define_views(con, lake, policy)
        con.execute("COMMIT")
        export_parquet(con, lake, policy)
