"""Keep personal data out of names, paths and messages we record.

Everything the audit store, logs and reports show about an input file passes
through here: column names and file names are made printable, shortened, and
anything that looks like a value (a long digit run, an e-mail, an IP address)
is masked. Exceptions from readers are reduced to their type and line number,
because their messages quote the offending input line.
"""

from __future__ import annotations

import re

_LOOKS_LIKE_DATA = re.compile(
    # e-mail; first, so a digit local part cannot leave the domain behind. Starting only where a
    # run of non-space characters starts keeps this linear on a long hostile column name.
    r"(?<![^\s@])[^\s@]+@[^\s@]+"
    r"|\d{9,}"                         # MSISDN, IMSI, IMEI
    r"|\b\d{1,3}(?:\.\d{1,3}){3}\b"    # IPv4
)
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\u024f]")
# Free text a person types into the audit store (a hold's reason, a request's reference or an extension's reasons)
# might carry a number or an IMSI pasted in. Refused rather than masked: the person names the case instead.
_DIGIT_RUN = re.compile(r"\d{7,}")                       # written without separators
_SPACED_DIGITS = re.compile(r"\d(?:[ ()./-]{0,2}\d)+")   # digits grouped by separators: 040 123 456, (040) 123
_SPACED_DIGITS_MIN = 9                                   # a national mobile number; a date or a case number has fewer
IDENTIFIER_IN_TEXT = "contains a long run of digits (a number or an IMSI?); name the case instead"
MAX_NAME = 64


# Where a word of a name or a sentence ends: a space, or the separators of snake_case, file names and dates.
_WORD_END = re.compile(r"[\s_\-./]")
ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: cut after the last whole word that fits, with an ellipsis.

    A word ends at a space or a separator (`_`, `-`, `.`, `/`), so `very_long_column_name` is cut between its
    parts and `§3.2 ¶3 (not on the list)` between its words, never inside one. Only a first word longer than
    the limit is cut where the limit falls: nothing of it would show otherwise.
    """
    if len(text) <= limit:
        return text
    if limit < 1:
        return ""
    room = limit - len(ELLIPSIS)
    head = text[:room]
    if not _WORD_END.match(text, room):                  # the cut falls inside a word: back to its start
        ends = [m.end() for m in _WORD_END.finditer(head)]
        head = head[:ends[-1]] if ends else head
    return head.rstrip(" \t_-./") + ELLIPSIS


def carries_identifier(text: str) -> bool:
    """Typed text holds what could be a subscriber's number, IMSI or IMEI: a long digit run, or digits grouped by
    spaces, dots, dashes, slashes or brackets that together make a number's length (`+386 40 123 456`). A case
    number or a date (`2026/114`, `2026-11-22`) is not."""
    return bool(_DIGIT_RUN.search(text)) or any(
        sum(ch.isdigit() for ch in m.group()) >= _SPACED_DIGITS_MIN for m in _SPACED_DIGITS.finditer(text))


def safe_name(text: str, limit: int = MAX_NAME) -> str:
    """A printable, shortened rendering of a column or file name, values masked."""
    text = _UNPRINTABLE.sub("?", text)
    text = _LOOKS_LIKE_DATA.sub("<masked>", text)
    return shorten(text, limit)


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(ch: str) -> str:
    code = ord(ch)
    return _ESCAPES.get(ch) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                                else f"\\U{code:08x}")


def safe_file_name(raw: bytes, limit: int = MAX_NAME) -> str:
    """A landing file's name as bytes, made printable: never assumed UTF-8 (a byte that is not is shown as
    `\\xe8`), unprintable characters escaped (`\\n`, `\\t`, `\\u2028`) rather than all shown alike, values
    masked, shortened."""
    text = raw.decode("utf-8", "backslashreplace")
    text = _UNPRINTABLE.sub(lambda m: _escaped(m.group()), text)
    text = _LOOKS_LIKE_DATA.sub("<masked>", text)
    return shorten(text, limit)


def safe_error(exc: BaseException) -> str:
    """Describe a reader error without quoting the input it choked on."""
    line = re.search(r"on line:? (\d+)", str(exc), re.IGNORECASE)
    where = f" at line {line.group(1)}" if line else ""
    return f"{type(exc).__name__}{where}"
