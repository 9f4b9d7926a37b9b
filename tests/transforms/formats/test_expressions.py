"""transforms/formats/expressions.py: each derivation of the vocabulary, run in DuckDB on hand-made records.

Expected values are worked out from the specs, not read off the code: a TS 32.298 TimeStamp
`261121195642+0100` is 2026-11-21 19:56:42 at UTC+1, i.e. 18:56:42 UTC; hex 1A2B is 6699; the IMEI of
IMEISV 4901542032375101 is TAC+SNR 49015420323751 and its Luhn check digit 8. Country calling codes are
ITU-T E.164's: 386 Slovenia, 354 Iceland, 7 Russia, 1 the North American plan (Bahamas +1 242 too), 882
international networks; 28x is spare.
"""

from __future__ import annotations

import dataclasses

import duckdb
import pytest

from transforms.formats.expressions import Renderer
from transforms.lake.connection import execute
from transforms.formats.model import (Answered, CallingCode, Case, Cases, Column, Constant, First, Format,
                                      ImeiFromImeisv, PlmnArea, Sum)


def run(policy, fmt: Format, columns: tuple[str, ...], rows: list[tuple], timezone: str | None = None) -> list[dict]:
    """The canonical columns the format makes of `rows` (the values of `columns`), as dicts."""
    r = Renderer(fmt, columns, policy.operator, timezone)
    select = ", ".join(r.canonical(c) for c in policy.allowed_columns)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE t (" + ", ".join(f"c{i} VARCHAR" for i in range(len(columns))) + ")")
    con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(columns))})", rows)
    cur = execute(con, f"SELECT {select} FROM t", r.params)
    out = [dict(zip([d[0] for d in cur.description], row)) for row in cur.fetchall()]
    con.close()
    return out


def fmt(**kw) -> Format:
    return Format(name="t", title="t", path="t.yaml", **kw)


def test_columns_constants_and_time_zones(policy):
    f = fmt(map=(("origin_number", Column("a")), ("service_type", Constant("call")),
                 ("start_time", Column("t", time=("%Y-%m-%d %H:%M:%S",)))), timezone="local")
    (row,) = run(policy, f, ("a", "t"), [(" 040123456 ", "2026-07-01 12:00:00")])
    # Trimmed; Ljubljana is UTC+2 in summer; the constant is bound, not written into the SQL.
    assert (row["origin_number"], row["service_type"], row["start_time"]) == ("040123456", "call", "2026-07-01 10:00:00")
    assert row["destination_number"] is None                      # not fed by the format
    (row,) = run(policy, f, ("a", "t"), [("1", "2026-07-01 12:00:00")], timezone="America/New_York")
    assert row["start_time"] == "2026-07-01 16:00:00"             # a per-file zone wins over the format's


def test_time_kinds(policy):
    f = fmt(map=(("start_time", Column("t", time=("ts32298",))),), timezone="UTC")
    rows = run(policy, f, ("t",), [("261121195642+0100",), ("261121195642",), ("not a time",)])
    assert [r["start_time"] for r in rows] == ["2026-11-21 18:56:42", "2026-11-21 19:56:42", "not a time"]
    f = fmt(map=(("start_time", Column("t", time=("iso",))),), timezone="Europe/Ljubljana")
    rows = run(policy, f, ("t",), [("2026-11-22T10:00:00Z",), ("2026-11-22T10:00:00+01:00",), ("2026-11-22 10:00:00",)])
    assert [r["start_time"] for r in rows] == ["2026-11-22 10:00:00", "2026-11-22 09:00:00", "2026-11-22 09:00:00"]
    f = fmt(map=(("start_time", Column("t", time=("epoch",))),))
    assert run(policy, f, ("t",), [("1795306794",)])[0]["start_time"] == "2026-11-22 00:19:54"   # date -u -d @1795306794


