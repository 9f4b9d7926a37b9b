"""Purpose-bound tokens: a separate HMAC key per purpose, derived from each key held (docs/design.md §11).

Rows made for one purpose must not be joinable to rows made for another: the marketing profiles (policy
§3.4 ¶5, `consent.profiling_purpose`) are read by marketers, the analytics zone by analysts, and a shared
token would let either pair the other's rows with their own. Each HMAC key therefore yields a purpose key,
``HMAC-SHA256(secret, "cdr-audit purpose:<purpose>")``, under the same key id (so a row still says which
key made it, and a rotation rotates both), and tokens are made with it exactly as `tokens.token` and
`tokens.token_sql` make them. Without the secret the two tokens of one subscriber cannot be linked.
"""

from __future__ import annotations

import hmac

from transforms.policy import Policy
from transforms.privacy.keys import HmacKey, KeyRing
from transforms.privacy.numbers import normalize
from transforms.privacy.tokens import token

PURPOSE_LABEL = "cdr-audit purpose:"
NUMBER_KIND = "msisdn"          # the subscriber a consent names is a number (the register's E.164)


def purpose_key(key: HmacKey, purpose: str) -> HmacKey:
    """The key tokens for `purpose` are made with: derived from `key`, same key id."""
    return HmacKey(key.key_id, hmac.digest(key.secret, f"{PURPOSE_LABEL}{purpose}".encode(), "sha256"))


def purpose_keyring(keyring: KeyRing, purpose: str) -> KeyRing:
    """Every key held, each as its purpose key (current first, then the retired ones)."""
    return KeyRing(purpose_key(keyring.current, purpose), tuple(purpose_key(k, purpose) for k in keyring.retired))


def marketing_keyring(keyring: KeyRing, policy: Policy) -> KeyRing:
    """The key ring of the marketing profiles (`consent.profiling_purpose`)."""
    return purpose_keyring(keyring, policy.consent.profiling_purpose)


def marketing_tokens(number: str, keyring: KeyRing, policy: Policy) -> dict[str, str]:
    """A subscriber's marketing token under every key held: {key id: hex} (how a subject-access finder
    finds them in `marketing/`). `number` in any spelling; it is normalized to E.164 first."""
    norm = normalize(number, NUMBER_KIND, policy.operator)
    return {k.key_id: token(k, NUMBER_KIND, norm) for k in marketing_keyring(keyring, policy).keys}
