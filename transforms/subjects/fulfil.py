"""Answering a recorded request (policy §6; docs/design.md §12): `cdr-audit subject fulfil`.

The request's stored tokens identify the subject: no raw value is taken. Every right is answered with the
subject's copy (`export`: per zone CSV + JSON, index.html) and `summary.json`
`{"request_id", "right", "zones": {zone: rows}, "actions": {zone: {"action", "clause", "goes_on", ...}}}`; the
request becomes `fulfilled` with the same counts and actions (JSON) and one audit-log entry (ids, counts and
actions, never a value or token). Per right:

access, portability  the copy. Portability (§6.5) covers processing on consent or contract done by automated
                     means: every zone is given, each marked whether §6.5 covers it (`PORTABLE`); the others
                     are given under §6.1.
rectification        the copy and the statement that call records are records of events as the network saw them
                     and are not changed; the subscriber may add a supplementary statement (§6.2).
erasure (§6.3)       analytics, marketing and quarantine rows about the subject are `erased` (further use,
                     consent, data-quality review: no legal obligation keeps them); the consent register's
                     events are erased except a withdrawal of every purpose, recorded by the erasure at its own
                     instant, so no older grant an extract delivers again can revive processing (§3.4 ¶3: the
                     latest recorded counts; GDPR Art. 7(3), 17(1)(b)). Billing (until paid / the claim's
                     limitation), invoices (retention category `invoice`) and roaming aggregates
                     (`roaming_aggregate`) are `restricted` until the due date the retention catalog gives them (`retention.due`, the sweep's own logic). An active
                     legal hold on the subject turns `erased` into `restricted` for what it covers. Rows go by the
                     retention sweep's rewrite, journal and byte proof (`retention.rewrite`, `proof`). Other
                     subscribers' analytics and marketing rows that name the subject as their other party stay,
                     with the subject blanked (`retention.blank`; `rows_blanked`, `cells_blanked`).
restriction (§6.4)   every zone `restricted` from now until `cdr-audit subject lift`.
objection (§6.6)     scope `direct_marketing`: a withdrawal of every direct-marketing purpose
                     (`consent.direct_marketing_purposes`) and the marketing rows erased (and blanked where
                     others' profiles name the subject); scope
                     `legitimate_interest`: the analytics zone restricted until decided (§6.4, 4th indent), then
                     lifted with the decision.

A restriction (and what an erasure keeps) takes effect in the nightly run: the plan hands the restricted
subjects' tokens to the analytics, marketing and roaming steps (`privacy.restricted`).

Kill-safe: the subject's journal (`audit/subjects/<request>/journal.json`) keeps what was found first and every
file rewrite; a re-run finishes the answer and gives the same counts. A request is answered once: a second
fulfil is refused (its answer stands in `subject_requests`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path

from transforms.audit_store import LogEvent, logged_change, now_utc, writing
from transforms.consents.register import PARTITION as CONSENT_PARTITION
from transforms.consents.register import ZONE as CONSENTS
from transforms.lake import Lake
from transforms.lake.commit import commit_file, remove_tree
from transforms.lake.connection import connect, execute
from transforms.lake.permissions import make_dirs
from transforms.lake.records import write_json
from transforms.policy import Policy
from transforms.privacy.keys import KeyRing
from transforms.privacy.numbers import e164_sql, numbering_params
from transforms.privacy.tokens import KEY_ID_COLUMN
from transforms.retention.blank import BLANKED, blank, define_held, plan_blanking, prove_blanked
from transforms.retention.catalog import check_catalog
from transforms.retention.holds import list_holds
from transforms.retention.journal import Journal
from transforms.retention.plan import Job, plan_sweep
from transforms.retention.proof import Proof, prove
from transforms.retention.rewrite import rewrite
from transforms.retention.rows import SERVED_NUMBER, row_day, subject_key
from transforms.retention.sweep import SWEEP_LEASE
from transforms.runs import held
from transforms.subjects.export import INDEX, RIGHTS as EXPORT_RIGHTS, SUMMARY, SubjectExport, export_subject, \
    render_index
from transforms.subjects.find import ROLE, SERVED, ZONES, ZoneFound, find_subject
from transforms.subjects.requests import (SubjectRequest, SubjectRequestError, _typed_text, check_id, local_today,
                                          one_request)
from transforms.subjects.subject import Subject

OBJECTION_SCOPES = ("direct_marketing", "legitimate_interest")
# Erasure (§6.3): zones whose legal basis lets the subject's rows go now — further use (analytics, §3.3),
# consent (marketing, §3.4 ¶5; the register, less the withdrawals that honour the erasure), data-quality review
# of rejected rows that were never billed (quarantine, §3.2 ¶3). The others are kept by a legal obligation
# (billing, invoices, roaming) until the catalog's due date, restricted meanwhile.
ERASABLE = ("analytics", "marketing", "quarantine", CONSENTS)
# Portability (§6.5): processing on consent or contract, by automated means, of data the subscriber provided or
# that their use of the service produced. Billing rows (the contract's traffic data, ZEKom-2), invoices (the
# contract's payment state) and the consent register (consent) are; analytics (legitimate interest, further
# use), roaming (a legal entitlement of Reg. (EU) 2022/612, and derived), marketing profiles (derived by the
# operator, not provided) and quarantine (rejected rows, kept for data-quality review) are not.
PORTABLE = {"billing": "contract (§3.2 ¶3), automated", "invoices": "contract (§5 ¶1), automated",
            CONSENTS: "consent (§3.4), automated"}
# A restriction (and an objection on legitimate interest while it is decided) may be lifted; what an erasure
# keeps is restricted until the data go.
LIFTABLE = ("restriction", "objection")
_RECTIFICATION = (
    "Call detail records are records of events as the network saw them: who communicated with whom, when, for how "
    "long and through which cell. They are not changed, also on request, because they are the evidence the bill "
    "rests on (§3.2 ¶3). You may add a supplementary statement, which is kept with your request (§6.2).")


class FulfilError(SubjectRequestError):
    """A request that cannot be answered now; the message never repeats the subject's value."""