def test_numbers_hex_and_imei(policy):
    f = fmt(map=(("origin_number", Column("m", e164_digits=True)),
                 ("destination_number", Column("d", strip_prefixes=("tel:", "sip:"), international_prefixes=("00", "011"))),
                 ("cell_id", Column("ci", hex=True)), ("imei", ImeiFromImeisv(Column("sv")))))
    rows = run(policy, f, ("m", "d", "ci", "sv"), [
        ("38640123456", "tel:0038641765432", "1A2B", "4901542032375101"),
        ("1234", "011441234567", "zz", "490154203237518"),
        ("38640123456", "sip:040123456", "00FF", "12345")])
    assert [r["origin_number"] for r in rows] == ["+38640123456", "1234", "+38640123456"]
    assert [r["destination_number"] for r in rows] == ["+38641765432", "+441234567", "040123456"]
    assert [r["cell_id"] for r in rows] == ["6699", "zz", "255"]                 # not hex: left for validate
    assert [r["imei"] for r in rows] == ["490154203237518", "490154203237518", "12345"]


def test_sum_first_and_serving_network(policy):
    f = fmt(map=(("data_volume_bytes", Sum((Column("u"), Column("d")))),
                 ("start_time", First((Column("a"), Column("s")))),
                 ("service_area", PlmnArea(Column("p")))))
    rows = run(policy, f, ("u", "d", "a", "s", "p"), [("100", "23", None, "x", "29340"), ("10", "n/a", "y", "x", "26201"),
                                                      (None, "5", None, None, None)])
    assert [r["data_volume_bytes"] for r in rows] == ["123", "10+n/a", "5"]       # a bad part keeps the raw text
    assert [r["start_time"] for r in rows] == ["x", "y", None]
    assert [r["service_area"] for r in rows] == ["home", "roaming", None]        # home PLMNs from the policy


@pytest.mark.parametrize("number, modifiers, code", [
    ("+38641123456", {}, "386"),
    ("0038641123456", {"international_prefixes": ("00",)}, "386"),
    ("01112125551234", {"international_prefixes": ("011",)}, "1"),        # 011 + 1 212 555 1234
    ("+79161234567", {}, "7"),
    ("+12423221234", {}, "1"),                                             # Bahamas, in the NANP
    ("+3545551234", {}, "354"),
    ("+882161234567", {}, "882"),
    ("tel:+4930123456", {"strip_prefixes": ("tel:",)}, "49"),
    ("4930123456", {"e164_digits": True}, "49"),                           # bare E.164 digits
    ("041123456", {}, "386"),                                              # national: the operator's country
    ("100", {}, "386"),                                                    # an extension, national too
    ("4930123456", {}, "386"),                     # no e164_digits: bare digits are a national number
    ("0044201234567", {}, "386"),                  # 00 not declared: national (formats declare it)
    ("", {}, None),
    (None, {}, None),
    ("anonymous", {}, None),
    ("*123#", {}, None),
    ("+", {}, None),
    ("+2812345678", {}, None),                                             # a spare code
    ("+0123456", {}, None),
    ("+386 41 123 456", {}, None),                                         # not digits: validate judges
])
def test_calling_code_of_a_number(policy, number, modifiers, code):
    f = fmt(map=(("called_country_code", CallingCode(Column("n", **modifiers))),))
    assert run(policy, f, ("n",), [(number,)])[0]["called_country_code"] == code


def test_a_national_number_takes_the_operators_code_and_the_table_is_bound(policy):
    austria = dataclasses.replace(policy, operator=dataclasses.replace(policy.operator, country_calling_code="43"))
    f = fmt(map=(("origin_country_code", CallingCode(Column("n"))),))
    rows = run(austria, f, ("n",), [("06641234567",), ("+38641123456",)])
    assert [r["origin_country_code"] for r in rows] == ["43", "386"]
    r = Renderer(f, ("n",), policy.operator)
    sql = r.canonical("origin_country_code")
    assert "386" not in sql and "882" not in sql and "'1'" not in sql           # codes are bound, not inlined
    assert "882" in r.params["fmt_calling_codes_3"] and r.params["fmt_operator_cc"] == "386"


