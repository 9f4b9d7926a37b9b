"""What each `cdr-audit` command does: the same functions the DAG's tasks call, printed for a terminal.

Imports are inside the commands: `cdr-audit --help` answers without loading DuckDB or Great Expectations.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

from transforms.entry.exit_codes import (  # noqa: F401 (the commands' exit codes, named here for cli.py and tests)
    EXIT_FAILED, EXIT_FILE_ERRORS, EXIT_FITS_WITH_REJECTS, EXIT_NIGHT_BUSY, EXIT_NO_FORMAT, EXIT_NOTHING_LANDED,
    EXIT_OK, EXIT_USAGE, EXIT_ZONES_OPEN,
)


def _progress(quiet: bool):
    started = time.monotonic()

    def say(msg: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)
    return say


def _keyring(args):
    from transforms.privacy.keys import load_keyring

    return load_keyring(os.environ, demo=getattr(args, "demo", False))


def cmd_run(args) -> int:
    from transforms.formats import load_formats
    from transforms.lake import Lake
    from transforms.lake.permissions import prepare_lake
    from transforms.policy import load_policy
    from transforms.runs import NightBusy, held, night_subject

    say = _progress(args.quiet)
    policy = load_policy(args.policy)
    formats = load_formats(policy, args.formats)
    keyring = _keyring(args)
    lake = Lake.at(args.lake)
    # Unique per process: two runs started in the same second are still two runs.
    run_id = args.run_id or (f"cli__{args.date}__{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
                             f"__{os.getpid()}_{uuid.uuid4().hex[:6]}")
    say(f"policy {policy.id} v{policy.version} sha256 {policy.sha256[:12]}…; run {run_id}")
    prepare_lake(lake, policy.access)      # before the lease: its folder is made with the policy's modes
    try:
        with held(lake, night_subject(args.date), run_id, wait_s=args.wait, say=say):
            summary = _run_night(args, lake, policy, formats, keyring, run_id, say)
    except NightBusy as busy:
        print(f"cdr-audit run: {busy}. Nothing was done; wait for it (--wait SECONDS) or re-run later.",
              file=sys.stderr)
        return EXIT_NIGHT_BUSY
    print_summary(summary)
    for m in summary.sources_missing:
        print(f"cdr-audit run: WARNING: {m.words()}", file=sys.stderr)
    if summary.nothing_landed:
        print(f"cdr-audit run: WARNING: {summary.nothing_landed}", file=sys.stderr)
        return EXIT_NOTHING_LANDED
    return EXIT_FILE_ERRORS if summary.files_failed else EXIT_OK


def _run_night(args, lake, policy, formats, keyring, run_id: str, say):
    """Plan, every file, the night-wide steps and the close: the DAG's tasks in sequence."""
    from transforms.audit_store import no_writing
    from transforms.entry.console import aggregate_lines, file_line, marketing_line, roaming_line
    from transforms.nightly.aggregate_night import aggregate_night
    from transforms.nightly.audit_file import audit_file
    from transforms.nightly.close import close_night
    from transforms.nightly.marketing_night import marketing_night
    from transforms.nightly.plan import override_for, plan_night
    from transforms.nightly.roaming_night import roaming_night

    plan = plan_night(args.landing, lake, policy, night=args.date, run_id=run_id, trigger="cli",
                      allow_open_zones=getattr(args, "allow_open_zones", False))
    if plan.zones_open:
        print(f"cdr-audit run: WARNING: {plan.zones_open:,} entries of the lake are looser than the policy's access;"
              " going on as told (--allow-open-zones, recorded in the audit log). `cdr-audit verify --permissions`"
              " lists them, `cdr-audit permissions --apply` fixes them", file=sys.stderr)
    todo = plan.to_audit
    say(f"{len(plan.files)} file(s) in landing, {len(todo)} to audit, "
        f"{len(plan.files) - len(todo)} skipped (already audited, duplicate or not a data file)")
    for i, planned in enumerate(todo, 1):
        say(f"[{i}/{len(todo)}] {planned.file_name} ({planned.bytes:,} bytes) …")
        with no_writing("the per-file step"):    # as in the DAG's mapped tasks (docs/design.md §6)
            r = audit_file(planned, lake, policy, formats, run_id=run_id, night=args.date, keyring=keyring,
                           format_override=override_for(planned, dict(args.format)),
                           timezone=override_for(planned, dict(args.timezone)),
                           on_step=lambda msg, i=i: say(f"[{i}/{len(todo)}]   {msg}"))
        say(f"[{i}/{len(todo)}] {file_line(r)}")
    for line in aggregate_lines(aggregate_night(lake, policy, run_id=run_id, night=args.date)):
        say(line)
    say(roaming_line(roaming_night(lake, policy, keyring, run_id=run_id)))
    say(marketing_line(marketing_night(lake, policy, keyring, run_id=run_id)))
    return close_night(lake, policy, run_id=run_id)


