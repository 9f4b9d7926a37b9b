"""Keyed tokens: keys, E.164 normalization, HMAC tokens, tokenize_parquet, lookups across rotation.

Expected tokens are computed here by hand with Python's hmac, from the rule
hex(HMAC-SHA256(secret, "<kind>:<E.164 or trimmed value>")), not copied from
the code's output.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time

import duckdb
import pytest

from transforms import lake as lake_mod
from transforms import pseudonymize as pz
from transforms.pseudonymize import (
    DEMO_KEY_ID, HmacKey, KeyConfigError, KeyRing, derive_tokens, e164_sql, keyring_from_connection,
    load_keyring, normalize_e164, plan_tokens, tokenize_parquet,
)
from tests.leakscan import scan

SECRET_A = bytes(range(32, 64))            # 32 bytes
SECRET_B = hashlib.sha256(b"test key b").digest() + b"\x01" * 8   # 40 bytes
KEY_A = HmacKey("k2026-01", SECRET_A)
KEY_B = HmacKey("k2026-07", SECRET_B)
RING_A = KeyRing(KEY_A)


def by_hand(secret: bytes, message: str) -> str:
    """HMAC-SHA-256-128 by hand: the leftmost 16 bytes of the digest (RFC 2104 §5), as hex."""
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()[:32]


def stored(secret: bytes, message: str) -> bytes:
    """The token as the zones hold it: the digest's leftmost 16 bytes."""
    return bytes.fromhex(by_hand(secret, message))


# ------------------------------------------------------------------------------------------ keys

def test_hmac_key_repr_hides_the_secret():
    for text in (repr(KEY_A), str(KEY_A), repr(KeyRing(KEY_A, (KEY_B,)))):
        assert SECRET_A.hex() not in text and repr(SECRET_A) not in text
        assert "secret" not in text
    assert "k2026-01" in repr(KEY_A)


def test_env_key_hex_and_file(tmp_path):
    ring = load_keyring({"CDR_AUDIT_HMAC_KEY": SECRET_A.hex(), "CDR_AUDIT_HMAC_KEY_ID": "k2026-01"})
    assert ring == KeyRing(KEY_A)
    key_file = tmp_path / "hmac.key"
    key_file.write_text(SECRET_B.hex() + "\n")
    retired = tmp_path / "retired.keys"
    retired.write_text(f"# rotated 2026-07-01\nk2026-01:{SECRET_A.hex()}\n\n")
    ring = load_keyring({"CDR_AUDIT_HMAC_KEY_FILE": str(key_file), "CDR_AUDIT_HMAC_KEY_ID": "k2026-07",
                         "CDR_AUDIT_HMAC_RETIRED_KEYS_FILE": str(retired)})
    assert ring.current == KEY_B and ring.retired == (KEY_A,)


def test_no_key_configured_is_a_clear_error():
    with pytest.raises(KeyConfigError, match="no HMAC key configured") as err:
        load_keyring({})
    assert "CDR_AUDIT_HMAC_KEY" in str(err.value)
    assert pz._DEMO_SECRET.hex() not in str(err.value)


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


def test_retired_file_errors_name_the_line_not_the_secret(tmp_path):
    retired = tmp_path / "retired.keys"
    retired.write_text(f"k-old:{SECRET_A.hex()}\nk-short:{SECRET_B.hex()[:20]}\n")
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


def test_keyring_from_airflow_connection():
    extra = json.dumps({"retired": {"k2026-01": SECRET_A.hex()}})
    ring = keyring_from_connection("k2026-07", SECRET_B.hex(), extra)
    assert ring == KeyRing(KEY_B, (KEY_A,))
    assert keyring_from_connection("k2026-07", SECRET_B.hex(), "") == KeyRing(KEY_B)
    for login, password, ex in [(None, SECRET_B.hex(), None), ("k", None, None), ("k", SECRET_B.hex(), "{nope"),
                                ("k", SECRET_B.hex(), '{"retired": {"old": "abcd"}}'),
                                ("k", SECRET_B.hex(), '{"other": 1}')]:
        with pytest.raises(KeyConfigError) as err:
            keyring_from_connection(login, password, ex)
        assert SECRET_B.hex() not in str(err.value)


