"""transforms/privacy/keys.py: key files only their owner may read (as ssh), no secret in any error message,
and every loaded secret reported to the `on_secret` callbacks (an orchestrator's log masker)."""

from __future__ import annotations

import json
import os
import socket
import traceback

import pytest

from tests.transforms.privacy.conftest import SECRET_A, SECRET_B
from transforms.privacy import keys
from transforms.privacy.keys import KeyConfigError, keyring_from_connection, load_keyring, on_secret

SECRET_C = bytes(range(100, 140))      # 40 bytes, a third key


def secret_forms(secret: bytes) -> list[str]:
    """Every way a message could carry a secret: hex either case, its halves, the bytes' repr."""
    h = secret.hex()
    return [h, h.upper(), h[:24], h[-24:], h.upper()[:24], repr(secret), repr(secret)[2:26]]


def assert_no_secret(message: str, *secrets: bytes) -> None:
    for secret in secrets:
        for form in secret_forms(secret):
            assert form not in message, (form, message)


def key_file(path, text: str, mode: int = 0o600):
    path.write_text(text)
    path.chmod(mode)
    return path


def file_env(path) -> dict:
    return {"CDR_AUDIT_HMAC_KEY_FILE": str(path), "CDR_AUDIT_HMAC_KEY_ID": "k-file"}


@pytest.fixture()
def reported():
    """The texts given to an `on_secret` callback during the test (the callback is removed after)."""
    got: list[str] = []
    callback = on_secret(got.append)
    yield got
    keys._secret_callbacks.remove(callback)


# --- file modes, owner and type ----------------------------------------------------------------------

def test_a_key_file_of_mode_0600_or_0400_is_read(tmp_path):
    for mode in (0o600, 0o400):
        path = key_file(tmp_path / f"k{mode:o}", SECRET_A.hex() + "\n", mode)
        assert load_keyring(file_env(path)).current.secret == SECRET_A


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o610, 0o601])
def test_a_key_file_group_or_others_may_touch_is_refused(tmp_path, mode):
    path = key_file(tmp_path / "hmac.key", SECRET_A.hex(), mode)
    with pytest.raises(KeyConfigError) as err:
        load_keyring(file_env(path))
    message = str(err.value)
    assert message == (f"CDR_AUDIT_HMAC_KEY_FILE: permissions {mode:04o} for {path} are too open: the key file"
                       f" must be readable by its owner only (chmod 600 {path})")
    assert_no_secret(message, SECRET_A)


def test_the_retired_keys_file_is_held_to_the_same_rule(tmp_path):
    current = key_file(tmp_path / "hmac.key", SECRET_A.hex())
    retired = key_file(tmp_path / "retired.keys", f"k-old:{SECRET_B.hex()}\n", 0o640)
    env = {**file_env(current), "CDR_AUDIT_HMAC_RETIRED_KEYS_FILE": str(retired)}
    with pytest.raises(KeyConfigError, match=r"^CDR_AUDIT_HMAC_RETIRED_KEYS_FILE: permissions 0640 .* too open"):
        load_keyring(env)
    retired.chmod(0o600)
    assert [k.secret for k in load_keyring(env).keys] == [SECRET_A, SECRET_B]


def test_a_symlink_is_judged_by_the_file_it_points_to(tmp_path):
    target = key_file(tmp_path / "real.key", SECRET_A.hex(), 0o644)
    link = tmp_path / "link.key"
    link.symlink_to(target)                # the link itself is 0777: its target is what is read
    with pytest.raises(KeyConfigError, match="permissions 0644") as err:
        load_keyring(file_env(link))
    assert_no_secret(str(err.value), SECRET_A)
    target.chmod(0o600)
    assert load_keyring(file_env(link)).current.secret == SECRET_A