def print_summary(s) -> None:
    from transforms.entry.console import summary_lines

    print("\n".join(summary_lines(s)))
    print(f"  audit database: {s.audit_db}  (hash chain {'verified' if s.chain_ok else 'BROKEN'})")
    print(f"  Parquet exports: {Path(s.audit_db).parent / 'parquet'}")
    print(f"  anchors of the log's head: {Path(s.audit_db).parent / 'anchors'}  (copy them off this machine)")
    print(f"  validation Data Docs: {s.data_docs}"
          + (f"  (WARNING: {s.data_docs_error}; the night's counts are in validation_results)"
             if s.data_docs_error else ""))


def cmd_verify(args) -> int:
    from transforms.audit_store import verify_store
    from transforms.lake import Lake

    if getattr(args, "permissions", False):
        return _print_permissions(Lake.at(args.lake), args.policy)
    check = verify_store(Lake.at(args.lake))
    if check.ok:
        print(f"audit log chain intact: {check.chain.entries} entries; {check.anchors.words()}")
        return EXIT_OK
    for line in check.problems():
        print(line, file=sys.stderr)
    return EXIT_FAILED


def _print_permissions(lake, policy_path) -> int:
    """`verify --permissions`: the lake held to the policy's access, a line per zone; reads only."""
    from transforms.lake.permissions import FIX, check_lake
    from transforms.policy import load_policy

    if not lake.root.is_dir():
        print(f"cdr-audit: no lake at {lake.root}", file=sys.stderr)
        return EXIT_FAILED
    check = check_lake(lake, load_policy(policy_path).access)
    print(f"permissions of {lake.root} against the policy's access ({check.entries:,} entries, {check.seconds:.2f} s):")
    print("\n".join(f"  {line}" for line in check.table()))
    if check.ok:
        print("every zone is as the policy declares")
        return EXIT_OK
    print(f"open: {check.open_words()}\nfix: {FIX}", file=sys.stderr)
    return EXIT_FAILED


def cmd_permissions(args) -> int:
    """Show the lake's permissions against the policy, or (--apply) give every entry its zone's modes and record
    it in the audit log."""
    from transforms.audit_store import LogEvent, append_log, insert, now_utc, writing
    from transforms.lake import Lake
    from transforms.lake.permissions import apply_lake, check_lake
    from transforms.nightly.plan import permission_rows
    from transforms.policy import load_policy

    lake = Lake.at(args.lake)
    if not args.apply:
        return _print_permissions(lake, args.policy)
    if not lake.root.is_dir():
        print(f"cdr-audit: no lake at {lake.root}", file=sys.stderr)
        return EXIT_FAILED
    policy = load_policy(args.policy)
    applied = apply_lake(lake, policy.access)
    at = now_utc()
    run_id = f"permissions__{at:%Y%m%dT%H%M%S%fZ}"
    with writing(lake) as con:
        check = check_lake(lake, policy.access)     # under the store's lock: what the record says is what is there
        insert(con, permission_rows(run_id, check, at))
        append_log(con, [LogEvent(
            f"{run_id}:applied", "cli", "permissions_applied", run_id,
            {"policy_sha256": policy.sha256, "entries": sum(s.entries for s in applied.scopes),
             "entries_changed": applied.changed, "entries_not_changed_not_ours": applied.failed,
             "zones": {s.scope: {"changed": s.changed, "failed": s.failed} for s in applied.scopes if s.changed or s.failed},
             "entries_open_after": check.open})], at)
    for s in applied.scopes:
        if s.changed or s.failed:
            print(f"  {s.scope:<12} {s.changed:>8,} of {s.entries:,} entries changed"
                  + (f", {s.failed:,} not ours to change" if s.failed else ""))
    print(f"applied the policy's access to {lake.root}: {applied.changed:,} entries changed"
          f" ({applied.seconds:.2f} s); recorded in the audit log")
    return _print_permissions(lake, args.policy)


