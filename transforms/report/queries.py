"""The report's figures: constant SQL over the compliance views (transforms/audit_store/views/), and the
small helpers the text summary and the HTML page share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from transforms.audit_store import now_utc, verify_chain
from transforms.policy import Policy

# Constant SQL over the views; the only parameter is the night, bound.
SQL = {
    "run": "SELECT night, run_id, status, trigger, started_at, finished_at, files_seen, files_processed,"
           " files_skipped_known, files_rejected, files_failed, rows_read, rows_loaded, rows_quarantined,"
           " policy_id, policy_version, left(policy_sha256, 12) FROM v_last_run",
    "night": "SELECT files, files_loaded, files_rejected, files_failed, rows_read, rows_billing, rows_invoices,"
             " rows_quarantined, rows_analytics, aggregate_groups_released, aggregate_groups_suppressed"
             " FROM v_nightly_volumes WHERE night = ?",
    "volumes": "SELECT night, rows_billing, rows_invoices, rows_quarantined, rows_analytics,"
               " aggregate_groups_released FROM v_nightly_volumes ORDER BY night",
    "files": "SELECT file_name, status, coalesce(profile, '-'), rows_read, rows_loaded, rows_rejected,"
             " coalesce(reason, '') FROM v_night_files WHERE night = ? ORDER BY file_name",
    "off_list": "SELECT column_name, rule, outcome, clause, count(DISTINCT file_name) AS files"
                " FROM v_policy_violations WHERE night = ? AND kind = 'off_list_column'"
                " GROUP BY ALL ORDER BY files DESC, column_name LIMIT 12",
    "violations": "SELECT kind, coalesce(column_name, ''), coalesce(clause, ''), rule, count(DISTINCT file_name),"
                  " CAST(sum(rows_affected) AS BIGINT) AS n FROM v_policy_violations WHERE night = ?"
                  " AND kind <> 'off_list_column' GROUP BY ALL ORDER BY n DESC, 5 DESC, 1, 2, 4 LIMIT 12",
    "violations_by_night": "SELECT n.night,"
                           " count(v.kind) FILTER (WHERE v.kind = 'off_list_column'),"
                           " count(v.kind) FILTER (WHERE v.kind = 'failed_rule'),"
                           " count(v.kind) FILTER (WHERE v.kind = 'quarantine_reason')"
                           " FROM v_nightly_volumes n LEFT JOIN v_policy_violations v USING (night)"
                           " GROUP BY n.night ORDER BY n.night",
    "analytics": "SELECT column_name, coalesce(output_column, ''), action, clause,"
                 " coalesce(string_agg(DISTINCT key_id, ', '), '') FROM v_analytics_columns GROUP BY ALL"
                 " ORDER BY action, column_name",
    "sweep": "SELECT as_of, action, CAST(sum(rows) AS BIGINT) FROM v_retention_actions"
             " WHERE as_of = (SELECT max(as_of) FROM v_retention_actions WHERE NOT dry_run) AND NOT dry_run"
             " GROUP BY ALL ORDER BY action",
    "holds": "SELECT hold_id, reason, placed_by, CAST(placed_at AS DATE), coalesce(dataset, 'every data set'),"
             " date_from, date_to, coalesce(subject_kind, ''), days_active FROM v_legal_holds_active",
    "roaming": "SELECT as_of_month, state, subscribers FROM v_roaming_states ORDER BY as_of_month, state",
    "chain": "SELECT entries, last_seq, left(last_hash, 16), links_ok, first_bad_seq FROM v_audit_chain",
}
KIND_WORDS = {"off_list_column": "column not on the allowed list", "failed_rule": "rule failed",
              "quarantine_reason": "rows quarantined"}


@dataclass(frozen=True)
class DueRows:
    """One data set's rows the latest sweep kept, by the policy's reporting horizons (days)."""

    as_of: date
    dataset: str
    kept: int
    after_sweep: tuple[int, ...]      # due within each horizon of the sweep's as-of date
    from_today: tuple[int, ...]       # due within each horizon of today
    next_due_on: date | None


def due_rows(con, horizons: tuple[int, ...]) -> list[DueRows]:
    # The view has one column per horizon, named by its days (transforms/audit_store/views/v_retention_due.sql).
    sums = ", ".join(f"CAST(sum(rows_due_{int(h)}d_{since}) AS BIGINT)" for since in ("after_sweep", "from_today")
                     for h in horizons)
    n = len(horizons)
    return [DueRows(as_of=r[0], dataset=r[1], kept=r[2], after_sweep=tuple(r[3:3 + n]),
                    from_today=tuple(r[3 + n:3 + 2 * n]), next_due_on=r[-1])
            for r in con.execute(f"SELECT as_of, dataset, CAST(sum(rows_kept) AS BIGINT), {sums}, min(next_due_on)"
                                 " FROM v_retention_due GROUP BY ALL ORDER BY dataset").fetchall()]


def gather(con, policy: Policy) -> dict:
    """Every figure the report shows, from the compliance views."""
    run = con.execute(SQL["run"]).fetchone()
    horizons = policy.reporting.retention_due_within_days
    d = {"run": run, "generated_at": now_utc(), "horizons": horizons}
    if run is None:
        return d
    night = run[0]
    for key in ("night", "files", "off_list", "violations"):
        d[key] = con.execute(SQL[key], [night]).fetchall()
    d["night"] = d["night"][0] if d["night"] else None
    for key in ("volumes", "violations_by_night", "analytics", "sweep", "holds", "roaming"):
        d[key] = con.execute(SQL[key]).fetchall()
    d["due"] = due_rows(con, horizons)
    d["chain"] = con.execute(SQL["chain"]).fetchone()
    d["verify"] = verify_chain(con)
    return d


def in_words(horizons: tuple[int, ...]) -> str:
    """30, 90 → '30 and 90'; 7, 30, 365 → '7, 30 and 365'."""
    *first, last = (str(h) for h in horizons)
    return f"{', '.join(first)} and {last}" if first else last


def number(value) -> str:
    """A count as shown: thousands separated, a dash for none."""
    return "—" if value is None else f"{value:,}"


def roaming_latest(rows: list) -> tuple[str | None, dict[str, int]]:
    """The newest assessed month of `v_roaming_states` rows and its subscribers per state."""
    if not rows:
        return None, {}
    month = max(r[0] for r in rows)
    return month, {state: n for m, state, n in rows if m == month}


def chain_ok(d: dict) -> bool:
    """The chain recomputed for this report and the view's link check both hold."""
    return bool(d["verify"].ok and d["chain"][3])
