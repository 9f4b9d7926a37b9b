"""transforms/privacy/tokens.py: keyed HMAC tokens, in Python and in DuckDB, and the token plan over a relation.

Expected tokens are computed by hand (conftest `stored`/`by_hand`) from the rule
HMAC-SHA-256-128(secret, "<kind>:<E.164 or trimmed value>"), not copied from the code's output.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import duckdb
import pytest

from tests.leakscan import scan
from tests.transforms.privacy.conftest import KEY_A, KEY_B, RING_A, ROTATED, SECRET_A, SECRET_B, by_hand, stored
from transforms.lake.connection import connect, execute
from transforms.privacy.keys import HmacKey
from transforms.privacy.tokens import (
    KEY_ID_COLUMN, TOKEN_BYTES, derive_tokens, identifiers_counted, plan_tokens, token, token_sql,
)

# ------------------------------------------------------------------------------------ one token


def test_token_is_hmac_sha256_of_kind_and_e164(policy):
    expected = hmac.new(SECRET_A, "msisdn:+38640123456".encode(), hashlib.sha256).hexdigest()[:32]
    for spelling in ("040123456", "+38640123456", "0038640123456"):
        assert derive_tokens(spelling, "msisdn", RING_A, policy.operator) == {"k2026-01": expected}
    assert TOKEN_BYTES == 16 and token(KEY_A, "msisdn", "+38640123456") == expected


def test_sql_hmac_equals_python_hmac_also_for_long_keys():
    con = duckdb.connect()
    for key in (KEY_A, HmacKey("long", bytes(range(100)))):
        expr, pads = token_sql(key, "$k", "$v")
        got = con.execute(f"SELECT {expr}",
                          {**pads, "k": "imsi", "v": "293401234567890"}).fetchone()[0]
        assert got == stored(key.secret, "imsi:293401234567890")
        assert key.secret.hex() not in expr        # the key is bound, never written into the SQL text


def test_imsi_and_number_with_same_digits_differ(policy):
    digits = "38640123456"
    assert derive_tokens(digits, "imsi", RING_A, policy.operator) != \
        derive_tokens(digits, "msisdn", RING_A, policy.operator)


def test_tokens_across_rotation(policy):
    before = derive_tokens("040123456", "msisdn", RING_A, policy.operator)
    after = derive_tokens("+386 40 123 456", "msisdn", ROTATED, policy.operator)
    assert after["k2026-01"] == before["k2026-01"]
    assert after["k2026-07"] == by_hand(SECRET_B, "msisdn:+38640123456") != before["k2026-01"]


# ------------------------------------------------------------------------- the plan over a relation

RAW = {
    "origin": ["040123456", "+38640123456", "0038640123456", None, "051987654"],
    "destination": ["+4915012345678", "100", "051987654", "01 234 56 78", None],
    "redirection": [None, None, "040123456", None, None],
    "imsi": ["293401234567890", "293401234567890", "293409876543210", None, "38640123456"],
}
COLUMNS = ["record_id", "origin_number", "destination_number", "redirection_number", "imsi", "imei", "duration_s"]


def source_table(con, origin, destination, redirection, imsi, name="source") -> None:
    """Table `name` of CDR rows; `row_no` keeps the input order (hash joins do not)."""
    rows = list(zip(range(1, len(origin) + 1), origin, destination, redirection, imsi))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (row_no BIGINT, record_id BIGINT, origin_number VARCHAR,"
                " destination_number VARCHAR, redirection_number VARCHAR, imsi VARCHAR, imei VARCHAR,"
                " duration_s BIGINT)")
    con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?, '356938035643809', 60)",
                    [(n, *r) for n, r in enumerate(rows)])


def tokenized(con, plan, relation="source", sql="SELECT {select} FROM {relation} t{joins} ORDER BY t.row_no"):
    """(columns, rows) of `relation` with tokens in place, in input order."""
    cur = execute(con, sql.format(select=plan.select(exclude=("row_no",)), relation=relation, joins=plan.joins),
                  plan.params)
    return [d[0] for d in cur.description], cur.fetchall()


def tokenize_rows(tmp_path, policy, ring, origin, destination, redirection, imsi, *, probe_by_hash=True):
    """Plan tokens over a fresh table of these rows; (plan, columns, rows)."""
    con = connect(tmp_path / f"tmp-{ring.current.key_id}-{probe_by_hash}")
    try:
        source_table(con, origin, destination, redirection, imsi)
        plan = plan_tokens(con, "source", policy, ring, probe_by_hash=probe_by_hash)
        return (plan, *tokenized(con, plan))
    finally:
        con.close()


def test_plan_tokens(tmp_path, policy):
    plan, cols, rows = tokenize_rows(tmp_path, policy, RING_A, **RAW)
    con = connect(tmp_path / "tmp-count")
    try:
        source_table(con, **RAW)
        counted = identifiers_counted(con, ["tokens"], plan_tokens(con, "source", policy, RING_A).targets)
    finally:
        con.close()
    assert len(rows) == 5 and plan.key_id == "k2026-01"
    assert plan.targets == ("origin_number", "destination_number", "redirection_number", "imsi")
    assert plan.absent == ()
    assert counted == {"origin_number": 2, "destination_number": 4, "redirection_number": 1, "imsi": 3}
    assert cols == COLUMNS + [KEY_ID_COLUMN]
    tok = {c: [r[cols.index(c)] for r in rows] for c in cols}
    num = stored(SECRET_A, "msisdn:+38640123456")
    other = stored(SECRET_A, "msisdn:+38651987654")
    assert tok["record_id"] == [1, 2, 3, 4, 5]                       # each row keeps its own tokens, in order
    assert tok["origin_number"] == [num, num, num, None, other]      # three spellings, one token; NULL kept
    assert tok["destination_number"] == [stored(SECRET_A, "msisdn:+4915012345678"), stored(SECRET_A, "msisdn:100"),
                                         other, stored(SECRET_A, "msisdn:+38612345678"), None]
    assert tok["redirection_number"] == [None, None, num, None, None]
    assert tok["imsi"] == [stored(SECRET_A, "imsi:293401234567890")] * 2 + [
        stored(SECRET_A, "imsi:293409876543210"), None, stored(SECRET_A, "imsi:38640123456")]
    assert tok["imsi"][4] != stored(SECRET_A, "msisdn:+38640123456")
    assert tok["imei"] == ["356938035643809"] * 5 and tok["duration_s"] == [60] * 5   # other columns untouched
    assert tok["hmac_key_id"] == ["k2026-01"] * 5


def test_no_raw_identifier_in_what_the_plan_selects(tmp_path, policy):
    # Written out as the analytics step writes it: decompressed values and raw bytes (footer statistics
    # included) hold no raw identifier.
    con = connect(tmp_path / "tmp")
    out = tmp_path / "out" / "part.parquet"
    out.parent.mkdir()
    try:
        source_table(con, **RAW)
        plan = plan_tokens(con, "source", policy, RING_A)
        execute(con, f"COPY (SELECT {plan.select(exclude=('row_no',))} FROM source t{plan.joins}) TO $dst"
                     " (FORMAT parquet)", {**plan.params, "dst": str(out)})
    finally:
        con.close()
    raw_values = {v for col in RAW.values() for v in col if v} | {"+38651987654", "38651987654", "38612345678",
                                                                    "4915012345678", "40123456"}
    raw_values.discard("100")   # three digits also occur by chance in hex tokens
    assert scan([out.parent], sorted(raw_values)) == {}


def test_blank_identifier_gets_no_token(tmp_path, policy):
    # A blank spelling is no identifier: NULL, not the token of "msisdn:".
    _, cols, rows = tokenize_rows(tmp_path, policy, RING_A, ["", "   "], ["040123456", " "], [None, ""], ["", "1"])
    tok = {c: [r[cols.index(c)] for r in rows] for c in cols}
    assert tok["origin_number"] == [None, None] and tok["redirection_number"] == [None, None]
    assert tok["destination_number"] == [stored(SECRET_A, "msisdn:+38640123456"), None]
    assert tok["imsi"] == [None, stored(SECRET_A, "imsi:1")]


def test_plan_names_the_tokenize_columns_a_relation_lacks(tmp_path, policy):
    con = connect(tmp_path / "tmp")
    try:
        con.execute("CREATE TEMP TABLE source AS SELECT 1 AS row_no, '040123456' AS origin_number, 5 AS duration_s")
        plan = plan_tokens(con, "source", policy, RING_A)
        cols, rows = tokenized(con, plan)
    finally:
        con.close()
    assert plan.targets == ("origin_number",)
    assert plan.absent == ("destination_number", "redirection_number", "imsi")
    assert cols == ["origin_number", "duration_s", KEY_ID_COLUMN]
    assert rows == [(stored(SECRET_A, "msisdn:+38640123456"), 5, "k2026-01")]


def test_same_key_joins_across_nights_and_other_key_does_not(tmp_path, policy):
    night1 = (["040123456"], ["100"], [None], ["293401234567890"])
    night2 = (["+386 40 123 456"], ["112"], [None], ["293401234567890"])
    (_, c, r1), (_, _, r2), (_, _, r3) = (tokenize_rows(tmp_path / str(i), policy, ring, *night)
                                          for i, (ring, night) in enumerate([(RING_A, night1), (RING_A, night2),
                                                                             (ROTATED, night2)]))
    o, i, k = c.index("origin_number"), c.index("imsi"), c.index("hmac_key_id")
    assert r1[0][o] == r2[0][o] and r1[0][i] == r2[0][i]
    assert r3[0][o] != r2[0][o] and r3[0][i] != r2[0][i] and r3[0][k] == "k2026-07"
    assert r3[0][o] == stored(KEY_B.secret, "msisdn:+38640123456")     # the current key makes new tokens
    # A subject-access lookup after rotation finds the subject in both nights' outputs.
    found = derive_tokens("040123456", "msisdn", ROTATED, policy.operator)
    assert found == {"k2026-07": r3[0][o].hex(), "k2026-01": r1[0][o].hex()}


def test_refuses_input_that_already_has_a_key_id(tmp_path, policy):
    con = connect(tmp_path / "tmp")
    try:
        con.execute("CREATE TEMP TABLE source AS SELECT '040123456' AS origin_number, 'k' AS hmac_key_id")
        with pytest.raises(ValueError, match="hmac_key_id"):
            plan_tokens(con, "source", policy, RING_A)
    finally:
        con.close()


def test_speed_1m_rows_printed_not_asserted(tmp_path, policy):
    """Prints the time for 1M rows (see it with -s); deliberately no timed assertion."""
    con = connect(tmp_path / "tmp")
    try:
        con.execute(
            "CREATE TEMP TABLE source AS SELECT range AS row_no, range AS record_id,"
            " '0' || (40000000 + hash(range) % 100000)::VARCHAR AS origin_number,"
            " '+386' || (40000000 + hash(range + 1) % 100000)::VARCHAR AS destination_number,"
            " CAST(NULL AS VARCHAR) AS redirection_number,"
            " '29340' || lpad((hash(range) % 100000)::VARCHAR, 10, '0') AS imsi FROM range(1000000)")
        started = time.perf_counter()
        plan = plan_tokens(con, "source", policy, RING_A)
        rows = execute(con, f"SELECT count(*), count(origin_number) FROM (SELECT {plan.select()} FROM source t"
                            f"{plan.joins})", plan.params).fetchone()
    finally:
        con.close()
    print(f"\nplan_tokens: {rows[0]} rows, {time.perf_counter() - started:.2f} s")
    assert rows == (1_000_000, 1_000_000)


def test_rows_find_their_token_by_hash_as_by_text(tmp_path, policy):
    # Rows probe the lookup on the hash of their spelling; the text join (taken on a hash clash) agrees.
    got = []
    for by_hash in (True, False):
        plan, _, rows = tokenize_rows(tmp_path, policy, RING_A, **RAW, probe_by_hash=by_hash)
        assert ("hash(" in plan.joins) == by_hash
        got.append(rows)
    assert got[0] == got[1] and len(got[0]) == 5