@dataclass(frozen=True)
class ZoneAnswer:
    """What the answer did in one zone: its action, the clause it rests on and the day the data go."""

    zone: str
    rows: int                       # rows of the subject found when the request was first answered
    action: str                     # exported | erased | restricted | withdrawn | unchanged | anonymous | absent
    clause: str
    goes_on: str | None             # the day the subject's data in the zone go (None: not by this answer)
    rows_erased: int = 0
    rows_restricted: int = 0
    hold_ids: tuple[str, ...] = ()
    note: str = ""
    # Other subscribers' rows that named the subject as their other party, kept with the subject blanked
    # (`retention.blank`): the rows, and the cells (marketing: named parties) blanked in them.
    rows_blanked: int = 0
    cells_blanked: int = 0

    def as_json(self) -> dict:
        out = {"action": self.action, "clause": self.clause, "goes_on": self.goes_on, "note": self.note}
        if self.rows_erased or self.rows_restricted:
            out.update(rows_erased=self.rows_erased, rows_restricted=self.rows_restricted)
        if self.rows_blanked:
            out.update(rows_blanked=self.rows_blanked, cells_blanked=self.cells_blanked)
        if self.hold_ids:
            out["hold_ids"] = list(self.hold_ids)
        return out


@dataclass(frozen=True)
class Fulfilment:
    request_id: str
    right: str
    scope: str | None
    out: Path
    zones: tuple[ZoneAnswer, ...]
    proofs: tuple[Proof, ...]
    withdrawals: int
    restricted: bool

    @property
    def counts(self) -> dict[str, int]:
        return {z.zone: z.rows for z in self.zones}

    @property
    def actions(self) -> dict[str, dict]:
        return {z.zone: z.as_json() for z in self.zones}