def test_a_key_file_owned_by_another_user_is_refused(tmp_path, monkeypatch):
    path = key_file(tmp_path / "hmac.key", SECRET_A.hex())
    if os.geteuid() == 0:
        os.chown(path, 4321, -1)           # root running the tests: give the file to someone else
    else:
        monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)   # the process "is" another user
    with pytest.raises(KeyConfigError, match=r"is owned by uid \d+, not by this process's user") as err:
        load_keyring(file_env(path))
    assert_no_secret(str(err.value), SECRET_A)


def test_a_key_file_owned_by_root_is_read_by_another_user(tmp_path, monkeypatch):
    path = key_file(tmp_path / "hmac.key", SECRET_A.hex())
    if os.stat(path).st_uid != 0:
        pytest.skip("needs a file owned by root (the tests run as another user)")
    monkeypatch.setattr(os, "geteuid", lambda: 50000)
    assert load_keyring(file_env(path)).current.secret == SECRET_A


def test_a_non_regular_file_is_refused(tmp_path):
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo, 0o600)                 # opening must not block waiting for a writer
    with pytest.raises(KeyConfigError, match="is not a regular file"):
        load_keyring(file_env(fifo))
    with pytest.raises(KeyConfigError, match="is not a regular file"):
        load_keyring(file_env(tmp_path))   # a directory
    sock_path = tmp_path / "k.sock"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(sock_path))
        with pytest.raises(KeyConfigError, match="cannot read|not a regular file"):
            load_keyring(file_env(sock_path))
    finally:
        sock.close()


def test_the_check_is_made_on_the_opened_file(tmp_path, monkeypatch):
    """fstat of the descriptor read, never a stat of the path before the open (no check-then-swap race)."""
    path = key_file(tmp_path / "hmac.key", SECRET_A.hex())
    calls = []
    real_fstat = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: calls.append(fd) or real_fstat(fd))
    monkeypatch.setattr(os, "stat", lambda *a, **k: pytest.fail("os.stat used: check the opened fd"))
    monkeypatch.setattr(os, "lstat", lambda *a, **k: pytest.fail("os.lstat used: check the opened fd"))
    assert load_keyring(file_env(path)).current.secret == SECRET_A
    assert len(calls) == 1


def test_missing_unreadable_or_binary_key_files_name_the_path_not_the_content(tmp_path):
    with pytest.raises(KeyConfigError, match="cannot read .*No such file"):
        load_keyring(file_env(tmp_path / "absent.key"))
    binary = tmp_path / "bin.key"
    binary.write_bytes(SECRET_A + b"\xff")
    binary.chmod(0o600)
    with pytest.raises(KeyConfigError, match="not ASCII hex") as err:
        load_keyring(file_env(binary))
    assert_no_secret(str(err.value), SECRET_A)


# --- no secret in any error message ------------------------------------------------------------------