# ---------------------------------------------------------------------------------------- E.164

E164_CASES = [
    ("+38640123456", "+38640123456"),
    ("040123456", "+38640123456"),
    ("0038640123456", "+38640123456"),
    ("38640123456", "+38640123456"),            # bare digits: cc + 8-digit national number
    ("+386 40 123 456", "+38640123456"),
    ("040/123-456", "+38640123456"),
    ("(040) 123 456", "+38640123456"),
    ("00 386 40 123 456", "+38640123456"),
    ("  040123456  ", "+38640123456"),
    ("01 234 56 78", "+38612345678"),           # Ljubljana landline
    ("+4915012345678", "+4915012345678"),
    ("004915012345678", "+4915012345678"),
    ("+1 (212) 555-0100", "+12125550100"),
    ("100", "100"),                             # short codes stay
    ("112", "112"),
    ("1970", "1970"),
    ("*123#", "*123#"),
    (" *100*1# ", "*100*1#"),
    ("anna@example.si", "anna@example.si"),
    ("3864012345", "3864012345"),               # cc but one digit short: not an E.164 number
    ("386401234567", "386401234567"),           # one digit long
    ("4915012345678", "4915012345678"),         # bare digits of another country: left alone
    ("40123456", "40123456"),                   # national number without trunk 0: left alone
    ("0", "0"),
    ("00", "00"),
    ("000386401", "000386401"),
    ("+", "+"),
    ("+386 4O 123", "+386 4O 123"),             # letter O: not a number, trimmed text
    ("", ""),
    ("\t040123456", "\t040123456"),             # only spaces are trimmed (as DuckDB trim)
    ("0-", "0-"),
    ("sip:100@pbx", "sip:100@pbx"),
]


def test_e164_python_cases():
    for text, expected in E164_CASES:
        assert normalize_e164(text, "386") == expected, text


def test_e164_sql_agrees_with_python():
    con = duckdb.connect()
    texts = [t for t, _ in E164_CASES]
    rows = con.execute(f"SELECT x, {e164_sql('x')} FROM unnest($texts) AS u(x)",
                       {"texts": texts, "cc": "386"}).fetchall()
    assert {x: y for x, y in rows} == {t: normalize_e164(t, "386") for t in texts}
    assert con.execute(f"SELECT {e164_sql('NULL')}", {"cc": "386"}).fetchone()[0] is None


# ---------------------------------------------------------------------------------------- tokens

def test_token_is_hmac_sha256_of_kind_and_e164():
    expected = hmac.new(SECRET_A, "msisdn:+38640123456".encode(), hashlib.sha256).hexdigest()[:32]
    for spelling in ("040123456", "+38640123456", "0038640123456"):
        assert derive_tokens(spelling, "msisdn", RING_A, "386") == {"k2026-01": expected}


def test_sql_hmac_equals_python_hmac_also_for_long_keys():
    con = duckdb.connect()
    for key in (KEY_A, HmacKey("long", bytes(range(100)))):
        expr, pads = pz.token_sql(key, "$k", "$v")
        got = con.execute(f"SELECT {expr}",
                          {**pads, "k": "imsi", "v": "293401234567890"}).fetchone()[0]
        assert got == stored(key.secret, "imsi:293401234567890")


def test_imsi_and_number_with_same_digits_differ():
    digits = "38640123456"
    assert derive_tokens(digits, "imsi", RING_A, "386") != derive_tokens(digits, "msisdn", RING_A, "386")


def test_lookup_across_rotation():
    before = derive_tokens("040123456", "msisdn", RING_A, "386")
    rotated = KeyRing(KEY_B, (KEY_A,))
    after = derive_tokens("+386 40 123 456", "msisdn", rotated, "386")
    assert after["k2026-01"] == before["k2026-01"]
    assert after["k2026-07"] == by_hand(SECRET_B, "msisdn:+38640123456") != before["k2026-01"]


# ----------------------------------------------------------------------------------- parquet step

RAW = {
    "origin": ["040123456", "+38640123456", "0038640123456", None, "051987654"],
    "destination": ["+4915012345678", "100", "051987654", "01 234 56 78", None],
    "redirection": [None, None, "040123456", None, None],
    "imsi": ["293401234567890", "293401234567890", "293409876543210", None, "38640123456"],
}


