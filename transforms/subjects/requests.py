"""The register of data-subject requests (policy §6, `subject_rights`; docs/design.md §12).

A subscriber may ask for access, rectification, erasure, restriction, portability or objection. Each request is
answered within `subject_rights.answer_within` of receipt — the last day is the same date a period later, or the
last day of a shorter month — and may be extended, the subscriber told within that first period with the reasons,
to at most `answer_within + extension_at_most` after receipt (both counted from receipt by the same civil
arithmetic as retention, `Period.after`). Extending again is allowed while the first period runs, each time
later and never past that limit.

The subject (a number in any spelling the pipeline normalizes, or an IMSI) is stored only as its keyed tokens
under every key held when the request is recorded (`subject_tokens`), as legal holds keep theirs: the audit
store holds no number, and the tokens still find the subject's rows across a key rotation. Recording and
extending are chained into the audit log, with the request id and right, never the subject.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from transforms.audit_store import LogEvent, insert, logged_change, now_utc, reading, select, writing
from transforms.audit_store.tables import REQUEST_SUBJECT_KINDS, SubjectRequestRow
from transforms.lake import Lake
from transforms.policy import Operator, Policy
from transforms.privacy.keys import KeyRing
from transforms.privacy.numbers import normalize
from transforms.privacy.redact import IDENTIFIER_IN_TEXT, carries_identifier
from transforms.privacy.tokens import derive_tokens, tokens_of, tokens_text

OPEN_STATUSES = ("open", "extended")
_REQUEST_ID = re.compile(r"R-[0-9a-f]{12}")
# What a subject's identifier must look like once normalized: E.164 is a '+', a country code that does not start
# with 0 and at most 15 digits in all (ITU-T E.164 §6); an IMSI is 14 or 15 digits (3GPP TS 23.003 §2.2: MCC, MNC,
# MSIN; the billing suite's imsi_shape). Anything else would give tokens that match nobody.
_SHAPES = {"msisdn": re.compile(r"\+[1-9][0-9]{6,14}"), "imsi": re.compile(r"[0-9]{14,15}")}
_WORDS = {"msisdn": "a phone number (national, 00 or + form)", "imsi": "an IMSI (14 or 15 digits)"}


class SubjectRequestError(ValueError):
    """A request that cannot be recorded or changed; the message never repeats a subject's value."""


class SubjectRequest(SubjectRequestRow):
    """A `subject_requests` row, with what the command line and the report ask of it."""

    @property
    def tokens(self) -> dict[str, str]:
        """The subject's token under each key held when the request was recorded: {key id: hex token}."""
        return tokens_of(self.subject_tokens)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def due_effective(self) -> date:
        """The last day to answer: as extended, else as first set."""
        return self.extended_to or self.due

    def days_left(self, today: date) -> int:
        """Days from `today` to the last day to answer (0: today is the last day; negative: overdue)."""
        return (self.due_effective - today).days


def local_today(policy: Policy, now: datetime | None = None) -> date:
    """Today where the operator receives requests (`operator.local_timezone`): a request's dates are local days."""
    return (now or now_utc()).astimezone(ZoneInfo(policy.operator.local_timezone)).date()


def subject_tokens(value: str, kind: str, keyring: KeyRing, operator: Operator) -> dict[str, str]:
    """The subject's token under every key held, as analytics tokenizes it; refuses a value that is not a
    number or an IMSI without repeating it."""
    if kind not in REQUEST_SUBJECT_KINDS:
        raise SubjectRequestError(f"a request's subject is one of {', '.join(REQUEST_SUBJECT_KINDS)}")
    if not _SHAPES[kind].fullmatch(normalize(value or "", kind, operator)):
        raise SubjectRequestError(f"the {kind} given is not {_WORDS[kind]}; nothing was recorded")
    return derive_tokens(value, kind, keyring, operator)


def _typed_text(text: str | None, what: str, *, required: bool) -> str | None:
    """Free text a person typed, trimmed; refused when missing (if required) or carrying an identifier."""
    text = (text or "").strip()
    if not text:
        if required:
            raise SubjectRequestError(f"{what} is required")
        return None
    if carries_identifier(text):
        raise SubjectRequestError(f"{what} {IDENTIFIER_IN_TEXT}")
    return text