def fulfil(lake: Lake, policy: Policy, keyring: KeyRing, request_id: str, out: Path, *, scope: str | None = None,
           answered_by: str | None = None, today: date | None = None,
           say: Callable[[str], None] | None = None) -> Fulfilment:
    """Answer request `request_id` into `out` (see the module docstring)."""
    say = say or (lambda _m: None)
    request = _open_request(lake, request_id)
    right = request.subject_right
    if right == "objection" and scope not in OBJECTION_SCOPES:
        raise FulfilError(f"an objection is to {' or '.join(OBJECTION_SCOPES)}: give --scope")
    if right != "objection" and scope is not None:
        raise FulfilError(f"--scope is for an objection; request {request_id} is for {right}")
    today = today or local_today(policy)
    subject = Subject(request.subject_kind, request.tokens)
    run_id = f"subject-{request_id}"
    with held(lake, SWEEP_LEASE, run_id):       # no sweep rewrites the same files meanwhile
        journal = Journal(lake.zone("audit") / "subjects" / request_id / "journal.json", lake.root)
        journal.resume(say)
        exported = _export_once(lake, policy, keyring, subject, request, Path(out), journal)
        work = lake.work_dir(run_id)
        con = connect(work / "tmp")
        try:
            answers, proofs, withdrawals = _act(con, lake, policy, keyring, subject, request, scope, today, exported,
                                                journal, work, say)
        finally:
            con.close()
            remove_tree(work)
        if any(not p.ok for p in proofs):
            raise FulfilError(f"request {request_id}: an erased identifier is still in a rewritten file; the request "
                              "stays open (see the journal)")
        restricted = right == "restriction" or (right == "objection" and scope == "legitimate_interest") or (
            right == "erasure" and any(z.action == "restricted" for z in answers))
        result = Fulfilment(request_id, right, scope, Path(out), tuple(answers), tuple(proofs), withdrawals,
                            restricted)
        _write_answer(result, exported, policy)
        _record(lake, policy, request, result, answered_by)
        journal.close()
    return result


def _open_request(lake: Lake, request_id: str) -> SubjectRequest:
    check_id(request_id)
    if not lake.audit_db.exists():
        raise FulfilError(f"no request {request_id}")
    with writing(lake) as con:
        r = one_request(con, request_id)
    if not r.is_open:
        when = r.fulfilled_at or r.refused_at
        raise FulfilError(f"request {request_id} was {r.status} on {when:%Y-%m-%d %H:%M} UTC: a request is answered "
                          "once, and its answer stands in subject_requests; nothing was done")
    return r


def _export_once(lake, policy, keyring, subject, request, out: Path, journal: Journal) -> SubjectExport:
    """The subject's copy as the lake held it when the request was first answered; a re-run after a kill keeps
    that copy (and its counts) rather than one of what the erasure left."""
    done = journal.doc.get("exported")
    if done:
        if Path(done["out"]).resolve() != out.resolve():
            raise FulfilError(f"request {request.request_id} was being answered into {done['out']}: re-run with that "
                              "--out to finish it")
        zones = tuple(ZoneFound(**z) for z in done["zones"])
        return SubjectExport(out, done["right"], request.request_id, zones, 0.0, done["columns"])
    right = request.subject_right if request.subject_right in EXPORT_RIGHTS else "access"
    made = export_subject(lake, policy, keyring, subject, out, right=right, request_id=request.request_id)
    journal.keep(exported={"out": str(out), "right": right, "columns": made.columns,
                           "zones": [{**z.__dict__, "table": None} for z in made.zones]})
    return made


