"""transforms/privacy/redact.py: names and errors we record never carry a value."""

from __future__ import annotations

import duckdb
import pytest

from transforms.privacy.redact import MAX_NAME, carries_identifier, safe_error, safe_name, shorten


@pytest.mark.parametrize("text, expected", [
    ("origin_number", "origin_number"),                  # a plain column name passes unchanged
    ("servedMSISDN", "servedMSISDN"),
    ("billing_2026-11-22.csv", "billing_2026-11-22.csv"),   # date digits: runs of 4, 2, 2 (< 9)
    ("12345678", "12345678"),                            # 8 digits: below the 9-digit threshold
    ("123456789", "<masked>"),                           # 9 digits: could be a national number
    ("040123456.csv", "<masked>.csv"),                   # a Slovenian mobile number as a file name
    ("caller 38640123456", "caller <masked>"),
    ("imsi_293400000000001", "imsi_<masked>"),           # '_' is not a digit: the 15-digit run is masked
    ("ana.novak@example.com", "<masked>"),
    ("contact: ana@a1.si here", "contact: <masked> here"),
    ("peer 10.20.30.40 port", "peer <masked> port"),
    ("naïve čšž", "naïve čšž"),                          # Latin-1/Latin Extended-A letters are printable
])
def test_safe_name_masks_values(text, expected):
    assert safe_name(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("a\x00b", "a?b"),          # NUL
    ("a\nb\rc\td", "a?b?c?d"),  # line breaks and tab: would split a log line
    ("x\u202ey", "x?y"),        # right-to-left override: reorders what a reader sees
    ("\x1b[31mred", "?[31mred"),  # ANSI escape
    ("emoji😀", "emoji?"),
])
def test_safe_name_replaces_unprintables(text, expected):
    assert safe_name(text) == expected


def test_unprintable_replacement_happens_before_masking():
    # NUL between digit groups turns into '?', so "0401" + "23456" are two short runs, not one.
    assert safe_name("0401\x0023456") == "0401?23456"
    # ... while an e-mail split by a control character is still masked (both halves touch '@').
    assert safe_name("a\x01b@example.com") == "<masked>"


def test_safe_name_truncates_to_the_limit():
    out = safe_name("c" * 100)
    assert len(out) == MAX_NAME == 64
    assert out == "c" * 63 + "…"
    assert safe_name("d" * 130, 120) == "d" * 119 + "…"
    assert safe_name("e" * 64) == "e" * 64      # exactly at the limit: unchanged


def test_masking_happens_before_truncation():
    # The number sits past the cut: masked first, so no digit of it survives the shortening.
    text = "x" * 60 + "38640123456"
    out = safe_name(text)
    assert "386" not in out
    assert out == "x" * 60 + "<ma…"


def test_hostile_sql_text_is_kept_printable_not_interpreted():
    assert safe_name("name\"; DROP TABLE runs; --") == "name\"; DROP TABLE runs; --"


def test_safe_error_keeps_type_and_line_only():
    exc = duckdb.InvalidInputException(
        "CSV Error on Line: 17\nOriginal Line: \"+38640123456\",\"ana@example.com\"\nExpected 18 columns")
    assert safe_error(exc) == "InvalidInputException at line 17"


def test_safe_error_without_a_line():
    assert safe_error(ValueError("bad value 38640123456 in column")) == "ValueError"


def test_safe_error_line_forms():
    assert safe_error(RuntimeError("error on line 5: '040123456'")) == "RuntimeError at line 5"
    assert safe_error(RuntimeError("CSV ERROR ON LINE: 9 x")) == "RuntimeError at line 9"


def test_safe_error_of_a_real_duckdb_read():
    with pytest.raises(duckdb.Error) as err:
        duckdb.connect().execute("SELECT * FROM read_csv('/nonexistent/040123456.csv')")
    out = safe_error(err.value)
    assert out == "IOException"
    assert "040123456" not in out


def test_email_with_a_digit_local_part_is_masked_whole():
    # The number is the local part: the whole address goes, not just the digits (domain kept otherwise).
    assert safe_name("040123456@a1.si") == "<masked>"
    assert safe_name("col 38640123456@sms.a1.si end") == "col <masked> end"


def test_long_hostile_name_is_handled_in_linear_time():
    # A header name can be as long as the head read for detection (64 KiB). A regex that
    # backtracks quadratically took ~12 s on this; linear takes milliseconds.
    import time

    start = time.perf_counter()
    out = safe_name("a" * 65536)
    assert time.perf_counter() - start < 2.0
    assert out == "a" * 63 + "…"


@pytest.mark.parametrize("text, limit, expected", [
    # The cut falls inside a word: back to the end of the word before it, then the ellipsis.
    ("§3.2 ¶3 item 10 (IMSI)", 10, "§3.2 ¶3…"),
    ("§3.2 ¶3 (not on the billing-data list)", 16, "§3.2 ¶3 (not on…"),
    ("unparseable: invalid encoding", 20, "unparseable:…"),
    # snake_case parts and file-name parts are words too.
    ("very_long_column_column_column", 20, "very_long_column…"),
    ("freeswitch_resaved_2026-11-22.csv", 30, "freeswitch_resaved_2026-11-22…"),
    ("freeswitch_resaved_2026-11-22.csv", 28, "freeswitch_resaved_2026-11…"),
    # The cut falls just before a space: the words before it are whole.
    ("abc def ghi", 8, "abc def…"),
    # Short enough: unchanged, and no ellipsis.
    ("abc def", 7, "abc def"),
    ("", 5, ""),
    # One word longer than the limit: the only way to show any of it.
    ("c" * 10, 4, "ccc…"),
])
def test_shorten_cuts_between_words(text, limit, expected):
    out = shorten(text, limit)
    assert out == expected
    assert len(out) <= limit


def test_shorten_never_leaves_part_of_a_word_when_a_whole_one_fits():
    sentence = "rows quarantined because the duration is outside the allowed range of the policy"
    words = set(sentence.split())
    for limit in range(5, len(sentence)):
        shown = shorten(sentence, limit).removesuffix("…").split()
        assert shown and set(shown) <= words, limit          # only whole words
        assert len(shorten(sentence, limit)) <= limit


def test_safe_name_cuts_a_long_snake_case_name_between_its_parts():
    out = safe_name("very_long_column_" + "column_" * 20 + "end")
    assert out.endswith("column…") and len(out) <= MAX_NAME


@pytest.mark.parametrize("text, carries", [
    # Typed free text (a hold's reason, a request's reference): case numbers and dates pass ...
    ("dispute 2026/114", False), ("court order 12/2026", False), ("letter of 2026-11-22", False),
    ("ticket DPO-2026-0114", False), ("ref 12 345", False), ("1234567", True),
    # ... a number or an IMSI, written whole or grouped, does not.
    ("customer +38640222222", True), ("+386 40 123 456", True), ("040 123 456", True), ("040-123-456", True),
    ("(040) 123/456", True), ("IMSI 293401234567890", True), ("call 1234567 back", True),
])
def test_typed_text_that_could_carry_a_number(text, carries):
    assert carries_identifier(text) is carries
