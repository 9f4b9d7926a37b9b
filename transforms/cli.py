"""`cdr-audit`: run the nightly audit and inspect the audit store without Airflow.

Exit codes: 0 the command completed (a run with quarantined rows or rejected
files has completed); 1 it could not (bad policy, unreadable landing or lake,
audit store locked or broken chain); 2 bad usage; 3 the run completed but at
least one file failed with an internal error (see `source_files`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_FILE_ERRORS = 0, 1, 2, 3


def _date(text: str) -> str:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _override(text: str) -> tuple[str, str]:
    pattern, sep, profile = text.partition("=")
    if not sep or not pattern or not profile:
        raise argparse.ArgumentTypeError("expected PATTERN=PROFILE, e.g. 'pbx_*.csv=asterisk_master_21'")
    return pattern, profile


def build_parser() -> argparse.ArgumentParser:
    from transforms.profiles import ALL_PROFILES

    parser = argparse.ArgumentParser(
        prog="cdr-audit",
        description="Audit a night of CDR/billing extracts against the privacy policy: field check, "
                    "validation, billing and quarantine zones, and a DuckDB audit store.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="audit one night's landing folder (the same steps as the cdr_nightly_audit DAG)",
        description="Audit every file of a landing folder: detect its format, check each column against "
                    "the allowed billing-data list (§3.2), validate rows with the Great Expectations suite, "
                    "load valid rows into billing/, quarantine the rest with a reason, and record it all "
                    "in LAKE/audit/audit.duckdb. Files already audited (same sha256) are skipped.")
    run.add_argument("--landing", required=True, type=Path, help="folder holding the night's extracts")
    run.add_argument("--lake", required=True, type=Path, help="lake root (zones and audit store live here)")
    run.add_argument("--date", required=True, type=_date, help="the night, YYYY-MM-DD (the run's logical date)")
    run.add_argument("--policy", type=Path, default=None, help="policy YAML (default: policy/a1_slovenia.yaml)")
    run.add_argument("--run-id", default=None, help="run id (default: cli__DATE__UTC-TIMESTAMP)")
    run.add_argument("--profile", action="append", type=_override, default=[], metavar="PATTERN=PROFILE",
                     help="force a source profile for files matching a glob; profiles: "
                          + ", ".join(sorted(ALL_PROFILES)))
    run.add_argument("--demo", action="store_true",
                     help="allow the built-in demo HMAC key when no key is configured (demo and tests only; "
                          "also CDR_AUDIT_DEMO_MODE=1). Real runs take the key from CDR_AUDIT_HMAC_KEY + "
                          "CDR_AUDIT_HMAC_KEY_ID (or CDR_AUDIT_HMAC_KEY_FILE)")
    run.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")

    verify = sub.add_parser("verify", help="recompute the audit-log hash chain",
                            description="Recompute every link of audit_log; exit 1 if any entry was changed, "
                                        "removed or reordered.")
    verify.add_argument("--lake", required=True, type=Path)

    pol = sub.add_parser("policy", help="validate a policy file and show what it allows",
                         description="Load and validate the policy file; print its version, sha256, allowed "
                                     "columns with their clauses, and the retention catalog.")
    pol.add_argument("--policy", type=Path, default=None)

    look = sub.add_parser("lookup", help="find a subject's analytics rows across HMAC key rotations",
                          description="For a subject-access request: derive the subject's token with every key "
                                      "still held (current and retired) and count the analytics rows under each "
                                      "key id, day and column. Prints counts, never other subjects' data.")
    look.add_argument("--lake", required=True, type=Path)
    who = look.add_mutually_exclusive_group(required=True)
    who.add_argument("--number", help="a phone number in any spelling (040…, +38640…, 0038640…)")
    who.add_argument("--imsi")
    look.add_argument("--policy", type=Path, default=None)
    look.add_argument("--demo", action="store_true", help="allow the demo key (demo and tests only)")

    summ = sub.add_parser("summary", help="show the last run recorded in the audit store",
                          description="Print the last run of the audit store: outcome, each file's rows read / "
                                      "loaded / quarantined, the main rejection reasons and the off-list columns "
                                      "found, plus where the audit database, exports and Data Docs are.")
    summ.add_argument("--lake", required=True, type=Path)

    rep = sub.add_parser(
        "report", help="compliance report: last night at a glance, as text and as one HTML file",
        description="Print the last night's outcome, files and rows, top violations, retention due in the next "
                    "30/90 days, active legal holds, roaming states and the audit-log chain; write the same as "
                    "a self-contained HTML page (charts included, no script, no network) to "
                    "LAKE/reports/compliance-<night>.html and LAKE/reports/index.html. Counts and names only, "
                    "no personal data. Exit 1 when there is no audit store or the chain is broken.")
    rep.add_argument("--lake", required=True, type=Path)
    rep.add_argument("--out", type=Path, default=None,
                     help="write the HTML to this file instead of LAKE/reports/ (index.html untouched)")

    sub.add_parser("profiles", help="list the source formats the ingest step recognizes",
                   description="List each source profile, whether it has a header, and its columns.")

    ret = sub.add_parser(
        "retention", help="enforce the retention catalog (§5) on every zone as of a date",
        description="Give every row of every personal data set its due date from the policy's retention "
                    "catalog (payment status from the payments extract, limitation periods, legal holds), "
                    "rewrite the affected Parquet files without the due rows, prove the removed identifiers "
                    "are gone from the files' bytes, and record one retention_actions row per data set, "
                    "partition, category and action. --dry-run lists the same without touching any zone.")
    ret.add_argument("--lake", required=True, type=Path)
    ret.add_argument("--as-of", required=True, type=_date, help="the day the sweep acts for, YYYY-MM-DD")
    ret.add_argument("--dry-run", action="store_true", help="list what is due, held and kept; write nothing")
    ret.add_argument("--policy", type=Path, default=None)
    ret.add_argument("--demo", action="store_true", help="allow the demo key (demo and tests only)")
    ret.add_argument("--quiet", action="store_true", help="no progress lines, only the table")

    hold = sub.add_parser(
        "hold", help="place, release or list legal holds (they stop the retention sweep's deletions)",
        description="A legal hold (dispute, unpaid claim, litigation, authority order) keeps the rows in its "
                    "scope past their due date. The scope is any of: a data set, a date range, one subject. "
                    "A subject (number or account) is stored only as its keyed tokens.")
    hsub = hold.add_subparsers(dest="hold_command", required=True, metavar="ACTION")
    place = hsub.add_parser("place", help="place a hold")
    place.add_argument("--lake", required=True, type=Path)
    place.add_argument("--reason", required=True, help="the case, e.g. 'dispute 2026/114' (no numbers of people)")
    place.add_argument("--by", required=True, help="who places it")
    place.add_argument("--dataset", help="one data set (billing, quarantine, analytics, invoices, roaming)")
    place.add_argument("--from", dest="date_from", type=_date, help="first date in scope (inclusive)")
    place.add_argument("--to", dest="date_to", type=_date, help="last date in scope (inclusive)")
    subject = place.add_mutually_exclusive_group()
    subject.add_argument("--subscriber", help="a subscriber's number in any spelling (stored as tokens only)")
    subject.add_argument("--account", help="an account id (stored as tokens only)")
    subject.add_argument("--subscriber-token", help="a subscriber token (32 hex digits) as analytics shows it")
    place.add_argument("--key-id", help="the key id of --subscriber-token")
    place.add_argument("--policy", type=Path, default=None)
    place.add_argument("--demo", action="store_true", help="allow the demo key (demo and tests only)")
    rel = hsub.add_parser("release", help="release a hold: what it held is due at the next sweep")
    rel.add_argument("hold_id")
    rel.add_argument("--lake", required=True, type=Path)
    rel.add_argument("--reason", required=True)
    rel.add_argument("--by", required=True)
    lst = hsub.add_parser("list", help="list holds")
    lst.add_argument("--lake", required=True, type=Path)
    lst.add_argument("--active", action="store_true", help="only holds not released")
    return parser


def _progress(quiet: bool):
    started = time.monotonic()

    def say(msg: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)
    return say


def cmd_run(args) -> int:
    from transforms.lake import Lake
    from transforms.nightly import (aggregate_night, audit_file, close_night, plan_night, profile_for,
                                    roaming_night)
    from transforms.policy import load_policy
    from transforms.pseudonymize import load_keyring

    say = _progress(args.quiet)
    policy = load_policy(args.policy)
    keyring = load_keyring(os.environ, demo=args.demo)
    lake = Lake.at(args.lake)
    run_id = args.run_id or f"cli__{args.date}__{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    say(f"policy {policy.id} v{policy.version} sha256 {policy.sha256[:12]}…; run {run_id}")
    plan = plan_night(args.landing, lake, policy, night=args.date, run_id=run_id, trigger="cli")
    todo = plan.to_audit
    say(f"{len(plan.files)} file(s) in landing, {len(todo)} to audit, "
        f"{len(plan.files) - len(todo)} skipped (already audited, duplicate or not a data file)")
    for i, planned in enumerate(todo, 1):
        override = profile_for(planned, dict(args.profile))
        say(f"[{i}/{len(todo)}] {planned.file_name} ({planned.bytes:,} bytes) …")
        r = audit_file(planned, lake, policy, run_id=run_id, night=args.date, keyring=keyring,
                       profile_override=override, on_step=lambda msg, i=i: say(f"[{i}/{len(todo)}]   {msg}"))
        say(f"[{i}/{len(todo)}] {planned.file_name}: {r.status}, {r.rows_read:,} read, {r.rows_loaded:,} loaded, "
            f"{r.rows_rejected:,} quarantined{' — ' + r.reason if r.reason else ''}")
    for release in aggregate_night(lake, policy, run_id=run_id):
        say(f"aggregates {release['event_date']}: {release['groups_released']:,} groups released, "
            f"{release['groups_suppressed_primary'] + release['groups_suppressed_secondary']:,} suppressed"
            f" (k={release['k']}) ({release['seconds']:.1f} s)")
    roaming = roaming_night(lake, policy, keyring, run_id=run_id)
    w = roaming["window"]
    say(f"roaming: {len(roaming['months'])} month(s) rebuilt ({roaming['months_seconds']:.1f} s); window"
        f" {w['window_months'][0]}…{w['as_of_month']}: {w['flagged']:,} flagged, {w['not_flagged']:,} not flagged,"
        f" {w['insufficient_history']:,} insufficient history ({w['seconds']:.1f} s)")
    summary = close_night(lake, policy, run_id=run_id)
    print_summary(summary)
    return EXIT_FILE_ERRORS if summary.files_failed else EXIT_OK


def print_summary(s) -> None:
    print(f"run {s.run_id} for night {s.night}: {s.status}")
    print(f"  files: {s.files_seen} seen, {s.files_processed} audited, {s.files_skipped_known} already audited, "
          f"{s.files_rejected} rejected whole, {s.files_failed} failed")
    print(f"  rows:  {s.rows_read:,} read = {s.rows_loaded:,} loaded + {s.rows_rejected:,} quarantined")
    print(f"  audit database: {s.audit_db}  (hash chain {'verified' if s.chain_ok else 'BROKEN'})")
    print(f"  Parquet exports: {Path(s.audit_db).parent / 'parquet'}")
    print(f"  validation Data Docs: {Path(s.audit_db).parent.parent / 'reports' / 'gx_data_docs'}")


def cmd_verify(args) -> int:
    from transforms import audit
    from transforms.lake import Lake

    con = audit.connect(Lake.at(args.lake), read_only=True)
    try:
        check = audit.verify_chain(con)
    finally:
        con.close()
    if check.ok:
        print(f"audit log chain intact: {check.entries} entries")
        return EXIT_OK
    print(f"audit log chain BROKEN at seq {check.first_bad_seq}: {check.problem}", file=sys.stderr)
    return EXIT_FAILED


# The night's files: each file's latest real outcome (a re-run records files it skips as 'known').
_NIGHT_FILES = """
    WITH night_files AS (
        SELECT * FROM source_files WHERE night = ? AND status <> 'known'
        QUALIFY row_number() OVER (PARTITION BY sha256, file_name ORDER BY processed_at DESC) = 1)