def night_file(path, origin, destination, redirection, imsi):
    rows = list(zip(range(1, len(origin) + 1), origin, destination, redirection, imsi))
    con = duckdb.connect()
    con.execute("CREATE TABLE t (record_id BIGINT, origin_number VARCHAR, destination_number VARCHAR,"
                " redirection_number VARCHAR, imsi VARCHAR, imei VARCHAR, duration_s BIGINT)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, '356938035643809', 60)", rows)
    con.execute("COPY t TO $p (FORMAT parquet)", {"p": str(path)})
    con.close()
    return str(path)


def read_rows(path):
    con = duckdb.connect()
    rows = con.execute("SELECT * FROM read_parquet($p)", {"p": str(path)}).fetchall()
    cols = [d[0] for d in con.description]
    con.close()
    return cols, rows


def test_tokenize_parquet(tmp_path, policy, work_dir):
    src = night_file(tmp_path / "in.parquet", **RAW)
    dst = tmp_path / "analytics" / "out.parquet"
    result = tokenize_parquet(src, str(dst), policy, RING_A, work_dir)
    assert result.rows == 5 and result.key_id == "k2026-01" and result.seconds >= 0
    assert result.distinct_by_column == {"origin_number": 2, "destination_number": 4,
                                         "redirection_number": 1, "imsi": 3}
    cols, rows = read_rows(dst)
    assert cols == ["record_id", "origin_number", "destination_number", "redirection_number", "imsi",
                    "imei", "duration_s", "hmac_key_id"]
    tok = {c: [r[cols.index(c)] for r in rows] for c in cols}
    num = stored(SECRET_A, "msisdn:+38640123456")
    other = stored(SECRET_A, "msisdn:+38651987654")
    assert tok["record_id"] == [1, 2, 3, 4, 5]                       # row order kept
    assert tok["origin_number"] == [num, num, num, None, other]      # three spellings, one token; NULL kept
    assert tok["destination_number"] == [stored(SECRET_A, "msisdn:+4915012345678"), stored(SECRET_A, "msisdn:100"),
                                         other, stored(SECRET_A, "msisdn:+38612345678"), None]
    assert tok["redirection_number"] == [None, None, num, None, None]
    assert tok["imsi"] == [stored(SECRET_A, "imsi:293401234567890")] * 2 + [
        stored(SECRET_A, "imsi:293409876543210"), None, stored(SECRET_A, "imsi:38640123456")]
    assert tok["imsi"][4] != stored(SECRET_A, "msisdn:+38640123456")
    assert tok["imei"] == ["356938035643809"] * 5 and tok["duration_s"] == [60] * 5   # other columns untouched
    assert tok["hmac_key_id"] == ["k2026-01"] * 5
    # No raw identifier anywhere: decompressed values and raw bytes (footer statistics included).
    raw_values = {v for col in RAW.values() for v in col if v} | {"+38651987654", "38651987654", "38612345678",
                                                                    "4915012345678", "40123456"}
    raw_values.discard("100")   # three digits also occur by chance in hex tokens
    assert scan([dst.parent], sorted(raw_values)) == {}
    assert not list(dst.parent.glob(".*tmp"))


def test_same_key_joins_across_nights_and_other_key_does_not(tmp_path, policy, work_dir):
    night1 = night_file(tmp_path / "n1.parquet", ["040123456"], ["100"], [None], ["293401234567890"])
    night2 = night_file(tmp_path / "n2.parquet", ["+386 40 123 456"], ["112"], [None], ["293401234567890"])
    tokenize_parquet(night1, str(tmp_path / "o1.parquet"), policy, RING_A, work_dir)
    tokenize_parquet(night2, str(tmp_path / "o2.parquet"), policy, RING_A, work_dir)
    tokenize_parquet(night2, str(tmp_path / "o3.parquet"), policy, KeyRing(KEY_B, (KEY_A,)), work_dir)
    (c, r1), (_, r2), (_, r3) = (read_rows(tmp_path / f"o{i}.parquet") for i in (1, 2, 3))
    o, i, k = c.index("origin_number"), c.index("imsi"), c.index("hmac_key_id")
    assert r1[0][o] == r2[0][o] and r1[0][i] == r2[0][i]
    assert r3[0][o] != r2[0][o] and r3[0][i] != r2[0][i] and r3[0][k] == "k2026-07"
    # A subject-access lookup after rotation finds the subject in both nights' outputs.
    found = derive_tokens("040123456", "msisdn", KeyRing(KEY_B, (KEY_A,)), "386")
    assert found == {"k2026-07": r3[0][o].hex(), "k2026-01": r1[0][o].hex()}