def _act(con, lake, policy, keyring, subject, request, scope, today, exported, journal, work, say):
    """Per zone what the right asks; erasures done (journaled, proved). Returns (answers, proofs, withdrawals)."""
    right = request.subject_right
    found = {z.zone: z for z in exported.zones}
    if right in ("access", "portability", "rectification"):
        return [_exported(z, policy, right) for z in exported.zones], [], 0
    if right == "restriction" or (right == "objection" and scope == "legitimate_interest"):
        zones = ZONES if right == "restriction" else ("analytics",)
        clause = request.clause if right == "restriction" else \
            f"{policy.subject_rights.clause_of('objection')}; {policy.subject_rights.clause_of('restriction')}, 4th indent"
        return [_restricted(z, clause) if z.zone in zones else _unchanged(z, request.clause)
                for z in exported.zones], [], 0
    # erasure, or an objection to direct marketing
    find_subject(con, lake, policy, keyring, subject)
    purposes = policy.consent.purpose_names if right == "erasure" else policy.consent.direct_marketing_purposes
    withdrawals = _withdraw(con, lake, policy, request, purposes, journal)
    erasing = ERASABLE if right == "erasure" else ("marketing",)
    categories = check_catalog(lake, policy)
    plan_sweep(con, lake, policy, keyring, categories, list_holds(lake, active_only=True), today, say)
    _subject_rows(con, policy, request.request_id, [z for z in found if z in categories])
    jobs = _jobs(con, policy, categories, erasing, today)
    for i, job in enumerate(jobs, 1):
        say(f"[{i}/{len(jobs)}] {job.dataset}/{job.partition}: erasing {job.rows_removed:,} of {job.rows_before:,} rows")
        journal.note(rewrite(con, lake, policy, job, journal, work / "evidence"))
    proofs = [Proof(**p) for p in journal.prove(lambda done: prove(con, lake, policy, done))]
    blanked, blank_proofs = _blank_other_party(con, lake, policy, keyring, request, erasing, work, say)
    proofs += blank_proofs
    erased: dict[str, int] = {}
    for e in journal.done():
        erased[e["dataset"]] = erased.get(e["dataset"], 0) + e["rows_removed"]
    kept = {d: (rows, due, holds) for d, rows, due, holds in con.execute(
        "SELECT dataset, sum(rows), max(due_on), list_sort(list_distinct(flatten(list(hold_ids))))"
        " FROM subject_rows GROUP BY dataset").fetchall()}
    answers = []
    for z in exported.zones:
        if z.action in ("anonymous", "absent"):
            answers.append(_as_found(z))
        elif z.zone in erasing:
            answers.append(_erased(z, categories, kept, erased, today, withdrawals, right, policy))
        elif right == "erasure":
            answers.append(_kept_by_law(z, categories, kept))
        elif z.zone == CONSENTS:
            answers.append(ZoneAnswer(z.zone, z.rows, "withdrawn", policy.subject_rights.clause_of("objection"),
                                      None, note=f"{withdrawals} withdrawal(s) of the direct-marketing purposes "
                                                 f"({', '.join(purposes)}) recorded ({policy.consent.latest_counts})"))
        else:
            answers.append(_unchanged(z, policy.subject_rights.clause_of("objection")))
    return [_with_blanked(a, blanked) for a in answers], proofs, withdrawals


# Zones whose other subscribers' rows may name the subject, blanked when the zone is erased (`retention.blank`).
BLANKED_ZONES = {"analytics": "subject_tokens", "marketing": "marketing_tokens"}


def _blank_other_party(con, lake, policy, keyring, request, erasing, work, say):
    """The subject blanked where they are the other party of the rows of other subscribers, in the erased zones
    that have them (`retention.blank`): journaled apart from the removals (`blanking.json`: a file is rewritten
    by both), after them; each file proved. Returns ({zone: (rows, cells)}, proofs)."""
    present = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    zones = {z: t for z, t in BLANKED_ZONES.items() if z in erasing and t in present}
    journal = Journal(lake.zone("audit") / "subjects" / request.request_id / "blanking.json", lake.root)
    journal.resume(say)
    if zones:
        held = define_held(con)
        clause = policy.subject_rights.clause_of(request.subject_right)
        keys = {k.key_id for k in keyring.keys}
        for zone, tokens in zones.items():
            jobs = plan_blanking(con, lake, policy, zone, tokens, held, clause, keys)
            for i, job in enumerate(jobs, 1):
                say(f"[{i}/{len(jobs)}] {zone}/{job.partition}: blanking the subscriber in {job.rows_blanked:,} of "
                    f"{job.rows:,} rows of others")
                journal.note(blank(con, lake, policy, job, tokens, held, journal, work / "evidence-blanked"))
    proofs = [Proof(**p) for p in journal.prove(lambda done: prove_blanked(con, lake, policy, done))]
    journal.close()
    counts: dict[str, tuple[int, int]] = {}
    for e in journal.done():
        rows, cells = counts.get(e["dataset"], (0, 0))
        counts[e["dataset"]] = (rows + e["rows_blanked"], cells + e["cells_blanked"])
    return counts, proofs


