"""The HMAC keys that make subscriber tokens: where they come from, and the demo key's fence.

The key never sits in the repository or the audit store: it comes from the environment (`load_keyring`)
or an Airflow connection (`keyring_from_connection`). Each output records the id of the key that made it,
so keys can rotate; retired keys stay usable for lookups. A demo key exists for the demo and the tests
only and is refused otherwise (docs/design.md §4).

A key file is read only when its owner alone may read it (as ssh does with a private key), and every
secret loaded is reported to the callbacks registered with `on_secret` — an orchestrator registers its
log masker there, so no key can reach a log it writes (docs/design.md §4).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
from collections.abc import Callable, Mapping
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
_MAX_KEY_FILE_BYTES = 1 << 20     # a key file is a few lines; anything bigger is the wrong file
_HEX_RUN = re.compile(r"[0-9a-fA-F]{16,}")
_SECRET_LIKE_HEX = 32             # hex digits in a row (16 bytes): a secret, not an id

_secret_callbacks: list[Callable[[str], object]] = []


class KeyConfigError(ValueError):
    """The HMAC key configuration is missing or unusable. Messages never contain a secret."""


def _shown(text: object) -> str:
    """A configured name (path, key id) as an error message may show it: a long hex run in it may be a
    secret put in the wrong place (a key in the _FILE variable, a secret where an id goes), so it is hidden."""
    return _HEX_RUN.sub(lambda m: f"<{len(m.group())} hex digits hidden>", str(text))


def on_secret(callback: Callable[[str], object]) -> Callable[[str], object]:
    """Register `callback` to be given every secret loaded from now on, as each text it could be printed
    as (hex, lower and upper case, and the bytes' Python repr). An orchestrator registers its log masker
    here (Airflow's `mask_secret`, by dags/cdr_common.py); registering the same callback again is a no-op.
    """
    if callback not in _secret_callbacks:
        _secret_callbacks.append(callback)
    return callback


def report_secret(secret: bytes, *texts: str) -> None:
    """Give `secret` (and `texts`, other spellings of it, e.g. as configured) to every `on_secret`
    callback. A callback that fails fails the load: a key its masker does not know must not be used."""
    if not _secret_callbacks:
        return
    forms = dict.fromkeys([secret.hex(), secret.hex().upper(), repr(secret)[2:-1],
                           *(t.strip() for t in texts if t and t.strip())])
    for callback in list(_secret_callbacks):
        for form in forms:
            try:
                callback(form)
            except Exception as exc:   # noqa: BLE001 — its message could quote the secret: name the type only
                raise KeyConfigError(f"a secret could not be registered with the log masker"
                                     f" ({type(exc).__name__}): refusing to use it") from None


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
            raise KeyConfigError(f"HMAC key {_shown(self.key_id)!r}: secret must be at least {MIN_SECRET_BYTES} bytes"
                                 f" ({2 * MIN_SECRET_BYTES} hex characters)")
        report_secret(self.secret)     # every key, whatever its source, before anything can print it
        # The id is recorded with every output: one that looks like a secret (a secret pasted where the id
        # goes) or holds part of its own secret is refused, without showing it.
        runs = _HEX_RUN.findall(self.key_id)
        if any(len(r) >= _SECRET_LIKE_HEX or r.lower() in self.secret.hex() for r in runs):
            raise KeyConfigError(f"HMAC key id: it is recorded with every output, and this one looks like a"
                                 f" secret (a run of {max(map(len, runs))} hex digits): choose another id")


@dataclass(frozen=True)
class KeyRing:
    """The key new tokens are made with, and retired keys still held for lookups across rotation."""

    current: HmacKey
    retired: tuple[HmacKey, ...] = ()

    def __post_init__(self) -> None:
        ids = [k.key_id for k in self.keys]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise KeyConfigError(f"HMAC key id(s) given twice in the key ring: {', '.join(map(_shown, dupes))}")

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
            where = f"{ENV_KEY_FILE} ({_shown(key_file)})"
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
    current = HmacKey(key_id, _unhex(password, f"HMAC connection password (key {_shown(key_id)!r})"))
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
        raise KeyConfigError(f"HMAC connection extra: unknown key(s): {', '.join(map(_shown, unknown))}")
    retired_map = extra.get("retired") or {}
    if not isinstance(retired_map, Mapping):
        raise KeyConfigError('HMAC connection extra: "retired" must map key ids to hex secrets')
    retired = []
    for rid, rhex in retired_map.items():
        if not isinstance(rhex, str):
            raise KeyConfigError(f"HMAC connection extra: retired key {_shown(rid)!r}: secret must be a hex string")
        retired.append(HmacKey(str(rid), _unhex(rhex, f"HMAC connection extra, retired key {_shown(rid)!r}")))
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
    report_secret(secret, text)        # also as configured (mixed case)
    return secret


def _read_secret_file(path: Path, env: str) -> str:
    """The text of a secret file, refused unless it is a regular file that only its owner may read, owned
    by this process's user or root (ssh's rule for a private key). Checked on the opened file (fstat), so
    the file checked is the file read; a symlink is followed and its target checked (docs/design.md §4)."""
    shown = _shown(path)
    flags = os.O_RDONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_NONBLOCK", 0)   # a FIFO must not block
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise KeyConfigError(f"{env}: cannot read {shown} ({exc.strerror or type(exc).__name__})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyConfigError(f"{env}: {shown} is not a regular file: the key must be in a file of its own")
        euid = os.geteuid()
        if st.st_uid not in (euid, 0):
            raise KeyConfigError(f"{env}: {shown} is owned by uid {st.st_uid}, not by this process's user"
                                 f" (uid {euid}) or root: the key file must belong to the user that reads it")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise KeyConfigError(f"{env}: permissions {mode:04o} for {shown} are too open: the key file must"
                                 f" be readable by its owner only (chmod 600 {shown})")
        data = b""
        while len(data) <= _MAX_KEY_FILE_BYTES and (chunk := os.read(fd, 65536)):
            data += chunk
    except OSError as exc:
        raise KeyConfigError(f"{env}: cannot read {shown} ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise KeyConfigError(f"{env}: {shown} is over {_MAX_KEY_FILE_BYTES} bytes: not a key file")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise KeyConfigError(f"{env}: cannot read {shown} (not ASCII hex)") from None


def _read_retired_file(path: Path) -> tuple[HmacKey, ...]:
    text = _read_secret_file(path, ENV_RETIRED_FILE)
    keys = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        rid, sep, rhex = line.partition(":")
        if not sep:
            raise KeyConfigError(f"{ENV_RETIRED_FILE} ({_shown(path)}) line {n}: expected key_id:hexsecret")
        keys.append(HmacKey(rid.strip(), _unhex(rhex, f"{ENV_RETIRED_FILE} ({_shown(path)}) line {n}")))
    return tuple(keys)