# Over the compliance views (defined for the reading connection); the night and the run are bound.
SUMMARY_SQL = {
    "run": "SELECT run_id, night, status, rows_read, rows_loaded, rows_quarantined, rows_refused, rows_failed,"
           " policy_version, left(policy_sha256, 12), files_skipped_known, nothing_landed, files_seen FROM v_last_run",
    "reasons": "SELECT r.reason, sum(r.rows) AS n FROM rejection_reasons r JOIN v_night_files f"
               " USING (run_id, sha256, file_name) WHERE f.night = ? AND f.status IN ('loaded', 'quarantined')"
               " GROUP BY r.reason ORDER BY n DESC, r.reason LIMIT 8",
    "refused": "SELECT count(*), coalesce(sum(rows_rejected), 0) FROM v_night_files"
               " WHERE night = ? AND status IN ('rejected_file', 'duplicate_file')",
    "analytics": "SELECT string_agg(DISTINCT p.key_id, ', '), count(DISTINCT p.sha256) FROM pseudonymization_log p"
                 " JOIN v_night_files f USING (run_id, sha256, file_name) WHERE f.night = ?",
    "aggregates": "SELECT release_table, min(k), sum(groups_total), sum(groups_released),"
                  " sum(groups_suppressed_primary), sum(groups_suppressed_secondary), sum(other_cells_released),"
                  " sum(events), sum(events_released)"
                  " FROM aggregate_releases WHERE run_id = ? GROUP BY release_table",
    "releases": "SELECT count(DISTINCT (event_date, release_number)),"
                " count(DISTINCT (event_date, release_number)) FILTER (WHERE release_kind = 'late')"
                " FROM aggregate_releases WHERE run_id = ? AND release_number IS NOT NULL",
    "waiting": "SELECT reason, count(*), sum(rows_waiting) FROM aggregate_waiting WHERE run_id = ?"
               " GROUP BY reason ORDER BY reason DESC",
    "marketing": "SELECT count(*), sum(subscribers), sum(rows_removed), max(consents_standing), min(purpose)"
                 " FROM marketing_profiles WHERE run_id = ?",
    "off_list": "SELECT x.source_column, x.classification, count(*) FROM field_findings x JOIN v_night_files f"
                " USING (run_id, sha256, file_name) WHERE f.night = ? AND x.classification IN ('not_allowed', 'unknown')"
                " GROUP BY ALL ORDER BY 3 DESC, 1 LIMIT 12",
}


