"""A data subject as a rights request holds one: the keyed tokens of one identifier, never its value
(policy §6.1, §6.5; docs/design.md §4).

A request is stored as tokens only, so everything that finds or exports a subject works from a `Subject`.
The raw value is seen once, when the request is made (`Subject.of`): it is tokenized under every key held,
as a legal hold's subject is (`transforms.retention.holds`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from transforms.policy import Policy
from transforms.privacy.keys import HmacKey, KeyRing
from transforms.privacy.tokens import TOKEN_BYTES, derive_tokens

# The identifiers a subscriber can be asked for by: a number or an IMSI (the policy's `identifier` kinds
# that single out a subscriber and are tokenized; an IMEI names a device, not its owner).
SUBJECT_KINDS = ("msisdn", "imsi")
_TOKEN = re.compile(f"[0-9a-f]{{{2 * TOKEN_BYTES}}}")


class SubjectError(ValueError):
    """A subject that cannot be searched for; the message never repeats an identifier's value."""


@dataclass(frozen=True)
class Subject:
    """One subscriber by one identifier: its kind and its token under each key it was derived with."""

    kind: str                                   # msisdn | imsi
    tokens: dict[str, str] = field(hash=False)  # key id -> token (hex)

    def __post_init__(self) -> None:
        if self.kind not in SUBJECT_KINDS:
            raise SubjectError(f"a subject is a number or an IMSI ({', '.join(SUBJECT_KINDS)}), not {self.kind!r}")
        if not self.tokens:
            raise SubjectError("a subject needs its token under at least one key")
        for key_id, tok in self.tokens.items():
            if not key_id or not isinstance(tok, str) or not _TOKEN.fullmatch(tok):
                raise SubjectError(f"the token under key {key_id!r} is not {2 * TOKEN_BYTES} lower-case hex digits")

    @classmethod
    def of(cls, value: str, kind: str, keyring: KeyRing, policy: Policy) -> "Subject":
        """The subject of a raw number or IMSI: its token under every key held (the value is not kept)."""
        if kind not in SUBJECT_KINDS:
            raise SubjectError(f"a subject is a number or an IMSI ({', '.join(SUBJECT_KINDS)}), not {kind!r}")
        if not (value or "").strip():
            raise SubjectError(f"an empty {kind} names nobody")
        return cls(kind, derive_tokens(value, kind, keyring, policy.operator))

    def held_keys(self, keyring: KeyRing) -> list[HmacKey]:
        """The keys of the ring the subject has a token under: only those can tokenize a zone's raw values."""
        return [k for k in keyring.keys if k.key_id in self.tokens]