def _with_blanked(a: ZoneAnswer, blanked: dict[str, tuple[int, int]]) -> ZoneAnswer:
    rows, cells = blanked.get(a.zone, (0, 0))
    if not rows:
        return a
    what = "NULL in" if a.zone == "analytics" else "counted, no longer named, in"
    note = (f"{a.note}; " if a.note else "") + (
        f"other subscribers' rows naming the subscriber as their other party stay theirs: the subscriber is "
        f"{what} {cells} place(s) of {rows} row(s)")
    return replace(a, rows_blanked=rows, cells_blanked=cells, note=note)


def _as_found(z: ZoneFound) -> ZoneAnswer:
    return ZoneAnswer(z.zone, z.rows, z.action, "", None, note=z.note)


def _exported(z: ZoneFound, policy: Policy, right: str) -> ZoneAnswer:
    if z.action != "exported":
        return _as_found(z)
    clause = policy.subject_rights.clause_of(right)
    if right == "portability":
        covered = PORTABLE.get(z.zone)
        note = (f"portable under §6.5: {covered}" if covered else
                "not covered by §6.5 (not on consent or contract, or derived by the operator); given under §6.1")
        return ZoneAnswer(z.zone, z.rows, "exported", clause, None, note=note)
    if right == "rectification":
        return ZoneAnswer(z.zone, z.rows, "exported", clause, None, note="records of events are not changed (§6.2)")
    return ZoneAnswer(z.zone, z.rows, "exported", clause, None, note=z.note)


def _restricted(z: ZoneFound, clause: str) -> ZoneAnswer:
    if z.action != "exported":
        return _as_found(z)
    return ZoneAnswer(z.zone, z.rows, "restricted", clause, None, rows_restricted=z.rows,
                      note="kept, not processed further until the restriction is lifted")


def _unchanged(z: ZoneFound, clause: str) -> ZoneAnswer:
    if z.action != "exported":
        return _as_found(z)
    return ZoneAnswer(z.zone, z.rows, "unchanged", clause, None, note="the request does not reach this zone")


def _erased(z, categories, kept, erased, today, withdrawals, right, policy) -> ZoneAnswer:
    rows, due, holds = kept.get(z.zone, (0, None, []))
    clause = policy.subject_rights.clause_of(right)
    n_erased = erased.get(z.zone, 0)
    note = ""
    if z.zone == CONSENTS:
        note = (f"kept: {withdrawals} withdrawal(s) of every purpose recorded by this request, so that no earlier "
                f"grant revives processing ({policy.consent.latest_counts}; GDPR Art. 7(3), 21(3))")
    if holds:
        rule = categories.get(z.zone)
        return ZoneAnswer(z.zone, z.rows, "restricted", f"{clause}; legal hold; {rule.clause if rule else ''}",
                          due.isoformat() if due else None, rows_erased=n_erased, rows_restricted=int(rows or 0),
                          hold_ids=tuple(holds), note=(note + "; " if note else "") +
                          "kept while the legal hold is active, then by the retention catalog")
    return ZoneAnswer(z.zone, z.rows, "erased" if z.rows else "nothing_held", clause,
                      today.isoformat() if z.rows else None, rows_erased=n_erased, note=note)


def _kept_by_law(z, categories, kept) -> ZoneAnswer:
    rule = categories.get(z.zone)
    if not z.rows or rule is None:
        return ZoneAnswer(z.zone, z.rows, "nothing_held", rule.clause if rule else "", None)
    rows, due, holds = kept.get(z.zone, (z.rows, None, []))
    return ZoneAnswer(z.zone, z.rows, "restricted", f"{rule.clause}; {rule.legal_basis}",
                      due.isoformat() if due else None, rows_restricted=int(rows or 0), hold_ids=tuple(holds),
                      note="kept for the legal obligation only, not processed further, and deleted on its due date")