def test_refuses_input_that_already_has_a_key_id(tmp_path, policy, work_dir, pq_write):
    src = pq_write(tmp_path / "x.parquet", "SELECT '040123456' AS origin_number, 'k' AS hmac_key_id")
    with pytest.raises(ValueError, match="hmac_key_id"):
        tokenize_parquet(str(src), str(tmp_path / "y.parquet"), policy, RING_A, work_dir)


def test_speed_1m_rows_printed_not_asserted(tmp_path, policy, work_dir, pq_write):
    """Prints the time for 1M rows (see it with -s); deliberately no timed assertion."""
    src = pq_write(tmp_path / "big.parquet", (
        "SELECT range AS record_id, '0' || (40000000 + hash(range) % 100000)::VARCHAR AS origin_number,"
        " '+386' || (40000000 + hash(range + 1) % 100000)::VARCHAR AS destination_number,"
        " CAST(NULL AS VARCHAR) AS redirection_number,"
        " '29340' || lpad((hash(range) % 100000)::VARCHAR, 10, '0') AS imsi FROM range(1000000)"))
    started = time.perf_counter()
    result = tokenize_parquet(str(src), str(tmp_path / "big_out.parquet"), policy, RING_A, work_dir)
    print(f"\ntokenize_parquet: {result.rows} rows, distinct {result.distinct_by_column},"
          f" {time.perf_counter() - started:.2f} s")
    assert result.rows == 1_000_000


def test_rows_find_their_token_by_hash_as_by_text(tmp_path, policy):
    # Rows probe the lookup on the hash of their spelling; the text join (taken on a hash clash) agrees.
    src = night_file(tmp_path / "in.parquet", **RAW)
    got = []
    for by_hash in (True, False):
        con = lake_mod.connect(tmp_path / f"tmp-{by_hash}")
        try:
            con.execute(f"CREATE TEMP VIEW source AS SELECT * FROM read_parquet({lake_mod.sql_literal(src)})")
            plan = plan_tokens(con, "source", policy, RING_A, probe_by_hash=by_hash)
            assert ("hash(" in plan.joins) == by_hash
            got.append(lake_mod.execute(con, f"SELECT {plan.select()} FROM source t{plan.joins} ORDER BY t.record_id",
                                        plan.params).fetchall())
        finally:
            con.close()
    assert got[0] == got[1] and len(got[0]) == 5


def test_distinct_identifiers_counted_as_every_normalized_value(tmp_path, policy):
    # The audit's count of distinct identifiers per column skips a full distinct; it must equal one.
    rnd = random.Random(5)
    spell = [lambda n: f"+3864{n}", lambda n: f"04{n}", lambda n: f"003864{n}", lambda n: f" 04 {n[:3]} {n[3:]}",
             lambda n: f"3864{n}", lambda n: "", lambda n: f"*1{n[:2]}#", lambda n: f" +3864{n}"]
    cols = [[rnd.choice(spell)(f"{rnd.randrange(60):07d}") for _ in range(400)] for _ in range(4)]
    src = night_file(tmp_path / "in.parquet", *cols)
    con = lake_mod.connect(tmp_path / "tmp")
    try:
        con.execute(f"CREATE TEMP VIEW source AS SELECT * FROM read_parquet({lake_mod.sql_literal(src)})")
        plan = plan_tokens(con, "source", policy, RING_A)
        exact = dict(con.execute("SELECT col, count(DISTINCT norm) FROM tokens GROUP BY col").fetchall())
    finally:
        con.close()
    assert list(plan.distinct_by_column.values()) == [exact[i] for i in range(4)]
    assert all(n > 50 for n in exact.values())