def bad_configurations(tmp_path):
    """(name, callable) pairs that must each raise KeyConfigError; every one involves SECRET_A/B/C."""
    a, b, c = SECRET_A.hex(), SECRET_B.hex(), SECRET_C.hex()
    f = lambda name, text, mode=0o600: str(key_file(tmp_path / name, text, mode))  # noqa: E731
    env = lambda **kw: (lambda: load_keyring({k.upper(): v for k, v in kw.items()}))  # noqa: E731
    conn = lambda *args: (lambda: keyring_from_connection(*args))  # noqa: E731
    return [
        ("open file", env(cdr_audit_hmac_key_file=f("open", a, 0o644), cdr_audit_hmac_key_id="k")),
        ("group file", env(cdr_audit_hmac_key_file=f("group", a, 0o640), cdr_audit_hmac_key_id="k")),
        ("secret as the file name", env(cdr_audit_hmac_key_file=a, cdr_audit_hmac_key_id="k")),
        ("secret upper as the file name", env(cdr_audit_hmac_key_file=a.upper(), cdr_audit_hmac_key_id="k")),
        ("secret in a path", env(cdr_audit_hmac_key_file=str(tmp_path / a), cdr_audit_hmac_key_id="k")),
        ("file too short", env(cdr_audit_hmac_key_file=f("short", a[:60]), cdr_audit_hmac_key_id="k")),
        ("file not hex", env(cdr_audit_hmac_key_file=f("nothex", a[:-1] + "z"), cdr_audit_hmac_key_id="k")),
        ("file two keys", env(cdr_audit_hmac_key_file=f("two", f"{a}\n{b}"), cdr_audit_hmac_key_id="k")),
        ("file key_id:hex", env(cdr_audit_hmac_key_file=f("idhex", f"k:{a}"), cdr_audit_hmac_key_id="k")),
        ("secret as the id", env(cdr_audit_hmac_key=a, cdr_audit_hmac_key_id=a)),
        ("another secret as the id", env(cdr_audit_hmac_key=b, cdr_audit_hmac_key_id=a[:40] + "-x")),
        ("id holds its own secret", env(cdr_audit_hmac_key=a, cdr_audit_hmac_key_id="k-" + a[:62])),
        ("bad id", env(cdr_audit_hmac_key=a, cdr_audit_hmac_key_id=f"{a}:x")),
        ("env and file", env(cdr_audit_hmac_key=a, cdr_audit_hmac_key_file=f("both", b), cdr_audit_hmac_key_id="k")),
        ("env not hex", env(cdr_audit_hmac_key=a[:-1] + "g", cdr_audit_hmac_key_id="k")),
        ("env odd length", env(cdr_audit_hmac_key=a + "a", cdr_audit_hmac_key_id="k")),
        ("env short", env(cdr_audit_hmac_key=a[:62], cdr_audit_hmac_key_id="k")),
        ("env with spaces", env(cdr_audit_hmac_key=a[:32] + " " + a[32:], cdr_audit_hmac_key_id="k")),
        ("retired open", env(cdr_audit_hmac_key=a, cdr_audit_hmac_key_id="k",
                             cdr_audit_hmac_retired_keys_file=f("r-open", f"old:{b}", 0o644))),
        ("retired no colon", env(cdr_audit_hmac_key=a, cdr_audit_hmac_key_id="k",
                                 cdr_audit_hmac_retired_keys_file=f("r-nocolon", b))),
        ("retired swapped", env(cdr_audit_hmac_key=a, cdr_audit_hmac_key_id="k",
                                cdr_audit_hmac_retired_keys_file=f("r-swapped", f"{b}:old"))),
        ("retired short", env(cdr_audit_hmac_key=a, cdr_audit_hmac_key_id="k",
                              cdr_audit_hmac_retired_keys_file=f("r-short", f"old:{b[:40]}"))),
        ("retired duplicate ids that are secrets", env(
            cdr_audit_hmac_key=a, cdr_audit_hmac_key_id="k",
            cdr_audit_hmac_retired_keys_file=f("r-dup", f"{a}:{b}\n{a}:{c}"))),
        ("retired id = current", env(cdr_audit_hmac_key=a, cdr_audit_hmac_key_id="k",
                                     cdr_audit_hmac_retired_keys_file=f("r-same", f"k:{b}"))),
        ("demo key under another id", env(cdr_audit_hmac_key=keys._DEMO_SECRET.hex(), cdr_audit_hmac_key_id="k",
                                          cdr_audit_hmac_retired_keys_file=f("r-demo", f"old:{b}"))),
        ("conn no login", conn(None, a, None)),
        ("conn secret as login", conn(a, b, None)),
        ("conn password not hex", conn("k", a + "zz", None)),
        ("conn password short", conn("k", a[:40], None)),
        ("conn extra not json", conn("k", a, '{"retired": {"old": "' + b)),
        ("conn extra a list", conn("k", a, json.dumps([b]))),
        ("conn extra unknown key is a secret", conn("k", a, json.dumps({b: c}))),
        ("conn retired swapped", conn("k", a, json.dumps({"retired": {b: "old"}}))),
        ("conn retired not a string", conn("k", a, json.dumps({"retired": {b: 1}}))),
        ("conn retired short", conn("k", a, json.dumps({"retired": {"old": b[:50]}}))),
        ("conn retired a list", conn("k", a, json.dumps({"retired": [b, c]}))),
        ("conn retired id = current", conn("k", a, json.dumps({"retired": {"k": b}}))),
        ("conn retired id holds the secret", conn("k", a, json.dumps({"retired": {c: c}}))),
    ]