def _withdraw(con, lake: Lake, policy: Policy, request: SubjectRequest, purposes, journal: Journal) -> int:
    """Record a withdrawal of each of `purposes` for each of the subject's numbers (as their own rows spell them,
    in E.164) as consent register events at one instant, once per request (a re-run finds the file)."""
    at = journal.doc.get("withdrawn_at")
    if at is None:
        at = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")
        journal.keep(withdrawn_at=at)
    month = at[:7]
    final = lake.zone(CONSENTS) / f"{CONSENT_PARTITION}={month}" / f"part-{request.request_id}.parquet"
    numbers = _subject_numbers(con, policy)
    if final.exists():
        return con.execute("SELECT count(*) FROM read_parquet($p)", {"p": str(final)}).fetchone()[0]
    if not numbers:
        return 0
    tmp = final.parent / f".{final.name}.tmp"
    make_dirs(final.parent)
    n = execute(con, """COPY (
        SELECT md5($rid || ':' || number || ':' || purpose) AS record_id, number AS subscriber_number, purpose,
               'withdrawn' AS status, CAST($at AS TIMESTAMP) AS recorded_at, $channel AS channel,
               CAST(NULL AS VARCHAR) AS source_file_sha256, CAST(NULL AS BIGINT) AS source_row,
               CAST($today AS DATE) AS as_of, $rid AS run_id
        FROM (SELECT unnest($numbers::VARCHAR[]) AS number) CROSS JOIN (SELECT unnest($purposes::VARCHAR[]) AS purpose)
        ORDER BY ALL) TO $tmp (FORMAT parquet)""",
                {"rid": request.request_id, "at": at, "channel": policy.consent.request_channel, "today": at[:10],
                 "numbers": numbers, "purposes": list(purposes), "tmp": str(tmp)}).fetchone()[0]
    commit_file(tmp, final)
    return n


def _subject_numbers(con, policy: Policy) -> list[str]:
    """The subject's numbers in E.164, from their own rows found (billing as served, invoices, the register)."""
    present = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    branches = []
    if "found_billing" in present:
        branches.append(f"SELECT {e164_sql(f'CAST({SERVED_NUMBER} AS VARCHAR)')} AS n FROM found_billing"
                        f" WHERE {ROLE} = '{SERVED}'")
    for table in ("found_invoices", "found_consents"):
        if table in present:
            branches.append(f"SELECT subscriber_number FROM {table}")
    if not branches:
        return []
    return [n for (n,) in execute(con, f"SELECT DISTINCT n FROM ({' UNION ALL '.join(branches)}) t(n)"
                                       " WHERE n IS NOT NULL ORDER BY n", numbering_params(policy.operator)).fetchall()]


