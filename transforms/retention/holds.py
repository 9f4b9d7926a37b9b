"""Legal holds: a dispute, an unpaid claim, litigation or an authority order stops deletion (docs/design.md §3).

A hold has a reason, who placed it, and a scope: any of a data set, a date range
and a subject (a subscriber's number or an account). The subject is never stored
as its value: it is kept as its keyed token under every HMAC key held when the
hold is placed (`subject_tokens`), so the audit store holds no number and the
retention sweep can still find the subject's rows in billing (by re-deriving
tokens), in analytics and roaming (tokens), and in invoices.

Holds live in the audit store (`legal_holds`); placing and releasing one is
chained into the audit log. A released hold stops holding at the next sweep.
"""

from __future__ import annotations

import re
import uuid
from datetime import date

from transforms.audit_store import LogEvent, insert, logged_change, now_utc, reading, select, writing
from transforms.audit_store.tables import LegalHold
from transforms.lake import Lake
from transforms.policy import Policy
from transforms.privacy.keys import KeyRing
from transforms.privacy.redact import IDENTIFIER_IN_TEXT, carries_identifier
from transforms.privacy.tokens import TOKEN_BYTES, derive_tokens, tokens_of, tokens_text

# The identifier kind a hold's subject is tokenized as (the kind analytics and the sweep tokenize it as).
_TOKEN_KIND = {"subscriber": "msisdn", "account": "account"}
_HOLD_ID = re.compile(r"H-[0-9a-f]{12}")


class HoldError(ValueError):
    """A hold request that cannot be carried out; the message never repeats a subject's value."""


class Hold(LegalHold):
    """A `legal_holds` row, with what the sweep and the command line ask of it."""

    @property
    def active(self) -> bool:
        return self.released_at is None

    @property
    def tokens(self) -> dict[str, str]:
        """The subject's token under each key held when the hold was placed: {key id: hex token}."""
        return tokens_of(self.subject_tokens)

    def scope_text(self) -> str:
        """The scope in words, without the subject's tokens."""
        parts = [f"data set {self.dataset}" if self.dataset else "every data set"]
        if self.date_from or self.date_to:
            parts.append(f"dates {self.date_from or '…'} to {self.date_to or '…'}")
        if self.subject_kind:
            parts.append(f"one {self.subject_kind} (keys {', '.join(sorted(self.tokens))})")
        return "; ".join(parts)


def subject_tokens(kind: str, value: str, keyring: KeyRing, policy: Policy) -> dict[str, str]:
    """The subject's token under every key held: numbers as in analytics (E.164), accounts as 'account:<id>'."""
    return derive_tokens(value, _TOKEN_KIND[kind], keyring, policy.operator)


def place(lake: Lake, policy: Policy, keyring: KeyRing, *, reason: str, placed_by: str,
          dataset: str | None = None, date_from: date | None = None, date_to: date | None = None,
          subscriber: str | None = None, account: str | None = None,
          subscriber_token: str | None = None, key_id: str | None = None) -> Hold:
    """Record a new hold and log it; returns it (with its id)."""
    reason, placed_by = (reason or "").strip(), (placed_by or "").strip()
    if not reason or not placed_by:
        raise HoldError("a hold needs a reason and who places it (--reason, --by)")
    if carries_identifier(reason):
        raise HoldError(f"the reason {IDENTIFIER_IN_TEXT}")
    datasets = set(policy.personal_datasets)
    if dataset is not None and dataset not in datasets:
        raise HoldError(f"unknown data set {dataset!r}; the policy's data sets are {', '.join(sorted(datasets))}")
    if date_from and date_to and date_from > date_to:
        raise HoldError("--from is after --to")
    given = [x for x in (subscriber, account, subscriber_token) if x]
    if len(given) > 1:
        raise HoldError("give one subject: --subscriber, --account or --subscriber-token")
    kind, tokens = None, {}
    if subscriber:
        kind, tokens = "subscriber", subject_tokens("subscriber", subscriber, keyring, policy)
    elif account:
        kind, tokens = "account", subject_tokens("account", account, keyring, policy)
    elif subscriber_token:
        if not re.fullmatch(f"[0-9a-fA-F]{{{2 * TOKEN_BYTES}}}", subscriber_token) or not key_id:
            raise HoldError(f"--subscriber-token takes the {2 * TOKEN_BYTES} hex digits of a token, with --key-id"
                            " naming its key")
        kind, tokens = "subscriber", {key_id: subscriber_token.lower()}
    if not (dataset or date_from or date_to or kind):
        raise HoldError("a hold needs a scope: a data set, a date range or a subject (or several)")
    hold = Hold(hold_id=f"H-{uuid.uuid4().hex[:12]}", reason=reason, placed_by=placed_by, placed_at=now_utc(),
                dataset=dataset, date_from=date_from, date_to=date_to, subject_kind=kind,
                subject_tokens=tokens_text(tokens) if kind else None)
    placed = LogEvent(f"hold:{hold.hold_id}:placed", placed_by, "hold_placed", hold.hold_id,
                      {"scope": hold.scope_text(), "reason": reason})
    with writing(lake) as con, logged_change(con, lake, policy, placed, hold.placed_at):
        insert(con, [hold])
    return hold


def release(lake: Lake, policy: Policy, hold_id: str, *, released_by: str, reason: str) -> Hold:
    """Release an active hold: what it held becomes due at the next sweep."""
    if not _HOLD_ID.fullmatch(hold_id or ""):
        raise HoldError("a hold id looks like H-0123456789ab")
    if not (released_by or "").strip() or not (reason or "").strip():
        raise HoldError("releasing a hold needs who releases it and why (--by, --reason)")
    if carries_identifier(reason):
        raise HoldError(f"the reason {IDENTIFIER_IN_TEXT}")
    with writing(lake) as con:
        found = _read(con, "WHERE hold_id = ?", [hold_id])
        if not found:
            raise HoldError(f"no hold {hold_id}")
        if not found[0].active:
            raise HoldError(f"hold {hold_id} was already released on {found[0].released_at:%Y-%m-%d}")
        at = now_utc()
        released = LogEvent(f"hold:{hold_id}:released", released_by.strip(), "hold_released", hold_id,
                            {"reason": reason.strip()})
        with logged_change(con, lake, policy, released, at):
            con.execute("UPDATE legal_holds SET released_by = ?, released_at = ?, release_reason = ?"
                        " WHERE hold_id = ?", [released_by.strip(), at, reason.strip(), hold_id])
        return _read(con, "WHERE hold_id = ?", [hold_id])[0]


def list_holds(lake: Lake, *, active_only: bool = False) -> list[Hold]:
    if not lake.audit_db.exists():
        return []
    with reading(lake) as con:
        return _read(con, "WHERE released_at IS NULL" if active_only else "", [])


def _read(con, where: str, params: list) -> list[Hold]:
    # `where` is one of the constant clauses above; values are bound.
    return select(con, Hold, f"{where} ORDER BY placed_at, hold_id", params)