def test_no_error_message_holds_a_secret_whatever_the_bad_input(tmp_path):
    for name, attempt in bad_configurations(tmp_path):
        with pytest.raises(KeyConfigError) as err:
            attempt()
        message = str(err.value)
        assert message, name
        assert_no_secret(message, SECRET_A, SECRET_B, SECRET_C)
        # Nor anywhere in its traceback as it would be logged, chained exceptions included.
        assert_no_secret("".join(traceback.format_exception(err.value)), SECRET_A, SECRET_B, SECRET_C)


# --- every loaded secret is reported ------------------------------------------------------------------

def test_every_secret_of_every_source_is_reported_in_each_spelling(tmp_path, reported):
    extra = json.dumps({"retired": {"k-old": SECRET_B.hex().upper(), "k-older": SECRET_C.hex()}})
    ring = keyring_from_connection("k-new", "  " + SECRET_A.hex()[:10].upper() + SECRET_A.hex()[10:] + "\n", extra)
    assert [k.secret for k in ring.keys] == [SECRET_A, SECRET_B, SECRET_C]
    for secret in (SECRET_A, SECRET_B, SECRET_C):
        assert {secret.hex(), secret.hex().upper(), repr(secret)[2:-1]} <= set(reported)
    assert SECRET_A.hex()[:10].upper() + SECRET_A.hex()[10:] in reported      # as configured, too
    reported.clear()
    current = key_file(tmp_path / "hmac.key", SECRET_C.hex())
    retired = key_file(tmp_path / "retired.keys", f"k-old:{SECRET_A.hex()}\n")
    load_keyring({**file_env(current), "CDR_AUDIT_HMAC_RETIRED_KEYS_FILE": str(retired)})
    assert {SECRET_C.hex(), SECRET_A.hex(), SECRET_A.hex().upper()} <= set(reported)


def test_a_secret_is_reported_before_a_later_check_refuses_it(reported):
    with pytest.raises(KeyConfigError, match="twice"):
        keyring_from_connection("k", SECRET_A.hex(), json.dumps({"retired": {"k": SECRET_B.hex()}}))
    assert SECRET_A.hex() in reported and SECRET_B.hex() in reported


def test_a_callback_that_fails_fails_the_load_without_quoting_the_secret():
    def broken(text: str) -> None:
        raise RuntimeError(f"cannot mask {text}")

    on_secret(broken)
    try:
        with pytest.raises(KeyConfigError, match="could not be registered with the log masker") as err:
            keyring_from_connection("k", SECRET_A.hex(), None)
        assert_no_secret(str(err.value), SECRET_A)
        assert "RuntimeError" in str(err.value) and err.value.__cause__ is None
    finally:
        keys._secret_callbacks.remove(broken)


def test_registering_twice_reports_once(reported):
    on_secret(reported.append)
    keyring_from_connection("k", SECRET_A.hex(), None)
    assert reported.count(SECRET_A.hex()) == 2     # once from the hex text, once from the key: one callback


def test_the_anchor_key_is_reported_too(reported):
    from transforms.audit_store.anchors import anchor_key

    assert anchor_key({"CDR_AUDIT_ANCHOR_KEY": SECRET_C.hex()}) == SECRET_C
    assert SECRET_C.hex() in reported and SECRET_C.hex().upper() in reported
