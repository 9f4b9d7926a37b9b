"""Which format a file is, from its first bytes: the delimiter sniffed, then every format's recognition
rules tried; the most specific match wins. A file no format fits is refused with a reason that says
what it looks like — its shape, never a value from it (docs/design.md §1).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass

from transforms.formats.loader import FormatCatalog
from transforms.formats.model import Format
from transforms.policy import Policy

DELIMITERS = (",", ";", "|", "\t")
DELIMITER_NAMES = {",": "commas", ";": "semicolons", "|": "pipes", "\t": "tabs"}
_SNIFF_LINES = 20
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\- ]{0,63}$")


@dataclass(frozen=True)
class Detection:
    """What the head of a file says: its format (None: refused), its columns and delimiter, and why."""

    format: Format | None
    source_columns: tuple[str, ...]       # as named in the header, or by the format (headerless)
    delimiter: str
    reason: str                           # why this format; or why none
    quote: str = '"'                      # the format's declared quote, or the sniffed one
    header_seen: bool = False             # no format: whether the first record reads as column names


def records(text: str, delimiter: str, quote: str = '"', limit: int = _SNIFF_LINES) -> list[list[str]]:
    """The first complete records of `text` (a record whose quote is still open at the end is left out)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote, strict=False)
    out = []
    try:
        for row in reader:
            if row:
                out.append(row)
            if len(out) > limit:
                break
    except csv.Error:
        pass
    if len(out) > 1 and not text.endswith(("\n", "\r")) and len(out) <= limit:
        out = out[:-1]             # the last one may be cut off by the head's end
    return out[:limit]


def sniff_delimiter(text: str) -> str:
    """The candidate delimiter that splits the head's records most consistently into most fields."""
    best, best_score = ",", (0.0, 1)
    for delim in DELIMITERS:
        counts = [len(r) for r in records(text, delim)]
        if not counts:
            continue
        field_count, seen = Counter(counts).most_common(1)[0]
        score = (seen / len(counts), field_count)
        if field_count > 1 and score > best_score:
            best, best_score = delim, score
    return best


def sniff_quote(text: str, delimiter: str) -> str:
    """'\'' when fields of the head are quoted with single quotes and never with double ones; else '"'."""
    def quoted_fields(q: str) -> int:
        d = re.escape(delimiter)
        return len(re.findall(rf"(?:^|{d}){q}[^{q}\r\n]*{q}(?={d}|\r|\n|$)", text, flags=re.M))
    return "'" if quoted_fields("'") and not quoted_fields('"') else '"'


_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"), (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
              (b"\xff\xfe", "UTF-16 (little-endian)"), (b"\xfe\xff", "UTF-16 (big-endian)"))


def wide_encoding(head: bytes) -> str | None:
    """The UTF-16 or UTF-32 encoding a file's head is in, by its byte-order mark or, without one, by ASCII text
    with a NUL after (or before) every character (a spreadsheet's "Unicode text"); None for anything else."""
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            return name
    sample = head[:1024] if len(head) >= 1024 else head[:len(head) - len(head) % 2]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) == len(odd) and not even.count(0):
        return "UTF-16 (little-endian)"
    if even.count(0) == len(even) and not odd.count(0):
        return "UTF-16 (big-endian)"
    return None


def head_text(head: bytes) -> str:
    return head.decode("utf-8", errors="replace").lstrip("\ufeff")