def cmd_summary(args) -> int:
    from transforms.audit_store import reading, verify_chain
    from transforms.audit_store.anchors import check_anchors
    from transforms.audit_store.deliveries import missing_sources, nothing_landed_words
    from transforms.audit_store.views import define_views
    from transforms.lake import Lake
    from transforms.lake.zones import DATA_ZONES
    from transforms.policy import load_policy
    from transforms.privacy.redact import shorten
    from transforms.privacy.releases import WINDOW_OPEN
    from transforms.report.queries import (
        SQL, aggregate_table_lines, anchor_words, file_outcomes, lateness_words, number,
    )

    lake = Lake.at(args.lake)
    policy = load_policy(args.policy)
    with reading(lake) as con:
        if con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0:
            print("the audit store holds no run yet")
            return EXIT_OK
        define_views(con, lake, policy, temp=True)
        run = con.execute(SUMMARY_SQL["run"]).fetchone()
        night = run[1]
        missing = missing_sources(con, night)
        files = file_outcomes(con.execute(SQL["files"], [night]).fetchall(), policy.lateness.window_days)
        reasons, off_list = (con.execute(SUMMARY_SQL[k], [night]).fetchall() for k in ("reasons", "off_list"))
        (refused_files, refused_rows), = con.execute(SUMMARY_SQL["refused"], [night]).fetchall()
        (keys, tokenized_files), = con.execute(SUMMARY_SQL["analytics"], [night]).fetchall()
        aggregates = con.execute(SUMMARY_SQL["aggregates"], [run[0]]).fetchall()
        (releases, late), = con.execute(SUMMARY_SQL["releases"], [run[0]]).fetchall()
        waiting = con.execute(SUMMARY_SQL["waiting"], [run[0]]).fetchall()
        (profile_days, profiled, profiles_removed, standing, purpose), = con.execute(SUMMARY_SQL["marketing"],
                                                                                    [run[0]]).fetchall()
        chain = verify_chain(con)
        (head,), anchors = con.execute("SELECT max(seq) FROM audit_log").fetchone(), check_anchors(con, lake)
    (run_id, _, status, read, loaded, quarantined, refused, failed, version, sha, known, nothing_landed, seen) = run
    print(f"last run {run_id} (night {night}): {status}; policy v{version} sha256 {sha}…")
    if nothing_landed:
        print(f"  WARNING: {nothing_landed_words(night, seen)}")
    for m in missing:
        print(f"  WARNING: {m.words()}")
    print(f"  this run: {_rows_words(read, loaded, quarantined, refused, failed)}"
          f"{f'; {known} file(s) already audited earlier, not loaded again' if known else ''}")
    night_quarantined = sum(f.rows_quarantined or 0 for f in files)
    night_failed = sum(f.rows_read for f in files if f.status == "failed")
    print(f"  night {night}: " + _rows_words(sum(f.rows_read for f in files), sum(f.rows_loaded for f in files),
                                              night_quarantined, refused_rows, night_failed))
    early = sum(f.rows_before_lateness_window or 0 for f in files)
    after = sum(f.rows_after_night or 0 for f in files)
    print(f"  event dates: {lateness_words(early, after, policy.lateness.window_days, always=True)}"
          " (loaded as delivered)\n")
    print(f"{'file':<36} {'outcome':<15} {'profile':<20} {'read':>8} {'loaded':>8} {'quarant.':>8} {'late':>6}"
          f" {'future':>6}  why rows were not loaded")
    for f in files:
        print(f"{shorten(f.file_name, 36):<36} {f.outcome:<15} {f.profile:<20} {f.rows_read:>8,} {f.rows_loaded:>8,}"
              f" {number(f.rows_quarantined):>8} {number(f.rows_before_lateness_window):>6}"
              f" {number(f.rows_after_night):>6}  {shorten(f.why, 90)}")
    print(f"(late: loaded rows dated more than {policy.lateness.window_days} day(s) before the night, policy"
          " lateness.window_days; future: dated after the night; both loaded as delivered)")
    if reasons:
        print("\nmain quarantine reasons: " + "; ".join(f"{r} ({n:,})" for r, n in reasons))
    if refused_files:
        print(f"refused whole: {refused_files} file(s), {refused_rows:,} rows read, nothing of them kept")
    if off_list:
        print("off-list columns dropped: " + ", ".join(f"{c} [{k}] ×{n}" for c, k, n in off_list))
    if tokenized_files:
        print(f"analytics: {tokenized_files} file(s) pseudonymized with HMAC key id(s) {keys}")
    if releases:
        print(f"aggregates: {releases:,} release(s) made ({late:,} of late rows)")
    for line in aggregate_table_lines(aggregates, [t.name for t in policy.release_tables]):
        print(line)
    for reason, days, rows in waiting:
        print(f"aggregates waiting: {days:,} day(s), {rows:,} rows — "
              + ("inside their window" if reason == WINDOW_OPEN else "not passing k on their own yet"))
    if profile_days:
        print(f"marketing: {profile_days} day(s) profiled, {profiled:,} subscriber-day profile(s) on {purpose} consent"
              f" ({standing:,} consent(s) standing), {profiles_removed:,} profile row(s) removed")
    intact = chain.ok and anchors.ok
    print(f"\naudit database: {lake.audit_db}  (audit-log chain {'intact' if intact else 'BROKEN'},"
          f" {chain.entries} entries, head seq {number(head)})")
    print(f"  {anchor_words(anchors)}")
    for line in anchors.problems:
        print(f"  {line}")
    print(f"Parquet exports: {lake.zone('audit') / 'parquet'}")
    print(f"validation Data Docs: {lake.data_docs}")
    print(f"zones: {lake.root}/{{{','.join(z for z in DATA_ZONES if lake.zone(z).is_dir())}}}")
    return EXIT_OK if intact else EXIT_FAILED


def _rows_words(read: int, loaded: int, quarantined: int, refused: int, failed: int) -> str:
    """rows read = loaded + quarantined + refused whole (+ in failed files): nothing of a refused or failed
    file is kept, so its rows are never called quarantined (docs/design.md §9)."""
    return (f"{read:,} rows read = {loaded:,} loaded + {quarantined:,} quarantined + {refused:,} in files refused"
            f" whole{f' + {failed:,} in failed files' if failed else ''}")


def cmd_report(args) -> int:
    from transforms.lake import Lake
    from transforms.policy import load_policy
    from transforms.report import write_report

    report = write_report(Lake.at(args.lake), load_policy(args.policy), args.out)
    print(report.text)
    if report.html_path:
        print(f"\nHTML report: {report.html_path}" + (f"  (latest: {report.index_path})" if report.index_path else ""))
    return EXIT_OK if report.chain_ok else EXIT_FAILED


