"""The report's figures: constant SQL over the compliance views (transforms/audit_store/views/), and the
small helpers the text summary and the HTML page share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from transforms.audit_store import AnchorCheck, now_utc, verify_chain
from transforms.audit_store.deliveries import missing_sources, nothing_landed_words
from transforms.policy import Policy
from transforms.roaming.periods import shift_month
from transforms.roaming.schema import STATES as ROAMING_STATES

# The night's figures the report shows (columns of v_nightly_volumes).
NIGHT_COLUMNS = ("files", "files_loaded", "files_quarantined", "files_rejected", "files_failed", "rows_read",
                 "rows_billing", "rows_invoices", "rows_quarantined", "rows_refused", "rows_failed", "rows_analytics",
                 "lateness_window_days", "rows_before_lateness_window", "rows_after_night",
                 "aggregate_groups_released", "aggregate_groups_suppressed", "rows_consents")
# Constant SQL over the views; the only parameter is the night, bound.
SQL = {
    "run": "SELECT night, run_id, status, trigger, started_at, finished_at, files_seen, nothing_landed,"
           " files_processed, files_skipped_known, files_rejected, files_failed, rows_read, rows_loaded,"
           " rows_quarantined, rows_refused, rows_failed, rows_before_lateness_window, rows_after_night, policy_id,"
           " policy_version, left(policy_sha256, 12) AS policy_sha256 FROM v_last_run",
    "night": f"SELECT {', '.join(NIGHT_COLUMNS)} FROM v_nightly_volumes WHERE night = ?",
    "volumes": "SELECT night, rows_billing, rows_invoices, rows_quarantined, rows_analytics,"
               " aggregate_groups_released FROM v_nightly_volumes ORDER BY night",
    "files": "SELECT file_name, status, coalesce(profile, '-'), rows_read, rows_loaded, rows_rejected,"
             " coalesce(reason, ''), main_reason, main_reason_rows, rows_before_lateness_window, rows_after_night"
             " FROM v_night_files WHERE night = ? ORDER BY file_name",
    "off_list": "SELECT column_name, rule, outcome, clause, count(DISTINCT file_name) AS files"
                " FROM v_policy_violations WHERE night = ? AND kind = 'off_list_column'"
                " GROUP BY ALL ORDER BY files DESC, column_name LIMIT 12",
    "violations": "SELECT kind, coalesce(column_name, ''), coalesce(clause, ''), rule, count(DISTINCT file_name),"
                  " CAST(sum(rows_affected) AS BIGINT) AS n FROM v_policy_violations WHERE night = ?"
                  " AND kind <> 'off_list_column' GROUP BY ALL ORDER BY n DESC, 5 DESC, 1, 2, 4 LIMIT 12",
    "violations_by_night": "SELECT n.night,"
                           " count(v.kind) FILTER (WHERE v.kind = 'off_list_column'),"
                           " count(v.kind) FILTER (WHERE v.kind = 'failed_rule'),"
                           " count(v.kind) FILTER (WHERE v.kind IN ('quarantine_reason', 'refused_file'))"
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
    "roaming": "SELECT as_of_month, run_id, subscribers, flagged, not_flagged, insufficient_history"
               " FROM v_roaming_windows ORDER BY as_of_month",
    # Per release table, the night's latest release over every event date it touched; coarse (fewer cells) first.
    "aggregates": "SELECT release_table, min(k), CAST(sum(cells) AS BIGINT), CAST(sum(cells_released) AS BIGINT),"
                  " CAST(sum(cells_suppressed_primary) AS BIGINT), CAST(sum(cells_suppressed_secondary) AS BIGINT),"
                  " CAST(sum(other_cells_released) AS BIGINT), CAST(sum(events) AS BIGINT),"
                  " CAST(sum(events_released) AS BIGINT) FROM v_aggregate_releases WHERE night = ?"
                  " GROUP BY release_table ORDER BY sum(cells), release_table",
    "chain": "SELECT entries, last_seq, left(last_hash, 16), links_ok, first_bad_seq FROM v_audit_chain",
    "subject_states": "SELECT subject_right, state, count(*) FROM v_subject_requests GROUP BY ALL",
    "subject_pressing": "SELECT request_id, subject_right, received, due, extended_to, days_left, state"
                        " FROM v_subject_requests WHERE state IN ('overdue', 'due_soon')"
                        " ORDER BY due_effective, received, request_id",
    "permissions": "SELECT zone, access, coalesce(group_role, ''), coalesce(unix_group, ''), group_on_host, dir_mode,"
                   " coalesce(file_mode, ''), entries_checked, entries_open, allowed_open, checked_at, run_id"
                   " FROM v_zone_permissions",
}
# A request's states as v_subject_requests names them: the three not answered yet first, by urgency.
REQUEST_STATES = ("overdue", "due_soon", "open", "fulfilled", "refused")
KIND_WORDS = {"off_list_column": "column not on the allowed list", "failed_rule": "rule failed",
              "quarantine_reason": "rows quarantined", "refused_file": "file refused whole"}
# A file's outcome as the summary and the report say it: a file refused whole (unreadable, or a copy of one
# audited tonight) keeps nothing in any zone, so none of its rows is called quarantined (docs/design.md §9).
REFUSED_WHOLE = ("rejected_file", "duplicate_file")
OUTCOME_WORDS = {"rejected_file": "refused whole", "duplicate_file": "refused whole", "known": "already audited"}


def outcome(status: str) -> str:
    """A `source_files.status` in the words the summary and the report use."""
    return OUTCOME_WORDS.get(status, status)


@dataclass(frozen=True)
class FileOutcome:
    """One file of the night as the summary and the report show it: counts, and why rows were not loaded."""

    file_name: str
    status: str
    profile: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int | None    # None: nothing of the file is in quarantine (refused whole, failed, empty)
    why: str                        # the file's reason, or the reason most of its quarantined rows share
    rows_before_lateness_window: int | None    # None: not counted (not loaded, payments)
    rows_after_night: int | None
    lateness: str = ""              # those two in words ('' when none)

    @property
    def outcome(self) -> str:
        return outcome(self.status)


def file_outcomes(rows: list[tuple], window_days: int) -> list[FileOutcome]:
    """`SQL["files"]` rows shaped for showing: a refused file's rows are not quarantined, and a file that loaded
    most of its rows still names the main reason for the rest."""
    out = []
    for name, status, profile, read, loaded, rejected, reason, main, main_rows, early, after in rows:
        kept_in_quarantine = status in ("loaded", "quarantined")
        if kept_in_quarantine:
            why = f"main reason: {main} ({main_rows:,} of {rejected:,} quarantined)" if rejected and main else ""
        else:
            why = f"nothing kept: {reason}" if status in REFUSED_WHOLE or status == "failed" else reason
        out.append(FileOutcome(file_name=name, status=status, profile=profile, rows_read=read, rows_loaded=loaded,
                               rows_quarantined=rejected if kept_in_quarantine else None, why=why,
                               rows_before_lateness_window=early, rows_after_night=after,
                               lateness=lateness_words(early or 0, after or 0, window_days)))
    return out


def lateness_words(before_window: int, after_night: int, window_days: int, *, always: bool = False) -> str:
    """Loaded rows dated more than the lateness window before the night, and after it ('' when none, unless
    `always`)."""
    if not (before_window or after_night or always):
        return ""
    return (f"{before_window:,} rows dated more than {window_days} day(s) before the night,"
            f" {after_night:,} after it")


def roaming_window_words(as_of_month: str, window_months: int, by_state: dict[str, int]) -> str:
    """One assessed fair-use window as the run prints it and the report shows it (counts only)."""
    first = shift_month(as_of_month, -(window_months - 1))
    return (f"window {first}…{as_of_month}: " + ", ".join(
        f"{by_state.get(s, 0):,} {s.replace('_', ' ')}" for s in ROAMING_STATES))


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


def _named(cursor) -> dict | None:
    """The cursor's one row as {column: value} (None: no row)."""
    row = cursor.fetchone()
    return None if row is None else dict(zip((c[0] for c in cursor.description), row))


