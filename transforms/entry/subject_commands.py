"""`cdr-audit subject request|list|extend|export`: the register of data-subject requests (policy §6; docs/design.md
§12) and a subscriber's copy of their data, printed for a terminal. The subject's number or IMSI is read from the
command line and never printed back: what is shown is the request id, the right, dates, key ids and row counts.
"""

from __future__ import annotations

import getpass
import os
from datetime import date

from transforms.entry.exit_codes import EXIT_OK


def _keyring(args):
    from transforms.privacy.keys import load_keyring

    return load_keyring(os.environ, demo=getattr(args, "demo", False))


def cmd_subject(args) -> int:
    from transforms.lake import Lake
    from transforms.policy import load_policy
    from transforms.subjects import requests

    if args.subject_command == "export":
        return _export(args)
    if args.subject_command == "index":
        return _index(args)
    policy = load_policy(args.policy)
    lake = Lake.at(args.lake)
    today = date.fromisoformat(args.today) if args.today else requests.local_today(policy)
    if args.subject_command == "list":
        return _print_list(requests.list_requests(lake, include_closed=args.all), today, args.all)
    by = args.by or _login()
    if args.subject_command == "fulfil":
        return _fulfil(args, lake, policy, by, today)
    if args.subject_command == "lift":
        from transforms.subjects.fulfil import lift

        r = lift(lake, policy, args.request_id, reason=args.reason, lifted_by=by)
        print(f"{r.request_id} ({r.subject_right}): restriction lifted (restricted since {r.restricted_at:%Y-%m-%d});"
              " the next nightly run processes the subscriber again")
        return EXIT_OK
    if args.subject_command == "extend":
        r = requests.extend(lake, policy, args.request_id, to=date.fromisoformat(args.to), reason=args.reason,
                            extended_by=by, today=today)
        print(f"{r.request_id} ({r.subject_right}) extended: last day to answer {r.extended_to} (first {r.due});"
              f" the subscriber is told, with the reasons, by {r.due} ({policy.subject_rights.clause})")
        return EXIT_OK
    kind, value = ("msisdn", args.msisdn) if args.msisdn is not None else ("imsi", args.imsi)
    r = requests.record(lake, policy, _keyring(args), right=args.right, kind=kind, value=value,
                        received=date.fromisoformat(args.received), reference=args.reference, recorded_by=by,
                        today=today)
    rules = policy.subject_rights
    print(f"recorded a request for {r.subject_right} ({r.clause}), received {r.received}: answer by {r.due}"
          f" ({rules.answer_within} from receipt); extendable, the subscriber told by {r.due}, to"
          f" {rules.latest_extension(r.received)} at most")
    print(f"  subject: one {kind}, kept as tokens under key(s) {', '.join(sorted(r.tokens))}")
    print(r.request_id)          # alone on the last line: scripts take the id from here
    return EXIT_OK


def _fulfil(args, lake, policy, by, today) -> int:
    """`subject fulfil`: the answer goes to --out; the terminal gets the zones' counts and actions only."""
    from transforms.subjects.fulfil import fulfil

    result = fulfil(lake, policy, _keyring(args), args.request_id, args.out, scope=args.scope, answered_by=by,
                    today=today, say=print)
    print(f"{result.request_id} ({result.right}{', ' + result.scope if result.scope else ''}) fulfilled:")
    for z in result.zones:
        goes = f"  goes on {z.goes_on}" if z.goes_on else ""
        print(f"  {z.zone:<11} {z.rows:>10,} row(s)  {z.action}{goes}")
    if result.proofs:
        print(f"  proof: {sum(p.ok for p in result.proofs)} of {len(result.proofs)} rewritten file(s) hold none of "
              "the erased identifiers")
    if result.restricted:
        print("  restricted: the nightly run leaves the subscriber out of analytics, marketing and roaming")
    print(f"answer written to {result.out} (owner-only)")
    return EXIT_OK


def _export(args) -> int:
    """`subject export`: the copy is written to --out; the terminal gets counts and the folder only."""
    from transforms.lake import Lake
    from transforms.policy import load_policy
    from transforms.subjects.export import export_subject
    from transforms.subjects.subject import Subject

    policy = load_policy(args.policy)
    keyring = _keyring(args)
    value, kind = (args.msisdn, "msisdn") if args.msisdn else (args.imsi, "imsi")
    subject = Subject.of(value, kind, keyring, policy)
    result = export_subject(Lake.at(args.lake), policy, keyring, subject, args.out, right=args.right)
    print(f"{args.right} export of one subscriber ({kind}), searched with {len(subject.tokens)} key(s):"
          f" {', '.join(sorted(subject.tokens))}")
    for z in result.zones:
        print(f"  {z.zone:<11} {z.rows:>10,} row(s)  {z.action}")
    print(f"written to {result.out} (owner-only) in {result.seconds:.1f} s")
    return EXIT_OK


def _index(args) -> int:
    """`subject index`: the missing subject indexes, under the sweep's lease (a sweep rewrites the parts)."""
    import os

    from transforms.lake import Lake
    from transforms.lake.commit import remove_tree
    from transforms.lake.connection import connect
    from transforms.policy import load_policy
    from transforms.privacy.subject_index import build_missing
    from transforms.retention.sweep import SWEEP_LEASE
    from transforms.runs import held

    policy = load_policy(args.policy)
    keyring = _keyring(args)
    lake = Lake.at(args.lake)
    with held(lake, SWEEP_LEASE, f"subject-index-{os.getpid()}"):
        work = lake.root / "_work" / f"subject-index-{os.getpid()}"
        con = connect(work)
        try:
            built = build_missing(con, lake, policy, keyring)
        finally:
            con.close()
            remove_tree(work)
    for zone, n in built.written.items():
        print(f"  {zone:<11} {n:>6,} index(es) written")
    print(f"{sum(built.written.values()):,} subject index(es) written, {built.skipped:,} part(s) without identifiers")
    return EXIT_OK


def _print_list(found: list, today: date, everything: bool) -> int:
    """Requests by their last day to answer, earliest first, with the days left as of `today`."""
    print(f"{'request':<15} {'right':<14} {'received':<10}  {'last day':<10}  {'days left':>9}  status")
    for r in found:
        left = r.days_left(today) if r.is_open else None
        note = " (overdue)" if left is not None and left < 0 else ""
        extended = " (extended)" if r.extended_to else ""
        print(f"{r.request_id:<15} {r.subject_right:<14} {r.received!s:<10}  {r.due_effective!s:<10}"
              f"  {'—' if left is None else left:>9}  {r.status}{extended if r.status != 'extended' else ''}{note}")
    which = "request(s)" if everything else "open request(s)"
    print(f"{len(found)} {which} as of {today}")
    return EXIT_OK


def _login() -> str | None:
    """Who runs the command, when the system knows (recorded as who recorded or extended a request)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):         # no login name and no passwd entry (a bare container)
        return None