def cmd_snapshot(args) -> int:
    from transforms.audit_store import snapshot
    from transforms.lake import Lake

    lake = Lake.at(args.lake)
    snap = snapshot(lake, args.out)
    head = "-" if snap.head_seq is None else snap.head_seq
    print(f"snapshot of {lake.audit_db}: {snap.path} ({snap.bytes:,} bytes, copied in {snap.seconds:.3f} s);"
          f" audit log: {snap.entries} entries, head seq {head}")
    print(f"open the copy, not the live store: duckdb -readonly {snap.path}")
    return EXIT_OK


def cmd_writer_lease(args) -> int:
    from transforms.audit_store.writer_lease import lease_path
    from transforms.lake import Lake

    lake = Lake.at(args.lake)
    return _show_or_break_lease(lake, lease_path(lake), f"the writer lease of {lake.audit_db}",
                                "writer_lease_broken", "audit_store", args.break_lease)


def cmd_leases_lock(args) -> int:
    from transforms.lake import Lake
    from transforms.runs.lease import lock_lease_path

    lake = Lake.at(args.lake)
    return _show_or_break_lease(lake, lock_lease_path(lake), "the lock of the runs' leases",
                                "leases_lock_broken", "runs_leases", args.break_lock)


def _show_or_break_lease(lake, path, what: str, action: str, target: str, break_it: bool) -> int:
    """Print who holds the lease file at `path` (transforms/lake/host_lease.py); with `break_it`, remove it
    and chain that into the audit log (host and pid of holder and breaker: no personal data)."""
    from transforms.audit_store import LogEvent, append_log, writing
    from transforms.lake.host_lease import break_lease, dead_here, read_holder
    from transforms.lake.processes import host_name

    holder = read_holder(path)
    if holder is None:
        print(f"nobody holds {what}")
        return EXIT_OK
    dead = dead_here(holder)
    print(f"{what}: {holder.words()}" + (f"; dead: {dead}" if dead else ""))
    if not break_it:
        return EXIT_OK
    broken = break_lease(path)
    if broken is None:
        print("it was let go meanwhile; nothing to break")
        return EXIT_OK
    # Recorded by the writer that comes next: this command (the writer lease is free now, if it was that one).
    with writing(lake) as con:
        append_log(con, [LogEvent(f"{action}:{broken.token}", "cli", action, target,
                                  {"host": broken.host, "pid": broken.pid, "since": broken.since,
                                   "by_host": host_name(), "by_pid": os.getpid()})])
    print(f"broke the lease of {broken.words()}; recorded in the audit log ({action})")
    return EXIT_OK


def cmd_lookup(args) -> int:
    from transforms.lake import Lake
    from transforms.policy import load_policy
    from transforms.subjects.find import analytics_hits
    from transforms.subjects.subject import Subject

    policy = load_policy(args.policy)
    keyring = _keyring(args)
    value, kind = (args.number, "msisdn") if args.number else (args.imsi, "imsi")
    hits = analytics_hits(Lake.at(args.lake), policy, keyring, Subject.of(value, kind, keyring, policy))
    held = [k.key_id for k in keyring.keys]
    print(f"searched with {len(held)} key(s): {', '.join(held)}")
    for h in hits:
        print(f"  key {h.key_id:<24} {h.event_date}  {h.column:<20} {h.rows:,} row(s)")
    print(f"{sum(h.rows for h in hits):,} analytics row(s) found")
    return EXIT_OK


def cmd_policy(args) -> int:
    from transforms.policy import load_policy

    p = load_policy(args.policy)
    print(f"{p.title}\n  id {p.id}, version {p.version}\n  file {p.path}\n  sha256 {p.sha256}")
    print(f"  k-anonymity: {p.k_anonymity}")
    print(f"  lateness window: rows dated more than {p.lateness.window_days} day(s) before the night are late"
          f" ({p.lateness.clause})")
    print(f"  allowed billing columns ({len(p.fields)}):")
    for f in p.fields:
        print(f"    {f.column:<22} {f.type:<14} analytics: {f.analytics:<18} {f.clause}")
    print(f"  retention catalog ({len(p.retention)} categories):")
    for r in p.retention:
        print(f"    {r.category:<24} keep {str(r.keep):<6} from {r.anchor:<30} then {r.action:<9} {r.clause}")
    print(f"  access ({p.access.clause}):")
    for z in (*p.access.zones, p.access.work):
        who = f"group {z.group.role} (Unix group {z.group.unix_group})" if z.group else "owner only"
        print(f"    {z.zone:<12} {who:<46} {z.clause}")
    return EXIT_OK