def test_the_operators_own_code_is_tried_first_only_when_it_is_an_assigned_code(policy):
    # 386 is assigned: a number that starts with it has it (the codes are prefix-free), and any other number is
    # looked up in the whole table as before.
    f = fmt(map=(("origin_country_code", CallingCode(Column("n"))),))
    rows = run(policy, f, ("n",), [("+38641123456",), ("+3861",), ("+354555",), ("+38",)])
    assert [r["origin_country_code"] for r in rows] == ["386", "386", "354", None]
    assert "starts_with" in Renderer(f, ("n",), policy.operator).canonical("origin_country_code")
    # A country calling code that E.164 does not assign (28x is spare) is never given to an international number.
    spare = dataclasses.replace(policy, operator=dataclasses.replace(policy.operator, country_calling_code="280"))
    rows = run(spare, f, ("n",), [("+2801234567",), ("041123456",)])
    assert [r["origin_country_code"] for r in rows] == [None, "280"]
    assert "starts_with" not in Renderer(f, ("n",), spare.operator).canonical("origin_country_code")


def test_cases_match_globs_case_insensitively_and_read_without_keeping(policy):
    direction = Cases("ctx", (Case(("from-pstn*", "*-trunk"), Constant("incoming")),
                              Case(("100_%",), Constant("odd"))), Constant("outgoing"))
    f = fmt(map=(("direction", direction),))
    rows = run(policy, f, ("ctx",), [("From-PSTN-custom",), ("a-trunk",), ("default",), (None,), ("100_%",), ("100x",)])
    assert [r["direction"] for r in rows] == ["incoming", "incoming", "outgoing", "outgoing", "odd", "outgoing"]


def test_cases_without_wildcards_match_the_whole_value_in_any_case(policy):
    # A pattern without * or ? is compared as a value (lowered on both sides, as ILIKE does), not searched.
    service = Cases("t", (Case(("MOC", "mtc"), Constant("call")), Case(("sms*",), Constant("sms"))), Constant("other"))
    f = fmt(map=(("service_type", service),))
    rows = run(policy, f, ("t",), [("moc",), ("MTC",), ("Moc ",), ("MOCX",), ("xmoc",), ("SMSo",), ("ÅMOC",), (None,)])
    # "Moc " is trimmed as every field is; "MOCX" and "xmoc" are other values; "ÅMOC" is not "moc".
    assert [r["service_type"] for r in rows] == ["call", "call", "call", "other", "other", "sms", "other", "other"]
    sql = Renderer(f, ("t",), policy.operator).canonical("service_type")
    assert sql.count("ILIKE") == 1 and sql.count("lower(") == 4


def test_unanswered_legs_keep_no_duration(policy):
    f = fmt(map=(("duration_s", Column("billsec")),), answered=Answered("disposition", ("ANSWERED",)))
    rows = run(policy, f, ("billsec", "disposition"), [("60", "ANSWERED"), ("7", "NO ANSWER"), ("5", "answered"),
                                                       ("9", None)])
    assert [r["duration_s"] for r in rows] == ["60", "0", "5", "9"]


@pytest.mark.parametrize("hostile", ["'; DROP TABLE x; --", "$fmt_tz", "{}"])
def test_values_from_a_format_file_are_bound_not_spliced(policy, hostile):
    f = fmt(map=(("tariff_code", Constant(hostile)), ("direction", Cases("c", (Case((hostile,), Constant(hostile)),)))))
    r = Renderer(f, ("c",), policy.operator)
    sql = ", ".join(r.canonical(c) for c in policy.allowed_columns)
    assert hostile not in sql and hostile in r.params.values()
    assert run(policy, f, ("c",), [(hostile,)])[0]["direction"] == hostile