def gather(con, policy: Policy) -> dict:
    """Every figure the report shows, from the compliance views."""
    run = _named(con.execute(SQL["run"]))
    horizons = policy.reporting.retention_due_within_days
    d = {"run": run, "generated_at": now_utc(), "horizons": horizons,
         "warning": nothing_landed_words(run["night"], run["files_seen"]) if run and run["nothing_landed"] else None,
         "sources_missing": []}
    if run is None:
        return d
    night = run["night"]
    d["sources_missing"] = missing_sources(con, night)
    d["release_tables"] = [t.name for t in policy.release_tables]
    d["night"] = _named(con.execute(SQL["night"], [night]))
    window_days = (d["night"] or {}).get("lateness_window_days") or policy.lateness.window_days
    d["lateness_window_days"] = window_days
    d["files"] = file_outcomes(con.execute(SQL["files"], [night]).fetchall(), window_days)
    for key in ("off_list", "violations", "aggregates"):
        d[key] = con.execute(SQL[key], [night]).fetchall()
    rank = {name: i for i, name in enumerate(d["release_tables"])}
    d["aggregates"].sort(key=lambda r: (rank.get(r[0], len(rank)), r[0]))   # the policy's order: coarse to fine
    for key in ("volumes", "violations_by_night", "analytics", "sweep", "holds"):
        d[key] = con.execute(SQL[key]).fetchall()
    d["roaming"] = roaming_windows(con.execute(SQL["roaming"]).fetchall(), run["run_id"],
                                   policy.roaming.observation_window_months)
    d["due"] = due_rows(con, horizons)
    d["chain"] = con.execute(SQL["chain"]).fetchone()
    d["verify"] = verify_chain(con)
    d["permissions"] = permissions(con.execute(SQL["permissions"]).fetchall())
    d["subjects"] = subject_requests(con, policy)
    return d