def record(lake: Lake, policy: Policy, keyring: KeyRing, *, right: str, kind: str, value: str, received: date,
           reference: str | None = None, recorded_by: str | None = None, today: date | None = None) -> SubjectRequest:
    """Record a request received on `received` and log it; returns it with its id and last day to answer."""
    rules = policy.subject_rights
    if right not in {r.right for r in rules.rights}:
        raise SubjectRequestError(f"unknown right {right!r}; the rights of §6 are"
                                  f" {', '.join(r.right for r in rules.rights)}")
    today = today or local_today(policy)
    if received > today:
        raise SubjectRequestError(f"the request cannot have been received on {received}, after today ({today})")
    reference = _typed_text(reference, "the reference", required=False)
    tokens = subject_tokens(value, kind, keyring, policy.operator)
    by = (recorded_by or "").strip() or None
    request = SubjectRequest(
        request_id=f"R-{uuid.uuid4().hex[:12]}", subject_right=right, clause=rules.clause_of(right), subject_kind=kind,
        subject_tokens=tokens_text(tokens), received=received, due=rules.due_on(received), reference=reference,
        status="open", recorded_at=now_utc(), recorded_by=by)
    recorded = LogEvent(
        f"subject:{request.request_id}:recorded", by or "cli", "subject_request_recorded", request.request_id,
        {"right": right, "clause": request.clause, "received": received, "due": request.due, "subject_kind": kind,
         "key_ids": sorted(tokens)})
    with writing(lake) as con, logged_change(con, lake, policy, recorded, request.recorded_at):
        insert(con, [request])
    return request


def extend(lake: Lake, policy: Policy, request_id: str, *, to: date, reason: str, extended_by: str | None = None,
           today: date | None = None) -> SubjectRequest:
    """Move an open request's last day to `to`, with the reasons the subscriber is told, and log it.

    Only while the first period runs (today on or before `due`: the subscriber must be told within it), only
    later than the last day as it stands, and at most `subject_rights.latest_extension(received)`.
    """
    check_id(request_id)
    reason = _typed_text(reason, "the reason for the extension", required=True)
    today = today or local_today(policy)
    by = (extended_by or "").strip() or None
    with writing(lake) as con:
        r = one_request(con, request_id)
        if not r.is_open:
            raise SubjectRequestError(f"request {request_id} is {r.status}; only an open request is extended")
        if today > r.due:
            raise SubjectRequestError(
                f"the first period of request {request_id} ended on {r.due}: an extension is told to the subscriber"
                f" within it ({policy.subject_rights.clause})")
        latest = policy.subject_rights.latest_extension(r.received)
        if to > latest:
            raise SubjectRequestError(
                f"{to} is past the furthest the last day may move: {latest} (received {r.received} + "
                f"{policy.subject_rights.answer_within} + at most {policy.subject_rights.extension_at_most})")
        if to <= r.due_effective:
            raise SubjectRequestError(f"{to} does not move the last day to answer ({r.due_effective}) later")
        at = now_utc()
        extended = LogEvent(
            f"subject:{request_id}:extended:{to}", by or "cli", "subject_request_extended", request_id,
            {"right": r.subject_right, "received": r.received, "due": r.due, "was": r.due_effective,
             "extended_to": to, "reason": reason})
        with logged_change(con, lake, policy, extended, at):
            con.execute("UPDATE subject_requests SET extended_to = ?, extension_reason = ?, extended_at = ?,"
                        " status = 'extended' WHERE request_id = ?", [to, reason, at, request_id])
        return one_request(con, request_id)


def check_id(request_id: str) -> None:
    if not _REQUEST_ID.fullmatch(request_id or ""):
        raise SubjectRequestError("a request id looks like R-0123456789ab")


def one_request(con, request_id: str) -> SubjectRequest:
    """The request `request_id` in the store `con`; refused when there is none."""
    found = _read(con, "WHERE request_id = ?", [request_id])
    if not found:
        raise SubjectRequestError(f"no request {request_id}")
    return found[0]


def list_requests(lake: Lake, *, include_closed: bool = False) -> list[SubjectRequest]:
    """The requests by their last day to answer, earliest first (open ones only unless `include_closed`)."""
    if not lake.audit_db.exists():
        return []
    with reading(lake) as con:
        return _read(con, "" if include_closed else "WHERE status IN ('open', 'extended')", [])


def _read(con, where: str, params: list) -> list[SubjectRequest]:
    # `where` is one of the constant clauses above; values are bound.
    return select(con, SubjectRequest, f"{where} ORDER BY coalesce(extended_to, due), received, request_id", params)