def _subject_rows(con, policy: Policy, request_id: str, datasets: list[str]) -> None:
    """`subject_rows` (dataset, file, part, key, rows, due_on, hold_ids): the sweep's keys (`key_due`) that are the
    subject's, with every active hold that covers them whether due or not (an erasure acts before the due date).

    The subject's keys are the sweep's own subject keys (`retention.rows.subject_key`) over the rows found; the
    register's withdrawals this request recorded are not the subject's to erase."""
    con.execute("CREATE OR REPLACE TEMP TABLE subject_key_of (dataset VARCHAR, key VARCHAR)")
    for dataset in datasets:
        table = f"found_{dataset}"
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?",
                           [table]).fetchone()[0]:
            continue
        cols = [d[0] for d in con.execute(f"SELECT * FROM {table} LIMIT 0").description]
        source, where = table, "true"
        if ROLE in cols:
            where = f"{ROLE} = '{SERVED}'"      # rows about the subject; other-party rows are someone else's
        if dataset == "analytics":
            # An analytics key is its row's served number's token: a row found by the subject's IMSI whose served
            # number is another's (the forwarded leg of the subject's SIM: served is the forwarded-to party) has
            # that other subscriber's key, and taking it would erase all of their rows in the file. Such a row
            # stays theirs, the subject's token in it blanked (`retention.blank`).
            where += (f" AND ({KEY_ID_COLUMN}, {SERVED_NUMBER}) IN"
                      " (SELECT key_id, token FROM subject_tokens WHERE kind = 'msisdn')")
        if dataset in ("billing", "quarantine"):
            number = SERVED_NUMBER if "direction" in cols else "NULL"
            if "subscriber_number" in cols:
                number = f"coalesce({number}, subscriber_number)"
            source = f"(SELECT *, {e164_sql(f'CAST({number} AS VARCHAR)')} AS served_e164 FROM {table} WHERE {where})"
            if "night" in cols:
                source = f"(SELECT * REPLACE (CAST(night AS DATE) AS night) FROM {source})"
            where = "served_e164 IS NOT NULL"
        if dataset == CONSENTS:
            where = "coalesce(run_id, '') <> $rid"
        key = subject_key(dataset, cols + ["served_e164"] if dataset in ("billing", "quarantine") else cols)
        if dataset == "quarantine":
            key = f"coalesce(served_e164, '') || '|' || CAST({row_day(cols)} AS VARCHAR)"
        execute(con, f"INSERT INTO subject_key_of SELECT DISTINCT $d, {key} FROM {source} WHERE {where}",
                {**numbering_params(policy.operator), "d": dataset, "rid": request_id})
    con.execute("""
        CREATE OR REPLACE TEMP TABLE subject_rows AS
        SELECT k.dataset, k.file, k.part, k.key, k.rows, k.due_on,
               coalesce(list(DISTINCT h.hold_id ORDER BY h.hold_id) FILTER (WHERE h.hold_id IS NOT NULL), [])
                   AS hold_ids
        FROM key_due k JOIN subject_key_of s ON s.dataset = k.dataset AND s.key = k.key
        LEFT JOIN hold_scope h
          ON (h.dataset IS NULL OR h.dataset = k.dataset)
         AND (h.date_from IS NULL OR k.day_to >= h.date_from)
         AND (h.date_to IS NULL OR k.day_from <= h.date_to)
         AND (h.any_subject OR h.number = k.number OR h.account = k.account
              OR (h.token = k.token AND h.key_id = k.key_id))
        GROUP BY ALL""")


def _jobs(con, policy: Policy, categories, erasing, today: date) -> list[Job]:
    """A rewrite per file holding the subject's rows of an erased zone that no hold covers; leaves `removal`."""
    con.execute("""CREATE OR REPLACE TEMP TABLE removal AS SELECT file, key FROM subject_rows
                   WHERE list_contains($zones, dataset) AND len(hold_ids) = 0""", {"zones": list(erasing)})
    rows = con.execute("""
        SELECT r.dataset, r.part, r.file, sum(r.rows) AS removed,
               (SELECT sum(k.rows) FROM key_due k WHERE k.file = r.file) AS before
        FROM subject_rows r WHERE list_contains($zones, r.dataset) AND len(r.hold_ids) = 0
        GROUP BY ALL ORDER BY ALL""", {"zones": list(erasing)}).fetchall()
    clause = policy.subject_rights.clause_of("erasure")
    return [Job(dataset=d, partition=part, category=categories[d].category, action="erased", file=f,
                rows_before=int(before), rows_removed=int(removed), due_on=today.isoformat(),
                legal_basis=policy.subject_rights.legal_basis, clause=clause) for d, part, f, removed, before in rows]


def _statement(result: Fulfilment, policy: Policy) -> list[str]:
    rules = policy.subject_rights
    if result.right == "rectification":
        return [_RECTIFICATION]
    if result.right == "erasure":
        return [f"Your request for erasure ({rules.clause_of('erasure')}) was carried out. Data kept only for the "
                "operator's further use, on your consent, or for data-quality review were erased; data the law "
                "obliges the operator to keep (the records your bill rests on, invoices, roaming aggregates) are "
                "restricted: kept only for that obligation, not processed otherwise, and deleted on the date given "
                "per zone in summary.json. Your consents are recorded as withdrawn for every purpose.",
                "The copy in this folder shows what was held when the request was answered."]
    if result.right == "restriction":
        return [f"Processing of your data is restricted ({rules.clause_of('restriction')}): your data are kept but not "
                "used for analytics, marketing or roaming assessments until the restriction is lifted; you are told "
                "before it is."]
    if result.right == "objection" and result.scope == "direct_marketing":
        return [f"Your objection to direct marketing ({rules.clause_of('objection')}) was carried out: every consent "
                "to a direct-marketing purpose is recorded as withdrawn and your marketing profiles were erased."]
    if result.right == "objection":
        return [f"Your objection ({rules.clause_of('objection')}) is being decided; meanwhile the analytics processing "
                f"of your data is restricted ({rules.clause_of('restriction')})."]
    return []