@dataclass(frozen=True)
class SubjectRequests:
    """Data-subject requests (`v_subject_requests`): counts per right and state, and the ones overdue or due soon
    (ids, rights and dates; never a subject's tokens)."""

    due_soon_days: int                                  # the policy's subject_rights.due_soon_within_days
    by_right: tuple[tuple[str, tuple[int, ...]], ...]   # every right of the policy, in its order: count per state
    pressing: tuple[tuple, ...]                         # (id, right, received, due, extended to, days left, state)

    def count(self, state: str) -> int:
        i = REQUEST_STATES.index(state)
        return sum(counts[i] for _, counts in self.by_right)

    def words(self) -> str:
        """'3 not answered yet: 1 overdue, 1 due within N day(s); 2 fulfilled, 0 refused'."""
        waiting = sum(self.count(s) for s in ("overdue", "due_soon", "open"))
        return (f"{waiting:,} not answered yet: {self.count('overdue'):,} overdue, {self.count('due_soon'):,} due"
                f" within {self.due_soon_days} day(s); {self.count('fulfilled'):,} fulfilled,"
                f" {self.count('refused'):,} refused")


def subject_requests(con, policy: Policy) -> SubjectRequests:
    counts = {(right, state): n for right, state, n in con.execute(SQL["subject_states"]).fetchall()}
    return SubjectRequests(
        due_soon_days=policy.subject_rights.due_soon_within_days,
        by_right=tuple((r.right, tuple(counts.get((r.right, s), 0) for s in REQUEST_STATES))
                       for r in policy.subject_rights.rights),
        pressing=tuple(con.execute(SQL["subject_pressing"]).fetchall()))


@dataclass(frozen=True)
class ZoneAccessRow:
    """One zone as the last permissions check found it (`v_zone_permissions`)."""

    zone: str
    access: str
    role: str
    unix_group: str
    group_on_host: bool | None
    dir_mode: str
    file_mode: str
    entries: int
    open: int
    allowed_open: bool
    checked_at: object
    run_id: str

    @property
    def readers(self) -> str:
        """Who may read it, in words."""
        if self.access == "traverse":
            return "anyone may pass through, nobody may list"
        if self.access == "owner":
            return "the pipeline's account only"
        where = "" if self.group_on_host else " (not on this host: the pipeline account's group)"
        return f"{self.role}: Unix group {self.unix_group}{where}"


def permissions(rows: list[tuple]) -> list[ZoneAccessRow]:
    return [ZoneAccessRow(*r) for r in rows]