def cmd_formats(args) -> int:
    from transforms.entry import format_check
    from transforms.formats import load_formats
    from transforms.policy import load_policy

    policy = load_policy(args.policy)
    formats = load_formats(policy, args.formats)
    if args.formats_command == "list":
        print(format_check.listing(formats))
        return EXIT_OK
    if args.formats_command == "show":
        fmt = formats.get(args.name)
        if fmt is None:
            print(f"cdr-audit: no format {args.name!r}; `cdr-audit formats list` names them", file=sys.stderr)
            return EXIT_USAGE
        print(format_check.describe(fmt, policy))
        return EXIT_OK
    result = format_check.check_file(args.file, policy, formats, format_name=args.format_name,
                                     timezone=args.timezone, records=args.records)
    print(result.text)
    return {"fits": EXIT_OK, "fits_with_rejects": EXIT_FITS_WITH_REJECTS, "no_format": EXIT_NO_FORMAT}[result.outcome]


def cmd_retention(args) -> int:
    from transforms.lake import Lake
    from transforms.policy import load_policy
    from transforms.retention.sweep import sweep

    result = sweep(Lake.at(args.lake), load_policy(args.policy), _keyring(args), date.fromisoformat(args.as_of),
                   dry_run=args.dry_run, progress=_progress(args.quiet))
    print(f"retention sweep as of {result.as_of}{' (dry run: nothing written)' if result.dry_run else ''}"
          f" — {result.seconds:.1f} s")
    print(f"  {'data set':<11} {'partition':<24} {'category':<24} {'action':<11} {'rows':>12} {'due':<10}  holds")
    for a in result.actions:
        print(f"  {a.dataset:<11} {a.partition:<24} {a.category:<24} {a.action:<11} {a.rows:>12,} "
              f"{a.due_on or '':<10}  {a.hold_ids or ''}")
    removed = result.rows("deleted") + result.rows("anonymized")
    print(f"  {'would remove' if result.dry_run else 'removed'} {removed:,} row(s); held {result.rows('held'):,};"
          f" kept {result.rows('kept'):,}")
    if result.proofs:
        ok = sum(p.ok for p in result.proofs)
        print(f"  proof: {ok} of {len(result.proofs)} rewritten/removed file(s) hold none of the removed identifiers")
    return EXIT_OK


def cmd_hold(args) -> int:
    from transforms.lake import Lake
    from transforms.policy import load_policy
    from transforms.retention import holds

    lake = Lake.at(args.lake)
    if args.hold_command == "list":
        found = holds.list_holds(lake, active_only=args.active)
        for h in found:
            state = "active" if h.active else f"released {h.released_at:%Y-%m-%d} by {h.released_by}"
            print(f"{h.hold_id}  {state:<30} placed {h.placed_at:%Y-%m-%d} by {h.placed_by}: {h.reason}")
            print(f"    scope: {h.scope_text()}")
        print(f"{len(found)} hold(s)")
        return EXIT_OK
    policy = load_policy(args.policy)
    if args.hold_command == "release":
        h = holds.release(lake, policy, args.hold_id, released_by=args.by, reason=args.reason)
        print(f"{h.hold_id} released; its rows are due at the next retention sweep")
        return EXIT_OK
    h = holds.place(lake, policy, _keyring(args), reason=args.reason, placed_by=args.by, dataset=args.dataset,
                    date_from=_as_date(args.date_from), date_to=_as_date(args.date_to), subscriber=args.subscriber,
                    account=args.account, subscriber_token=args.subscriber_token, key_id=args.key_id)
    print(f"{h.hold_id} placed: {h.scope_text()}")
    return EXIT_OK


def cmd_subject(args) -> int:
    """`subject request|list|extend|export`: in transforms/entry/subject_commands.py."""
    from transforms.entry.subject_commands import cmd_subject as subject

    return subject(args)


def _as_date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


COMMANDS = {"run": cmd_run, "retention": cmd_retention, "hold": cmd_hold, "verify": cmd_verify,
            "summary": cmd_summary, "report": cmd_report, "snapshot": cmd_snapshot, "lookup": cmd_lookup,
            "policy": cmd_policy, "formats": cmd_formats, "permissions": cmd_permissions,
            "subject": cmd_subject, "writer-lease": cmd_writer_lease,
            "leases-lock": cmd_leases_lock}
