"""Recovery: what a dead run staged is removed, and the run is marked `abandoned` (docs/design.md §10).

A run killed halfway leaves its work folder (`_work/<run>/`: staged billing columns, numbers and IMSIs
among them), its pending facts (`audit/_pending/<run>/`), the parts a release was being made from
(`analytics/.releasing/<run>/`, links), maybe a zone folder half committed, and its row
in `runs` saying `running`. None of that is read as a zone's data or is in the retention sweep's reach. Every run that
starts, and every retention sweep, first clears the work of runs that hold no live lease: the folders
go, the claims go, the run is marked `abandoned` with the reason, and the audit log says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.audit_store import LogEvent, append_log, now_utc, writing
from transforms.lake import DATA_ZONES, Lake, safe_run_id
from transforms.lake.commit import clear_strays, remove_tree
from transforms.runs.claims import drop_dead_claims
from transforms.runs.lease import leases_lock, live_holders, why_lapsed


@dataclass(frozen=True)
class Recovery:
    """What clearing the dead runs' work removed."""

    runs_abandoned: tuple[str, ...]
    folders_removed: int         # work and pending-fact folders of dead runs
    strays_removed: int          # half-committed zone folders
    claims_removed: int


def recover(lake: Lake, *, actor: str) -> Recovery:
    """Clear the work of every run that holds no live lease; mark its `running` row abandoned."""
    with leases_lock(lake):              # no run can take a lease while its folders are judged
        live = live_holders(lake)
        live_folders = {safe_run_id(h.run_id) for h in live}
        removed: dict[str, int] = {}
        for parent in (lake.root / "_work", lake.zone("audit") / "_pending", lake.release_snapshots):
            for folder in sorted(parent.iterdir()) if parent.is_dir() else ():
                if folder.is_dir() and folder.name not in live_folders:
                    remove_tree(folder)
                    removed[folder.name] = removed.get(folder.name, 0) + 1
        claims = drop_dead_claims(lake, {h.run_id for h in live})
    strays = sum(clear_strays(lake.zone(z)) for z in DATA_ZONES if lake.zone(z).is_dir())
    if not lake.audit_db.exists():
        return Recovery((), sum(removed.values()), strays, claims)
    with writing(lake) as con:
        # Judged again under the store's lock: a run that started meanwhile holds its lease before its row.
        live_runs = {h.run_id for h in live_holders(lake)}
        running = [r for (r,) in con.execute("SELECT run_id FROM runs WHERE status = 'running' ORDER BY run_id")
                   .fetchall() if r not in live_runs]
        now = now_utc()
        events = []
        for run_id in running:
            reason = _why_dead(lake, run_id)
            con.execute("UPDATE runs SET status = 'abandoned', status_reason = ?, finished_at = ? WHERE run_id = ?",
                        [reason, now, run_id])
            events.append(LogEvent(f"run:{run_id}:abandoned", actor, "run_abandoned", run_id,
                                   {"reason": reason,
                                    "staged_folders_removed": removed.get(safe_run_id(run_id), 0)}))
        append_log(con, events, now)
    return Recovery(tuple(running), sum(removed.values()), strays, claims)


def _why_dead(lake: Lake, run_id: str) -> str:
    reason = why_lapsed(lake, run_id)
    return (f"its lease lapsed: {reason}" if reason
            else "it ended without closing the night and holds no lease (killed, or failed before its close)")