"""
SUMMARY_SQL = {
    "run": "SELECT run_id, night, status, rows_read, rows_loaded, rows_rejected, policy_version,"
           " left(policy_sha256, 12), files_skipped_known FROM runs ORDER BY started_at DESC LIMIT 1",
    "files": _NIGHT_FILES + "SELECT file_name, status, coalesce(profile, '-'), rows_read, rows_loaded,"
             " rows_rejected, coalesce(reason, '') FROM night_files ORDER BY file_name",
    "reasons": _NIGHT_FILES + "SELECT r.reason, sum(r.rows) AS n FROM rejection_reasons r JOIN night_files"
               " USING (run_id, sha256, file_name) GROUP BY r.reason ORDER BY n DESC, r.reason LIMIT 8",
    "analytics": _NIGHT_FILES + "SELECT string_agg(DISTINCT p.key_id, ', '), count(DISTINCT p.sha256)"
                 " FROM pseudonymization_log p JOIN night_files USING (run_id, sha256, file_name)",
    "aggregates": "SELECT min(k), sum(groups_released), sum(groups_suppressed_primary),"
                  " sum(groups_suppressed_secondary) FROM aggregate_releases WHERE run_id = ?",
    "off_list": _NIGHT_FILES + "SELECT f.source_column, f.classification, count(*) FROM field_findings f"
                " JOIN night_files USING (run_id, sha256, file_name) WHERE f.classification <> 'allowed'"
                " GROUP BY ALL ORDER BY 3 DESC, 1 LIMIT 12",
}


def cmd_summary(args) -> int:
    from transforms import audit
    from transforms.lake import Lake

    lake = Lake.at(args.lake)
    con = audit.connect(lake, read_only=True)
    try:
        run = con.execute(SUMMARY_SQL["run"]).fetchone()
        if run is None:
            print("the audit store holds no run yet")
            return EXIT_OK
        files, reasons, off_list = (con.execute(SUMMARY_SQL[k], [run[1]]).fetchall()
                                    for k in ("files", "reasons", "off_list"))
        (keys, tokenized_files), = con.execute(SUMMARY_SQL["analytics"], [run[1]]).fetchall()
        (k, released, primary, secondary), = con.execute(SUMMARY_SQL["aggregates"], [run[0]]).fetchall()
        chain = audit.verify_chain(con)
    finally:
        con.close()
    print(f"last run {run[0]} (night {run[1]}): {run[2]}; policy v{run[6]} sha256 {run[7]}…")
    print(f"  this run: {run[3]:,} rows read = {run[4]:,} loaded + {run[5]:,} quarantined"
          f"{f'; {run[8]} file(s) already audited earlier, not loaded again' if run[8] else ''}")
    totals = [sum(f[i] for f in files) for i in (3, 4, 5)]
    print(f"  night {run[1]}: {totals[0]:,} rows read = {totals[1]:,} loaded + {totals[2]:,} quarantined\n")
    print(f"{'file':<36} {'status':<15} {'profile':<20} {'read':>8} {'loaded':>8} {'quarant.':>8}  reason")
    for name, status, prof, read, loaded, rejected, reason in files:
        print(f"{name[:36]:<36} {status:<15} {prof:<20} {read:>8,} {loaded:>8,} {rejected:>8,}  {reason[:60]}")
    if reasons:
        print("\nmain quarantine reasons: " + "; ".join(f"{r} ({n:,})" for r, n in reasons))
    if off_list:
        print("off-list columns dropped: " + ", ".join(f"{c} [{k}] ×{n}" for c, k, n in off_list))
    if tokenized_files:
        print(f"analytics: {tokenized_files} file(s) pseudonymized with HMAC key id(s) {keys}")
    if k is not None:
        print(f"aggregates (k={k}): {released:,} groups released, {primary:,} suppressed under k,"
              f" {secondary:,} more so no total minus its parts reveals one")
    print(f"\naudit database: {lake.audit_db}  (audit-log chain {'intact' if chain.ok else 'BROKEN'},"
          f" {chain.entries} entries)")
    print(f"Parquet exports: {lake.zone('audit') / 'parquet'}")
    print(f"validation Data Docs: {lake.zone('reports') / 'gx_data_docs'}")
    print(f"zones: {lake.root}/{{billing,invoices,quarantine,analytics,aggregates,roaming}}")
    return EXIT_OK if chain.ok else EXIT_FAILED


def cmd_report(args) -> int:
    from transforms.lake import Lake
    from transforms.report import write_report

    report = write_report(Lake.at(args.lake), args.out)
    print(report.text)
    if report.html_path:
        print(f"\nHTML report: {report.html_path}" + (f"  (latest: {report.index_path})" if report.index_path else ""))
    return EXIT_OK if report.chain_ok else EXIT_FAILED


def cmd_lookup(args) -> int:
    from transforms.analytics import find_subject
    from transforms.lake import Lake
    from transforms.policy import load_policy
    from transforms.pseudonymize import load_keyring

    policy = load_policy(args.policy)
    keyring = load_keyring(os.environ, demo=args.demo)
    value, kind = (args.number, "msisdn") if args.number else (args.imsi, "imsi")
    hits = find_subject(Lake.at(args.lake), policy, keyring, value, kind)
    held = [keyring.current.key_id, *(k.key_id for k in keyring.retired)]
    print(f"searched with {len(held)} key(s): {', '.join(held)}")
    for h in hits:
        print(f"  key {h.key_id:<24} {h.event_date}  {h.column:<20} {h.rows:,} row(s)")
    print(f"{sum(h.rows for h in hits):,} analytics row(s) found")
    return EXIT_OK


def cmd_policy(args) -> int:
    from transforms.policy import load_policy

    p = load_policy(args.policy)
    print(f"{p.title}\n  id {p.id}, version {p.version}\n  file {p.path}\n  sha256 {p.sha256}")
    print(f"  k-anonymity: {p.k_anonymity}\n  allowed billing columns ({len(p.fields)}):")
    for f in p.fields:
        print(f"    {f.column:<22} {f.type:<14} analytics: {f.analytics:<18} {f.clause}")
    print(f"  retention catalog ({len(p.retention)} categories):")
    for r in p.retention:
        print(f"    {r.category:<24} keep {str(r.keep):<6} from {r.anchor:<30} then {r.action:<9} {r.clause}")
    return EXIT_OK


def cmd_profiles(args) -> int:
    from transforms.profiles import ALL_PROFILES

    from transforms.profiles import PAYMENTS_COLUMNS, PAYMENTS_PROFILE

    for name, prof in sorted(ALL_PROFILES.items()):
        print(f"{name}: {'header row' if prof.header else 'no header'}, {len(prof.columns)} known columns")
        print(f"    feeds: {', '.join(sorted(prof.mapping))}")
    print(f"{PAYMENTS_PROFILE}: header row, {len(PAYMENTS_COLUMNS)} columns (payments / invoice-status extract)")
    print(f"    feeds: invoices zone ({', '.join(PAYMENTS_COLUMNS)})")
    return EXIT_OK


def cmd_retention(args) -> int:
    from datetime import date

    from transforms.lake import Lake
    from transforms.policy import load_policy
    from transforms.pseudonymize import load_keyring
    from transforms.retention import sweep

    policy = load_policy(args.policy)
    keyring = load_keyring(os.environ, demo=args.demo)
    result = sweep(Lake.at(args.lake), policy, keyring, date.fromisoformat(args.as_of), dry_run=args.dry_run,
                   progress=_progress(args.quiet))
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
    from transforms import holds
    from transforms.lake import Lake

    lake = Lake.at(args.lake)
    if args.hold_command == "list":
        found = holds.list_holds(lake, active_only=args.active)
        for h in found:
            state = "active" if h.active else f"released {h.released_at:%Y-%m-%d} by {h.released_by}"
            print(f"{h.hold_id}  {state:<30} placed {h.placed_at:%Y-%m-%d} by {h.placed_by}: {h.reason}")
            print(f"    scope: {h.scope_text()}")
        print(f"{len(found)} hold(s)")
        return EXIT_OK
    if args.hold_command == "release":
        h = holds.release(lake, args.hold_id, released_by=args.by, reason=args.reason)
        print(f"{h.hold_id} released; its rows are due at the next retention sweep")
        return EXIT_OK
    from transforms.policy import load_policy
    from transforms.pseudonymize import load_keyring

    policy = load_policy(args.policy)
    keyring = load_keyring(os.environ, demo=args.demo)
    h = holds.place(lake, policy, keyring, reason=args.reason, placed_by=args.by, dataset=args.dataset,
                    date_from=_as_date(args.date_from), date_to=_as_date(args.date_to), subscriber=args.subscriber,
                    account=args.account, subscriber_token=args.subscriber_token, key_id=args.key_id)
    print(f"{h.hold_id} placed: {h.scope_text()}")
    return EXIT_OK


def _as_date(text: str | None):
    from datetime import date

    return date.fromisoformat(text) if text else None


COMMANDS = {"run": cmd_run, "retention": cmd_retention, "hold": cmd_hold, "verify": cmd_verify, "summary": cmd_summary, "report": cmd_report, "lookup": cmd_lookup, "policy": cmd_policy, "profiles": cmd_profiles}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import duckdb

    from transforms.holds import HoldError
    from transforms.policy import PolicyError
    from transforms.pseudonymize import KeyConfigError
    from transforms.retention import RetentionError

    try:
        return COMMANDS[args.command](args)
    except PolicyError as exc:
        print(f"cdr-audit: bad policy: {exc}", file=sys.stderr)
    except (HoldError, RetentionError) as exc:
        print(f"cdr-audit: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, HoldError) else EXIT_FAILED
    except KeyConfigError as exc:
        print(f"cdr-audit: pseudonymization key: {exc}", file=sys.stderr)
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        print(f"cdr-audit: {exc}", file=sys.stderr)
    except duckdb.IOException as exc:
        # Typically: another process holds the audit store for writing.
        print(f"cdr-audit: cannot open the audit store ({str(exc).splitlines()[0]})", file=sys.stderr)
    except KeyboardInterrupt:
        print("cdr-audit: interrupted; re-run the same command to finish the night", file=sys.stderr)
        return 130
    return EXIT_FAILED


def entry_point() -> None:
    """Console script: exit without interpreter teardown once output is flushed.

    With great_expectations and duckdb_engine loaded, DuckDB's nanobind binding
    prints ~40 "leaked instance DuckDBPyType" lines at teardown (upstream; the
    objects are DuckDB's own type constants). Harmless, but it makes a clean run
    look broken. Every file and connection is closed when main() returns.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry_point()