def permissions_words(rows: list[ZoneAccessRow]) -> str:
    """The last permissions check in a line: 'as declared in every zone (…)' or the open zones and counts."""
    if not rows:
        return "no permissions check recorded yet"
    when = f"checked {rows[0].checked_at:%Y-%m-%d %H:%M} UTC by {rows[0].run_id}"
    opened = [r for r in rows if r.open]
    if not opened:
        return f"every zone as the policy's access declares, {sum(r.entries for r in rows):,} entries ({when})"
    return (", ".join(f"{r.zone} {r.open:,} of {r.entries:,} entries open" for r in opened)
            + f" — the run went on as told (--allow-open-zones) ({when})")


@dataclass(frozen=True)
class RoamingWindow:
    """One assessed fair-use window (`v_roaming_windows`): subscribers per state, and its words."""

    as_of_month: str
    by_state: dict[str, int]
    subscribers: int
    words: str                   # as the run printed it: "window YYYY-MM…YYYY-MM: n flagged, …"
    by_last_run: bool            # assessed by the run the report is about


def roaming_windows(rows: list[tuple], last_run_id: str, window_months: int) -> list[RoamingWindow]:
    out = []
    for month, run_id, subscribers, *counts in rows:
        by_state = dict(zip(ROAMING_STATES, counts))
        out.append(RoamingWindow(month, by_state, subscribers, roaming_window_words(month, window_months, by_state),
                                 run_id == last_run_id))
    return out


def roaming_headline(windows: list[RoamingWindow]) -> RoamingWindow | None:
    """The window the last run assessed (what it printed), else the newest one assessed."""
    return next((w for w in windows if w.by_last_run), windows[-1] if windows else None)


def in_words(horizons: tuple[int, ...]) -> str:
    """30, 90 → '30 and 90'; 7, 30, 365 → '7, 30 and 365'."""
    *first, last = (str(h) for h in horizons)
    return f"{', '.join(first)} and {last}" if first else last


def number(value) -> str:
    """A count as shown: thousands separated, a dash for none."""
    return "—" if value is None else f"{value:,}"


def chain_ok(d: dict) -> bool:
    """The chain recomputed for this report and the view's link check both hold, and the log still holds
    every anchored head (docs/design.md §6)."""
    return bool(d["verify"].ok and d["chain"][3] and d["anchors"].ok)


def anchor_words(anchors: AnchorCheck) -> str:
    """The latest anchor of the log's head, and how many were checked: 'latest anchor: seq 57, 2026-11-23T02:31Z
    (anchor-….json); 12 anchor(s) checked'."""
    a = anchors.latest
    if a is None:
        return anchors.words() if not anchors.checked else f"no readable anchor; {anchors.words()}"
    return f"latest anchor: seq {a.seq:,}, {a.anchored_at} ({a.file}); {anchors.words()}"


def aggregate_table_lines(rows: list[tuple], order: list[str]) -> list[str]:
    """The aggregate lines of `cdr-audit summary` and the report: a release's rows summed per release table
    (table, k, cells, released, primary, secondary, other, events, events released), in the policy's order (a
    table it no longer names last); a row of a run before the release tables (table NULL) is the single grain."""
    if not rows:
        return []
    rank = {name: i for i, name in enumerate(order)}
    rows = sorted(rows, key=lambda r: (rank.get(r[0], len(rank)), r[0] or ""))
    lines = [f"aggregates (k={min(r[1] for r in rows)}): per release table, cells released of all (suppressed under"
             " k / more so no finer table reveals one; `other` rows), share of events released"]
    for table, _, cells, released, primary, secondary, other, events, events_released in rows:
        share = f", {percent(events_released / events)} of events" if events else ""
        lines.append(f"  {table or 'single grain':<22} {released:>9,} of {cells:>9,} ({primary:,} / {secondary:,};"
                     f" {other or 0:,} other){share}")
    return lines


def percent(share: float) -> str:
    """A share as a percentage to one decimal, never rounded up to 100 % when something is missing."""
    tenths = math.floor(share * 1000 + 1e-9)      # 0.29 * 1000 is 289.99…
    return f"{tenths / 10:.1f} %"