def detect(head: bytes, catalog: FormatCatalog, policy: Policy, *, override: str | None = None,
           parquet_columns: tuple[str, ...] | None = None) -> Detection:
    """Pick the format of a file from its head (or, for Parquet, its column names)."""
    wide = wide_encoding(head) if parquet_columns is None else None
    if wide:
        # Every format reads UTF-8 (or Latin-1 bytes); a UTF-16 text would read as one NUL-ridden field per
        # record. Said as what it is, so the sender knows what to change.
        return Detection(None, (), ",", f"encoded as {wide}, not UTF-8: not read (deliver it as UTF-8)")
    text = head_text(head)
    sniffed = sniff_delimiter(text) if parquet_columns is None else ","
    quote = sniff_quote(text, sniffed)
    if override:
        fmt = catalog.get(override)
        if fmt is None:
            return Detection(None, (), sniffed, f"format {override!r} is not known (cdr-audit formats list)")
        if (fmt.container == "parquet") != (parquet_columns is not None):
            return Detection(None, (), sniffed, f"format {override} cannot read this {_kind(parquet_columns)} file")
        return _chosen(fmt, text, sniffed, quote, parquet_columns, "forced by the run's format override")
    if parquet_columns is None and not text.strip():
        return Detection(None, (), sniffed, "no complete first record")
    scored = []
    for fmt in catalog.formats:
        if (fmt.container == "parquet") != (parquet_columns is not None):
            continue
        delim = fmt.delimiter or sniffed
        first = (list(parquet_columns) if parquet_columns is not None
                 else next(iter(records(text, delim, fmt.quote or sniff_quote(text, delim))), None))
        if first is None:
            continue
        score = _score(fmt, [f.strip() for f in first], policy)
        if score:
            scored.append((score, fmt))
    if not scored:
        reason, header_seen = _no_format_reason(text, sniffed, parquet_columns)
        return Detection(None, (), sniffed, reason, quote, header_seen)
    scored.sort(key=lambda sf: -sf[0])
    (score, fmt), rest = scored[0], scored[1:]
    if rest and rest[0][0] == score and not fmt.refuse and not rest[0][1].refuse:
        return Detection(None, (), sniffed, f"fits both {fmt.name} and {rest[0][1].name}; force one with --format")
    if fmt.refuse:
        return Detection(None, (), fmt.delimiter or sniffed, f"looks like {fmt.refuse} ({fmt.name}): not read",
                         quote, header_seen=fmt.header)
    return _chosen(fmt, text, sniffed, quote, parquet_columns, _why(fmt))


def _kind(parquet_columns) -> str:
    return "Parquet" if parquet_columns is not None else "delimited text"


def _chosen(fmt: Format, text: str, sniffed: str, sniffed_quote: str, parquet_columns, reason: str) -> Detection:
    """The format's declared delimiter and quote win over the sniffed ones."""
    delim = fmt.delimiter or sniffed
    quote = fmt.quote or (sniffed_quote if delim == sniffed else sniff_quote(text, delim))
    if parquet_columns is not None:
        return Detection(fmt, tuple(parquet_columns), delim, reason, quote)
    if fmt.header:
        first = next(iter(records(text, delim, quote)), None)
        if first is None:
            return Detection(None, (), delim, "no complete first record", quote)
        return Detection(fmt, tuple(first), delim, reason, quote)
    return Detection(fmt, fmt.columns, delim, reason, quote)


def _score(fmt: Format, first: list[str], policy: Policy) -> int:
    """How specifically the first record fits the format (0: it does not)."""
    r = fmt.recognize
    names = {n.lower() for n in first}
    score = 0
    if r.header_names:
        if not all(n.lower() in names for n in r.header_names):
            return 0
        score += 10 * len(r.header_names)
    if r.canonical_names:
        hits = sum(n in policy.allowed_columns for n in first)
        if hits < r.canonical_names:
            return 0
        score += hits
    if r.field_count is not None:
        if len(first) != r.field_count:
            return 0
        score += 1
    for column, pattern in r.patterns:
        columns = fmt.columns if not fmt.header else tuple(first)
        if column not in columns or columns.index(column) >= len(first):
            return 0
        if not re.search(pattern, first[columns.index(column)].strip()):
            return 0
        score += 5
    return score


def _why(fmt: Format) -> str:
    r = fmt.recognize
    parts = []
    if r.header_names:
        parts.append(f"header names {', '.join(r.header_names)}")
    if r.canonical_names:
        parts.append(f"at least {r.canonical_names} canonical column names")
    if r.field_count:
        parts.append(f"{r.field_count} fields")
    if r.patterns:
        parts.append("the shape of " + ", ".join(c for c, _ in r.patterns))
    return f"{fmt.name}: " + "; ".join(parts)


def looks_like_header(first: list[str]) -> bool:
    """Whether a first record reads as column names (every field an identifier), not as data."""
    return bool(first) and all(_IDENTIFIER.match(f.strip()) for f in first)


def _no_format_reason(text: str, delimiter: str, parquet_columns) -> tuple[str, bool]:
    """What the file looks like, in shape only (field count, delimiter, header or not); and whether its
    first record reads as column names."""
    if parquet_columns is not None:
        return f"a Parquet file with {len(parquet_columns)} columns that match no format", False
    first = next(iter(records(text, delimiter)), [])
    header = looks_like_header(first)
    return (f"first record has {len(first)} field(s) separated by {DELIMITER_NAMES[delimiter]}"
            f" ({'it looks like a header' if header else 'no header'}) and matches no known format"), header
