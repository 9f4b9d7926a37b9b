"""transforms/privacy/keys.py: where the HMAC keys come from, rotation, and the demo key's fence."""

from __future__ import annotations

import json

import pytest

from tests.transforms.privacy.conftest import KEY_A, KEY_B, ROTATED, SECRET_A, SECRET_B
from transforms.privacy import keys
from transforms.privacy.keys import DEMO_KEY_ID, HmacKey, KeyConfigError, KeyRing, keyring_from_connection, load_keyring


def test_hmac_key_repr_hides_the_secret():
    for text in (repr(KEY_A), str(KEY_A), repr(ROTATED)):
        assert SECRET_A.hex() not in text and repr(SECRET_A) not in text
        assert "secret" not in text
    assert "k2026-01" in repr(KEY_A)


def test_env_key_hex_and_file(tmp_path):
    ring = load_keyring({"CDR_AUDIT_HMAC_KEY": SECRET_A.hex(), "CDR_AUDIT_HMAC_KEY_ID": "k2026-01"})
    assert ring == KeyRing(KEY_A)
    key_file = tmp_path / "hmac.key"
    key_file.write_text(SECRET_B.hex() + "\n")
    key_file.chmod(0o600)                       # readable by its owner only, or it is refused
    retired = tmp_path / "retired.keys"
    retired.write_text(f"# rotated 2026-07-01\nk2026-01:{SECRET_A.hex()}\n\n")
    retired.chmod(0o600)
    ring = load_keyring({"CDR_AUDIT_HMAC_KEY_FILE": str(key_file), "CDR_AUDIT_HMAC_KEY_ID": "k2026-07",
                         "CDR_AUDIT_HMAC_RETIRED_KEYS_FILE": str(retired)})
    assert ring.current == KEY_B and ring.retired == (KEY_A,)
    assert ring.keys == (KEY_B, KEY_A)          # current first, then the retired ones


def test_no_key_configured_is_a_clear_error():
    with pytest.raises(KeyConfigError, match="no HMAC key configured") as err:
        load_keyring({})
    assert "CDR_AUDIT_HMAC_KEY" in str(err.value)
    assert keys._DEMO_SECRET.hex() not in str(err.value)


@pytest.mark.parametrize("env", [
    {"CDR_AUDIT_HMAC_KEY": SECRET_A.hex()},                                          # no id
    {"CDR_AUDIT_HMAC_KEY_ID": "k1"},                                                 # no secret
    {"CDR_AUDIT_HMAC_KEY": SECRET_A.hex()[:62], "CDR_AUDIT_HMAC_KEY_ID": "k1"},      # 31 bytes
    {"CDR_AUDIT_HMAC_KEY": SECRET_A.hex()[:-1] + "g", "CDR_AUDIT_HMAC_KEY_ID": "k1"},  # not hex
    {"CDR_AUDIT_HMAC_KEY": SECRET_A.hex(), "CDR_AUDIT_HMAC_KEY_ID": "bad id:1"},
    {"CDR_AUDIT_HMAC_KEY": SECRET_A.hex(), "CDR_AUDIT_HMAC_KEY_FILE": "/x", "CDR_AUDIT_HMAC_KEY_ID": "k1"},
])
def test_bad_key_configuration_is_refused_without_echoing_the_secret(env):
    with pytest.raises(KeyConfigError) as err:
        load_keyring(env)
    message = str(err.value)
    assert SECRET_A.hex()[:16] not in message and SECRET_A.hex()[-16:] not in message


def test_key_of_32_bytes_is_the_shortest_accepted():
    assert HmacKey("k", bytes(32)).secret == bytes(32)
    with pytest.raises(KeyConfigError, match="at least 32 bytes"):
        HmacKey("k", bytes(31))


def test_retired_file_errors_name_the_line_not_the_secret(tmp_path):
    retired = tmp_path / "retired.keys"
    retired.write_text(f"k-old:{SECRET_A.hex()}\nk-short:{SECRET_B.hex()[:20]}\n")
    retired.chmod(0o600)
    env = {"CDR_AUDIT_HMAC_KEY": SECRET_B.hex(), "CDR_AUDIT_HMAC_KEY_ID": "k-new",
           "CDR_AUDIT_HMAC_RETIRED_KEYS_FILE": str(retired)}
    with pytest.raises(KeyConfigError, match="line 2") as err:
        load_keyring(env)
    assert SECRET_B.hex()[:20] not in str(err.value)
    retired.write_text(f"k-new:{SECRET_A.hex()}\n")          # id clash with the current key
    with pytest.raises(KeyConfigError, match="twice"):
        load_keyring(env)


def test_demo_key_only_with_demo_true():
    ring = load_keyring({}, demo=True)
    assert ring.current.key_id == DEMO_KEY_ID
    demo_hex = ring.current.secret.hex()
    with pytest.raises(KeyConfigError, match="demo"):
        load_keyring({"CDR_AUDIT_HMAC_KEY": demo_hex, "CDR_AUDIT_HMAC_KEY_ID": DEMO_KEY_ID})
    with pytest.raises(KeyConfigError, match="demo") as err:      # the public secret under another id
        load_keyring({"CDR_AUDIT_HMAC_KEY": demo_hex, "CDR_AUDIT_HMAC_KEY_ID": "prod-1"})
    assert demo_hex not in str(err.value)
    with pytest.raises(KeyConfigError, match="demo"):
        keyring_from_connection(DEMO_KEY_ID, demo_hex, None)
    # A configured key wins over the demo key even in demo mode.
    assert load_keyring({"CDR_AUDIT_HMAC_KEY": SECRET_A.hex(), "CDR_AUDIT_HMAC_KEY_ID": "k2026-01"},
                        demo=True).current == KEY_A


def test_demo_mode_from_the_environment():
    assert load_keyring({"CDR_AUDIT_DEMO_MODE": "1"}).current.key_id == DEMO_KEY_ID
    with pytest.raises(KeyConfigError, match="no HMAC key configured"):
        load_keyring({"CDR_AUDIT_DEMO_MODE": "0"})


def test_keyring_from_airflow_connection():
    extra = json.dumps({"retired": {"k2026-01": SECRET_A.hex()}})
    ring = keyring_from_connection("k2026-07", SECRET_B.hex(), extra)
    assert ring == ROTATED
    assert keyring_from_connection("k2026-07", SECRET_B.hex(), "") == KeyRing(KEY_B)
    for login, password, ex in [(None, SECRET_B.hex(), None), ("k", None, None), ("k", SECRET_B.hex(), "{nope"),
                                ("k", SECRET_B.hex(), '{"retired": {"old": "abcd"}}'),
                                ("k", SECRET_B.hex(), '{"other": 1}')]:
        with pytest.raises(KeyConfigError) as err:
            keyring_from_connection(login, password, ex)
        assert SECRET_B.hex() not in str(err.value)