def _write_answer(result: Fulfilment, exported: SubjectExport, policy: Policy) -> None:
    """summary.json and index.html of the answer (over what the export wrote)."""
    shown = replace(exported, right=result.right, zones=tuple(
        replace(z, action=a.action, note=f"{z.note}; {a.note}" if a.note else z.note)
        for z, a in zip(exported.zones, result.zones, strict=True)))
    write_json(result.out / SUMMARY, {
        "request_id": result.request_id, "right": result.right, "scope": result.scope, "zones": result.counts,
        "actions": result.actions, "withdrawals": result.withdrawals,
        "policy": {"id": policy.id, "version": policy.version},
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    tmp = result.out / f".{INDEX}.tmp"
    tmp.write_text(render_index(shown, policy, _statement(result, policy)), encoding="utf-8")
    commit_file(tmp, result.out / INDEX)


def _record(lake: Lake, policy: Policy, request: SubjectRequest, result: Fulfilment, by: str | None) -> None:
    at = now_utc()
    by = (by or "").strip() or None
    files = {outcome: sum(p.outcome == outcome for p in result.proofs) for outcome in ("rewritten", "removed",
                                                                                       BLANKED)}
    event = LogEvent(f"subject:{request.request_id}:fulfilled", by or "cli", "subject_request_fulfilled",
                     request.request_id,
                     {"right": result.right, "scope": result.scope, "rows": result.counts,
                      "actions": {z.zone: z.action for z in result.zones},
                      "rows_erased": sum(z.rows_erased for z in result.zones), "files": files,
                      "rows_blanked": {z.zone: z.rows_blanked for z in result.zones if z.rows_blanked},
                      "cells_blanked": {z.zone: z.cells_blanked for z in result.zones if z.rows_blanked},
                      "identifiers_checked": sum(p.identifiers_checked for p in result.proofs),
                      "identifiers_found": sum(p.identifiers_found for p in result.proofs),
                      "withdrawals": result.withdrawals, "restricted": result.restricted})
    actions = {"scope": result.scope, **result.actions} if result.scope else result.actions
    with writing(lake) as con, logged_change(con, lake, policy, event, at):
        con.execute("UPDATE subject_requests SET status = 'fulfilled', fulfilled_at = ?, answered_by = ?,"
                    " zone_rows = ?, zone_actions = ?, restricted_at = ? WHERE request_id = ?",
                    [at, by, json.dumps(result.counts), json.dumps(actions, sort_keys=True),
                     at if result.restricted else None, request.request_id])


def lift(lake: Lake, policy: Policy, request_id: str, *, reason: str, lifted_by: str | None = None) -> SubjectRequest:
    """Lift a restriction (or the restriction of an objection on legitimate interest, once decided) and log it."""
    check_id(request_id)
    reason = _typed_text(reason, "the reason for lifting the restriction", required=True)
    by = (lifted_by or "").strip() or None
    with writing(lake) as con:
        r = one_request(con, request_id)
        if r.restricted_at is None:
            raise FulfilError(f"request {request_id} restricts nothing ({r.subject_right}, {r.status})")
        if r.lifted_at is not None:
            raise FulfilError(f"the restriction of request {request_id} was lifted on {r.lifted_at:%Y-%m-%d}")
        if r.subject_right not in LIFTABLE:
            raise FulfilError(f"request {request_id} is an {r.subject_right}: what it keeps is restricted until its "
                              "due date, and is not lifted")
        at = now_utc()
        event = LogEvent(f"subject:{request_id}:lifted", by or "cli", "subject_restriction_lifted", request_id,
                         {"right": r.subject_right, "restricted_at": r.restricted_at, "reason": reason})
        with logged_change(con, lake, policy, event, at):
            con.execute("UPDATE subject_requests SET lifted_at = ?, lifted_by = ?, lift_reason = ?"
                        " WHERE request_id = ?", [at, by, reason, request_id])
        return one_request(con, request_id)
