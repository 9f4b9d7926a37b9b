"""`cdr-audit`: run the nightly audit and inspect the audit store without Airflow.

Exit codes: 0 the command completed (a run with quarantined rows or rejected
files has completed); 1 it could not (bad policy, unreadable landing or lake,
audit store busy for longer than CDR_AUDIT_STORE_WAIT_S, or broken chain); 2
bad usage; 3 the run completed but at least one file failed with an internal
error (see `source_files`); 4 and 5 `formats check`: the file fits with rejects
/ no format fits; 6 `run`: another live run holds the night (nothing was done);
7 `run`: a zone of the lake is readable beyond the policy's access (nothing was
done; `cdr-audit permissions --apply` fixes it, `--allow-open-zones` runs anyway
and the audit log says so); 8 `run`: the run completed but nothing landed (the
landing folder held no file to read). A regular source the night read no file of
is a warning on stderr, not an exit code (docs/design.md §9).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

from transforms.entry.commands import COMMANDS, EXIT_FAILED, EXIT_NIGHT_BUSY, EXIT_USAGE, EXIT_ZONES_OPEN


def _date(text: str) -> str:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _override(text: str) -> tuple[str, str]:
    pattern, sep, value = text.partition("=")
    if not sep or not pattern or not value:
        raise argparse.ArgumentTypeError("expected PATTERN=VALUE, e.g. 'pbx_*.csv=asterisk_master_21'")
    return pattern, value


def _held_lease_command(sub, name: str, break_flag: str, *, help: str, description: str, break_help: str) -> None:
    """A command that prints who holds a cross-host lease and, with `break_flag`, breaks it (docs/design.md §6)."""
    parser = sub.add_parser(name, help=help, description=description)
    parser.add_argument("--lake", required=True, type=Path)
    parser.add_argument(break_flag, action="store_true", help=break_help)


def build_parser() -> argparse.ArgumentParser:
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
                    "in LAKE/audit/audit.duckdb. Files already audited (the same content, also gzipped or with CRLF"
                    " endings) are skipped; a re-run of the night reads the files it refused whole again.")
    run.add_argument("--landing", required=True, type=Path, help="folder holding the night's extracts")
    run.add_argument("--lake", required=True, type=Path, help="lake root (zones and audit store live here)")
    run.add_argument("--date", required=True, type=_date, help="the night, YYYY-MM-DD (the run's logical date)")
    run.add_argument("--policy", type=Path, default=None, help="policy YAML (default: policy/a1_slovenia.yaml)")
    run.add_argument("--run-id", default=None, help="run id (default: cli__DATE__UTC-TIMESTAMP__PID_RANDOM)")
    run.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                     help="when another live run holds the night, wait up to SECONDS for it (default 0: exit 6 "
                          "at once, naming the run that holds it and since when)")
    run.add_argument("--formats", type=Path, default=None, metavar="DIR",
                     help="a folder of your own source formats (YAML) beside the built-in ones; a format with a "
                          "built-in's name replaces it (also CDR_AUDIT_FORMATS_DIR)")
    run.add_argument("--format", action="append", type=_override, default=[], metavar="PATTERN=FORMAT",
                     help="force a source format for files matching a glob (`cdr-audit formats list`; "
                          "'payments' for a payments extract, 'consents' for a consent extract)")
    run.add_argument("--timezone", action="append", type=_override, default=[], metavar="PATTERN=ZONE",
                     help="the time zone of times without an offset in files matching a glob (default: the "
                          "format's own)")
    run.add_argument("--demo", action="store_true",
                     help="allow the built-in demo HMAC key when no key is configured (demo and tests only; "
                          "also CDR_AUDIT_DEMO_MODE=1). Real runs take the key from CDR_AUDIT_HMAC_KEY + "
                          "CDR_AUDIT_HMAC_KEY_ID (or CDR_AUDIT_HMAC_KEY_FILE)")
    run.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    run.add_argument("--allow-open-zones", action="store_true",
                     help="run even when a zone of the lake is readable beyond the policy's access (by default the "
                          "run refuses, exit 7); the audit log records that it was told to, with the zones and counts")

    verify = sub.add_parser("verify", help="recompute the audit-log hash chain and check it against its anchors",
                            description="Recompute every link of audit_log and hold it to every anchor in "
                                        "LAKE/audit/anchors/ (HMACs checked under CDR_AUDIT_ANCHOR_KEY when set); "
                                        "exit 1 if any entry was changed, removed or reordered, the log's tail is "
                                        "missing, or an anchor was edited. With --permissions: instead, hold every "
                                        "folder and file of the lake to the policy's access (who may read each zone) "
                                        "and print a line per zone; exit 1 when any entry is looser than declared. "
                                        "Reads only: needs no more than read access to the lake.")
    verify.add_argument("--lake", required=True, type=Path)
    verify.add_argument("--permissions", action="store_true",
                        help="check the lake's folder and file modes against the policy's access instead of the log")
    verify.add_argument("--policy", type=Path, default=None, help="policy YAML (its access; with --permissions)")

    perm = sub.add_parser(
        "permissions", help="show the lake's modes against the policy's access, or (--apply) set them",
        description="Who may read each zone comes from the policy's access: owner-only zones (folders 0700, files "
                    "0600), group zones (folders 2750 with the role's Unix group, files 0640), the lake root 0711. "
                    "Without --apply: the same table as `verify --permissions`. With --apply: give every folder and "
                    "file of the lake its zone's modes and group (a lake written by an earlier version, or opened "
                    "by hand), record that in the audit log, then show the table; exit 1 when an entry is still "
                    "open (e.g. owned by another account).")
    perm.add_argument("--lake", required=True, type=Path)
    perm.add_argument("--apply", action="store_true", help="set the modes (and groups, where the host has them)")
    perm.add_argument("--policy", type=Path, default=None, help="policy YAML (default: policy/a1_slovenia.yaml)")

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
    summ.add_argument("--policy", type=Path, default=None)

    rep = sub.add_parser(
        "report", help="compliance report: last night at a glance, as text and as one HTML file",
        description="Print the last night's outcome, files and rows, top violations, retention falling due within "
                    "the policy's reporting horizons, active legal holds, roaming states and the audit-log chain; "
                    "write the same as "
                    "a self-contained HTML page (charts included, no script, no network) to "
                    "LAKE/reports/compliance-<night>.html and LAKE/reports/index.html. Counts and names only, "
                    "no personal data. Exit 1 when there is no audit store or the chain is broken.")
    rep.add_argument("--lake", required=True, type=Path)
    rep.add_argument("--policy", type=Path, default=None, help="policy YAML (its reporting horizons)")
    rep.add_argument("--out", type=Path, default=None,
                     help="write the HTML to this file instead of LAKE/reports/ (index.html untouched)")

    snap = sub.add_parser(
        "snapshot", help="write a private copy of the audit store, to open in your own DuckDB",
        description="Copy LAKE/audit/audit.duckdb to FILE (outside the lake), consistent as of now: the writer "
                    "waits only for the copy. Open the copy as you like (duckdb -readonly FILE); never open the "
                    "live store, which would keep the nightly run from writing it. Views over the roaming zone "
                    "read its window files where the lake is, and answer only where you may read them.")
    snap.add_argument("--lake", required=True, type=Path)
    snap.add_argument("--out", required=True, type=Path, help="the copy's file (replaced when it exists)")

    _held_lease_command(
        sub, "writer-lease", "--break-lease",
        help="who holds the audit store's writer lease; break it once its holder is known gone",
        description="Every session that writes LAKE/audit/audit.duckdb holds LAKE/audit/.writer.lease, naming its "
                    "host, boot, process and since when (docs/design.md §6). A lease of this host whose process is "
                    "gone is taken over by the next writer; one of another host never is, since its holder may be "
                    "alive behind a network that does not answer. Without --break-lease: print the holder. With "
                    "it: remove the lease whoever holds it, and record that in the audit log. Check first that the "
                    "holder's process is gone (or its host down): breaking a live writer's lease lets two write.",
        break_help="remove the lease (its holder is known gone)")
    _held_lease_command(
        sub, "leases-lock", "--break-lock",
        help="who holds the lock of the runs' leases; break it once its holder is known gone",
        description="Every change of a night's lease or a file's claim is made holding LAKE/audit/_leases/"
                    ".lock.lease, naming its host, boot, process and since when, for milliseconds (docs/design.md "
                    "§10). A lock of this host whose process is gone is taken over by the next run; one of another "
                    "host never is. Without --break-lock: print the holder. With it: remove the lock whoever holds "
                    "it, and record that in the audit log. Check first that the holder's process is gone (or its "
                    "host down): breaking a live holder's lock lets two runs take one night.",
        break_help="remove the lock (its holder is known gone)")

    fmts = sub.add_parser(
        "formats", help="the source formats: list them, show one, or check a file against them",
        description="Source formats are data (YAML): the built-ins in formats/ and your own folder "
                    "(--formats DIR or CDR_AUDIT_FORMATS_DIR). `check` tells which format a file is and why, "
                    "what happens to each of its columns, how many of its first records parse per canonical "
                    "column, and the quarantine reasons by count; never a value. Exit codes of check: 0 the "
                    "file fits a format and every record checked parses, 4 it fits with rejects, 5 the file would "
                    "be refused (no format fits, or its format's reader gives up on it).")
    fsub = fmts.add_subparsers(dest="formats_command", required=True, metavar="ACTION")
    for action, text in (("list", "list every format and how it is recognised"),
                         ("show", "show one format: columns, recognition, what each canonical column is made of"),
                         ("check", "check one file against the formats")):
        a = fsub.add_parser(action, help=text)
        if action == "show":
            a.add_argument("name")
        if action == "check":
            a.add_argument("file", type=Path)
            a.add_argument("--format", dest="format_name", help="check against this format instead of detecting one")
            a.add_argument("--timezone", help="time zone of times without an offset (default: the format's)")
            a.add_argument("--records", type=int, default=1000, help="records checked (default 1000)")
        a.add_argument("--formats", type=Path, default=None, metavar="DIR", help="your own formats folder")
        a.add_argument("--policy", type=Path, default=None)

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
    rel.add_argument("--policy", type=Path, default=None)
    lst = hsub.add_parser("list", help="list holds")
    lst.add_argument("--lake", required=True, type=Path)
    lst.add_argument("--active", action="store_true", help="only holds not released")
    _subject_parser(sub)
    return parser


def _subject_parser(sub) -> None:
    """`subject request|list|extend|export` (policy §6; docs/design.md §12)."""
    from transforms.policy.model import SUBJECT_RIGHTS

    subj = sub.add_parser(
        "subject", help="data-subject requests (§6): record one, list what is due, extend one, export a copy",
        description="A subscriber's request to exercise a right of §6 is answered within the policy's "
                    "subject_rights.answer_within of receipt (the same date a month later, or the last day of a "
                    "shorter month), extendable within that first period, with reasons told to the subscriber, to "
                    "at most answer_within + extension_at_most after receipt. The subject is stored only as its "
                    "keyed tokens; it is never printed.")
    ssub = subj.add_subparsers(dest="subject_command", required=True, metavar="ACTION")
    req = ssub.add_parser("request", help="record a request; prints its id alone on the last line")
    req.add_argument("--right", required=True, choices=SUBJECT_RIGHTS)
    who = req.add_mutually_exclusive_group(required=True)
    who.add_argument("--msisdn", help="the subscriber's number in any spelling (040 123 456, +386 40 123 456, "
                                      "0038640123456); stored as tokens only")
    who.add_argument("--imsi", help="the subscriber's IMSI; stored as tokens only")
    req.add_argument("--received", required=True, type=_date, help="the day the request was received, YYYY-MM-DD")
    req.add_argument("--reference", help="the case, e.g. a ticket or letter number (no numbers of people)")
    req.add_argument("--demo", action="store_true", help="allow the demo key (demo and tests only)")
    ext = ssub.add_parser("extend", help="move an open request's last day, within its first period")
    ext.add_argument("request_id")
    ext.add_argument("--to", required=True, type=_date, help="the new last day to answer, YYYY-MM-DD")
    ext.add_argument("--reason", required=True, help="the reasons the subscriber is told (no numbers of people)")
    lst = ssub.add_parser("list", help="open requests by their last day to answer, with the days left")
    lst.add_argument("--all", action="store_true", help="closed requests too")
    exp = ssub.add_parser(
        "export", help="write one subscriber's copy of their data (policy §6.1, §6.5) to a new folder",
        description="The subscriber's data in every zone, found from the keyed tokens of their number or IMSI under "
                    "every key held (across key rotations), written to a new or empty folder only this account may "
                    "read (0700, files 0600): per zone a CSV and a JSON file, summary.json and index.html (purposes, "
                    "categories, recipients, retention, source, the right to complain). Rows where they were only "
                    "the other party of someone else's communication carry none of that person's identifiers. "
                    "Prints the rows per zone and the folder, never a value.")
    exp.add_argument("--lake", required=True, type=Path)
    ident = exp.add_mutually_exclusive_group(required=True)
    ident.add_argument("--msisdn", help="the subscriber's number in any spelling (040…, +38640…, 0038640…)")
    ident.add_argument("--imsi", help="the subscriber's IMSI")
    exp.add_argument("--out", required=True, type=Path, help="a new or empty folder for the copy")
    exp.add_argument("--right", choices=("access", "portability"), default="access",
                     help="the right exercised: access (§6.1, default) or portability (§6.5)")
    exp.add_argument("--policy", type=Path, default=None)
    exp.add_argument("--demo", action="store_true", help="allow the demo key (demo and tests only)")
    ful = ssub.add_parser(
        "fulfil", help="answer a recorded request (the request's tokens find the subject; no value is taken)",
        description="Writes the subscriber's answer to a new or empty folder (the copy of their data, summary.json "
                    "with per zone the rows and the action taken, its clause and the day the data go, index.html) "
                    "and records the request as fulfilled. Erasure erases what the law lets go (with the retention "
                    "sweep's rewrite, journal and byte proof) and restricts what it keeps; restriction restricts "
                    "every zone until `subject lift`; an objection is to direct marketing (consents withdrawn, "
                    "marketing rows erased) or to processing on legitimate interest (analytics restricted until "
                    "decided). Prints counts and actions, never a value.")
    ful.add_argument("request_id")
    ful.add_argument("--out", required=True, type=Path, help="a new or empty folder for the answer")
    ful.add_argument("--scope", choices=("direct_marketing", "legitimate_interest"),
                     help="an objection's scope (§6.6): direct marketing, or processing on legitimate interest")
    ful.add_argument("--demo", action="store_true", help="allow the demo key (demo and tests only)")
    lift = ssub.add_parser("lift", help="lift a restriction (§6.4), with the reason the subscriber is told")
    lift.add_argument("request_id")
    lift.add_argument("--reason", required=True, help="why it is lifted (no numbers of people)")
    idx = ssub.add_parser(
        "index", help="write the subject index of every billing and analytics part that has none",
        description="A search for one subscriber reads the subject index beside each part file (the part's "
                    "distinct tokens) and scans only the parts that list the subscriber; a part without one is "
                    "scanned whole. This writes the missing ones: lakes from before the index, parts the retention "
                    "sweep rewrote. Waits for no one: it refuses while a retention sweep runs. Prints counts only.")
    idx.add_argument("--lake", required=True, type=Path)
    idx.add_argument("--policy", type=Path, default=None)
    idx.add_argument("--demo", action="store_true", help="allow the demo key (demo and tests only)")
    for action in (req, ext, lst, ful, lift):
        action.add_argument("--lake", required=True, type=Path)
        action.add_argument("--policy", type=Path, default=None)
        action.add_argument("--today", type=_date, default=None,
                            help="the day taken as today (default: today in the policy's operator.local_timezone)")
    for action in (req, ext, ful, lift):
        action.add_argument("--by", help="who records it (default: the login name)")


def main(argv: list[str] | None = None) -> int:
    # Owner-only from the start: whatever this process makes (DuckDB, Parquet, GX) is readable by nobody else
    # until a commit point gives it its zone's modes (transforms/lake/permissions.py, docs/design.md §2).
    from transforms.lake.permissions import owner_only_umask

    owner_only_umask()
    args = build_parser().parse_args(argv)
    import duckdb

    from transforms.audit_store import StoreError
    from transforms.formats import FormatError
    from transforms.lake.permissions import ZonesOpen
    from transforms.policy import PolicyError
    from transforms.privacy.keys import KeyConfigError
    from transforms.retention.catalog import RetentionError
    from transforms.retention.holds import HoldError
    from transforms.runs import NightBusy
    from transforms.subjects.export import ExportError
    from transforms.subjects.subject import SubjectError
    from transforms.subjects.requests import SubjectRequestError

    try:
        return COMMANDS[args.command](args)
    except ZonesOpen as exc:
        print(f"cdr-audit: {exc}; nothing was done", file=sys.stderr)
        return EXIT_ZONES_OPEN
    except PolicyError as exc:
        print(f"cdr-audit: bad policy: {exc}", file=sys.stderr)
    except FormatError as exc:
        print(f"cdr-audit: bad source format: {exc}", file=sys.stderr)
    except (HoldError, SubjectRequestError, RetentionError, ExportError, SubjectError) as exc:
        print(f"cdr-audit: {exc}", file=sys.stderr)
        return EXIT_FAILED if isinstance(exc, RetentionError) else EXIT_USAGE
    except StoreError as exc:
        print(f"cdr-audit: {exc}", file=sys.stderr)
    except NightBusy as exc:
        print(f"cdr-audit: {exc}; nothing was done", file=sys.stderr)
        return EXIT_NIGHT_BUSY
    except KeyConfigError as exc:
        print(f"cdr-audit: pseudonymization key: {exc}", file=sys.stderr)
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        print(f"cdr-audit: {exc}", file=sys.stderr)
    except duckdb.IOException as exc:
        # E.g. a lake file DuckDB cannot read; the audit store's lock is waited for (StoreBusy above).
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
