"""The HMAC keys that make subscriber tokens: where they come from, and the demo key's fence.

The key never sits in the repository or the audit store: it comes from the environment (`load_keyring`)
or an Airflow connection (`keyring_from_connection`). Each output records the id of the key that made it,
so keys can rotate; retired keys stay usable for lookups. A demo key exists for the demo and the tests
only and is refused otherwise (docs/design.md §4).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MIN_SECRET_BYTES = 32

ENV_KEY = "CDR_AUDIT_HMAC_KEY"
ENV_KEY_FILE = "CDR_AUDIT_HMAC_KEY_FILE"
ENV_KEY_ID = "CDR_AUDIT_HMAC_KEY_ID"
ENV_RETIRED_FILE = "CDR_AUDIT_HMAC_RETIRED_KEYS_FILE"
ENV_DEMO = "CDR_AUDIT_DEMO_MODE"   # "1": this is the demo or a test, the demo key may be used

# The demo key is public (it is right here): tokens made with it are NOT pseudonymous.
# Only `demo=True` (the demo and the tests) may use it; everything else refuses it.
DEMO_KEY_ID = "demo-key-not-secret"
_DEMO_SECRET = hashlib.sha256(b"cdr-audit demo key - public, not secret, demo and tests only").digest()

_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


class KeyConfigError(ValueError):
    """The HMAC key configuration is missing or unusable. Messages never contain a secret."""


@dataclass(frozen=True)
class HmacKey:
    """One HMAC-SHA256 key: a public id (recorded with every output) and its secret."""

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not _KEY_ID.fullmatch(self.key_id):
            raise KeyConfigError("HMAC key id must be 1-64 characters of letters, digits, '.', '_', '-'"
                                 " starting with a letter or digit")
        if not isinstance(self.secret, bytes) or len(self.secret) < MIN_SECRET_BYTES:
            raise KeyConfigError(f"HMAC key {self.key_id!r}: secret must be at least {MIN_SECRET_BYTES} bytes"
                                 f" ({2 * MIN_SECRET_BYTES} hex characters)")


@dataclass(frozen=True)
class KeyRing:
    """The key new tokens are made with, and retired keys still held for lookups across rotation."""

    current: HmacKey
    retired: tuple[HmacKey, ...] = ()

    def __post_init__(self) -> None:
        ids = [k.key_id for k in self.keys]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise KeyConfigError(f"HMAC key id(s) given twice in the key ring: {', '.join(dupes)}")

    @property
    def keys(self) -> tuple[HmacKey, ...]:
        """Current key first, then the retired ones."""
        return (self.current, *self.retired)


def demo_keyring() -> KeyRing:
    """The public demo key ring (demo and tests only)."""
    return KeyRing(HmacKey(DEMO_KEY_ID, _DEMO_SECRET))


def load_keyring(environ: Mapping[str, str], *, demo: bool = False) -> KeyRing:
    """The key ring from the environment; the demo key only when in demo mode and no key is configured.

    Demo mode: `demo=True` (the CLI's --demo) or ``CDR_AUDIT_DEMO_MODE=1`` in `environ`.

    Current key: ``CDR_AUDIT_HMAC_KEY`` (hex) or ``CDR_AUDIT_HMAC_KEY_FILE`` (a file holding the
    hex secret), with ``CDR_AUDIT_HMAC_KEY_ID``. Retired keys: ``CDR_AUDIT_HMAC_RETIRED_KEYS_FILE``,
    one ``key_id:hexsecret`` per line (blank lines and ``#`` comments ignored).
    """
    demo = demo or environ.get(ENV_DEMO) == "1"
    hex_value = (environ.get(ENV_KEY) or "").strip()
    key_file = (environ.get(ENV_KEY_FILE) or "").strip()
    key_id = (environ.get(ENV_KEY_ID) or "").strip()
    retired_file = (environ.get(ENV_RETIRED_FILE) or "").strip()
    if hex_value and key_file:
        raise KeyConfigError(f"both {ENV_KEY} and {ENV_KEY_FILE} are set: configure the HMAC key one way only")
    if hex_value or key_file:
        if not key_id:
            raise KeyConfigError(f"{ENV_KEY_ID} is not set: every HMAC key needs an id")
        if key_file:
            hex_value = _read_secret_file(Path(key_file), ENV_KEY_FILE)
            where = f"{ENV_KEY_FILE} ({key_file})"
        else:
            where = ENV_KEY
        current = HmacKey(key_id, _unhex(hex_value, where))
    elif key_id:
        raise KeyConfigError(f"{ENV_KEY_ID} is set but no secret: set {ENV_KEY} or {ENV_KEY_FILE}")
    elif demo:
        current = demo_keyring().current
    else:
        raise KeyConfigError(
            f"no HMAC key configured: set {ENV_KEY_ID} and {ENV_KEY} (hex, at least {MIN_SECRET_BYTES} bytes)"
            f" or {ENV_KEY_FILE}, or use the Airflow connection. The demo key is for the demo and tests only.")
    retired = _read_retired_file(Path(retired_file)) if retired_file else ()
    return _checked(KeyRing(current, retired), demo)


def keyring_from_connection(login: str | None, password: str | None, extra_json: str | Mapping | None,
                            *, demo: bool = False) -> KeyRing:
    """The key ring from an Airflow connection: login = key id, password = hex secret,
    extra ``{"retired": {"<key id>": "<hex secret>", ...}}``. Pure; the DAG passes the fields."""
    if not (login or "").strip() or not (password or "").strip():
        raise KeyConfigError("HMAC connection: login (key id) and password (hex secret) are both required")
    key_id = login.strip()
    current = HmacKey(key_id, _unhex(password, f"HMAC connection password (key {key_id!r})"))
    extra: object = extra_json or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra.strip() else {}
        except ValueError:
            raise KeyConfigError("HMAC connection extra: not valid JSON") from None
    if not isinstance(extra, Mapping):
        raise KeyConfigError('HMAC connection extra: expected a JSON object like {"retired": {...}}')
    unknown = sorted(str(k) for k in extra if k != "retired")
    if unknown:
        raise KeyConfigError(f"HMAC connection extra: unknown key(s): {', '.join(unknown)}")
    retired_map = extra.get("retired") or {}
    if not isinstance(retired_map, Mapping):
        raise KeyConfigError('HMAC connection extra: "retired" must map key ids to hex secrets')
    retired = []
    for rid, rhex in retired_map.items():
        if not isinstance(rhex, str):
            raise KeyConfigError(f"HMAC connection extra: retired key {str(rid)!r}: secret must be a hex string")
        retired.append(HmacKey(str(rid), _unhex(rhex, f"HMAC connection extra, retired key {str(rid)!r}")))
    return _checked(KeyRing(current, tuple(retired)), demo)


def _checked(ring: KeyRing, demo: bool) -> KeyRing:
    if not demo:
        for key in ring.keys:
            if key.key_id == DEMO_KEY_ID or hmac.compare_digest(key.secret, _DEMO_SECRET):
                raise KeyConfigError(f"the demo HMAC key ({DEMO_KEY_ID}) is public and is refused outside the"
                                     " demo and tests: configure a real key")
    return ring


def _unhex(text: str, where: str) -> bytes:
    text = text.strip()
    if not _HEX.fullmatch(text):
        raise KeyConfigError(f"{where}: the secret must be hex (an even number of 0-9a-f characters)")
    secret = bytes.fromhex(text)
    if len(secret) < MIN_SECRET_BYTES:
        raise KeyConfigError(f"{where}: the secret is {len(secret)} bytes; at least {MIN_SECRET_BYTES} are"
                             f" required ({2 * MIN_SECRET_BYTES} hex characters)")
    return secret


def _read_secret_file(path: Path, env: str) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not ASCII hex"
        raise KeyConfigError(f"{env}: cannot read {path} ({reason})") from None


def _read_retired_file(path: Path) -> tuple[HmacKey, ...]:
    text = _read_secret_file(path, ENV_RETIRED_FILE)
    keys = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        rid, sep, rhex = line.partition(":")
        if not sep:
            raise KeyConfigError(f"{ENV_RETIRED_FILE} ({path}) line {n}: expected key_id:hexsecret")
        keys.append(HmacKey(rid.strip(), _unhex(rhex, f"{ENV_RETIRED_FILE} ({path}) line {n}")))
    return tuple(keys)
