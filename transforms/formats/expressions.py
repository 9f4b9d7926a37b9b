"""A format's derivations as DuckDB SQL over one record's positional fields (`c0`, `c1`, …).

Only names the format defines reach the SQL text, bound to positions the pipeline makes; every value
written in a format file (a constant, a pattern, a prefix, a time format) is a bound parameter. Values
stay text here; validate types them, so a value that does not parse keeps its raw text and is rejected
with the rule it breaks.
"""

from __future__ import annotations

import re

from transforms.formats.calling_codes import CALLING_CODES_BY_LENGTH
from transforms.formats.model import (
    CallingCode, Cases, Column, Constant, Derivation, First, Format, ImeiFromImeisv, PlmnArea, Sum,
)
from transforms.policy import Operator

# Times end as UTC text; a value that does not parse keeps its raw text (validate rejects it).
_UTC_TEXT = "strftime(timezone('UTC', {ts}), '%Y-%m-%d %H:%M:%S')"
_HAS_OFFSET = r"(Z|z|[+-][0-9]{2}:?[0-9]{2})$"
_GLOB = re.compile(r"[*?]")     # a `Cases` pattern's wildcards


class Renderer:
    """Renders one format's derivations for one file: field positions, time zone, bound parameters."""

    def __init__(self, fmt: Format, source_columns: tuple[str, ...], operator: Operator, timezone: str | None = None):
        self.fmt, self.operator = fmt, operator
        self.position: dict[str, int] = {}
        self.read_positions: set[int] = set()      # the fields the rendered SQL reads
        for i, name in enumerate(source_columns):
            self.position.setdefault(name.strip().lower(), i)      # a repeated name: the first one is read
        zone = timezone or fmt.timezone
        self.params: dict = {"fmt_tz": operator.local_timezone if zone == "local" else zone,
                             "fmt_home_plmns": list(operator.home_plmns),
                             "fmt_operator_cc": operator.country_calling_code,
                             **{f"fmt_calling_codes_{n}": list(codes) for n, codes in CALLING_CODES_BY_LENGTH.items()}}

    def bind(self, value) -> str:
        name = f"fmt_{len(self.params)}"
        self.params[name] = value
        return f"${name}"

    def field(self, name: str) -> str | None:
        i = self.position.get(name.strip().lower())
        if i is None:
            return None
        self.read_positions.add(i)
        return f"NULLIF(trim(CAST(c{i} AS VARCHAR)), '')"

    def canonical(self, column: str) -> str:
        """The SELECT item of one canonical column (NULL when the format does not feed it)."""
        d = self.fmt.derivation(column)
        expr = self.render(d) if d is not None else None
        if column == "duration_s" and expr is not None and self.fmt.answered is not None:
            expr = self._answered(expr)
        return f"CAST({expr or 'NULL'} AS VARCHAR) AS {column}"

    def render(self, d: Derivation) -> str | None:
        if isinstance(d, Column):
            return self._column(d)
        if isinstance(d, Constant):
            return self.bind(d.value)
        if isinstance(d, Sum):
            parts = [self._column(p) or "NULL" for p in d.parts]
            total = " + ".join(f"TRY_CAST({p} AS HUGEINT)" for p in parts)
            return f"COALESCE(CAST({total} AS VARCHAR), NULLIF(concat_ws('+', {', '.join(parts)}), ''))"
        if isinstance(d, First):
            return f"COALESCE({', '.join(self.render(p) or 'NULL' for p in d.parts)})"
        if isinstance(d, ImeiFromImeisv):
            return _imei(self._column(d.part))
        if isinstance(d, PlmnArea):
            v = self._column(d.part)
            return None if v is None else \
                f"CASE WHEN {v} IS NULL THEN NULL WHEN list_contains($fmt_home_plmns, {v}) THEN 'home' ELSE 'roaming' END"
        if isinstance(d, CallingCode):
            return self._calling_code(d)
        return self._cases(d)

    def _column(self, c: Column) -> str | None:
        v = self.field(c.name)
        if v is None:
            return None
        if c.strip_prefixes:
            v = f"regexp_replace({v}, {self.bind('^(?:' + '|'.join(map(re.escape, c.strip_prefixes)) + ')')}, '')"
        if c.international_prefixes:
            rx = self.bind("^(?:" + "|".join(c.international_prefixes) + ")")
            v = f"CASE WHEN regexp_matches({v}, {rx} || '[1-9]') THEN regexp_replace({v}, {rx}, '+') ELSE {v} END"
        if c.e164_digits:
            v = f"CASE WHEN regexp_full_match({v}, '[1-9][0-9]{{6,14}}') THEN '+' || {v} ELSE {v} END"
        if c.hex:
            v = (f"CASE WHEN regexp_full_match({v}, '[0-9A-Fa-f]{{1,15}}') THEN CAST(CAST('0x' || {v} AS BIGINT)"
                 f" AS VARCHAR) ELSE {v} END")
        if c.lowercase:
            v = f"lower({v})"
        if c.time:
            v = f"COALESCE({_UTC_TEXT.format(ts=self._timestamp(v, c.time))}, {v})"
        return v

    def _calling_code(self, d: CallingCode) -> str | None:
        """International (`+` and digits): the calling code it starts with, of the bound table (the codes are
        prefix-free, so at most one length matches); national (digits only): the operator's code (policy
        `operator.country_calling_code`); anything else, or an unassigned code: NULL. docs/design.md §1."""
        v = self._column(d.part)
        if v is None:
            return None
        lookup = " ".join(f"WHEN list_contains($fmt_calling_codes_{n}, substr(number, 2, {n}))"
                          f" THEN substr(number, 2, {n})" for n in CALLING_CODES_BY_LENGTH)
        home = self.operator.country_calling_code
        if home in CALLING_CODES_BY_LENGTH.get(len(home), ()):
            # Most numbers are the operator's country's: its code first, one comparison instead of a search of the
            # table (the codes are prefix-free, so a number starting with it has that code). 0.75 of the two
            # columns' 4.6 CPU s at 4.5M rows (benchmarks/README.md, issue 17).
            lookup = f"WHEN starts_with(number, '+' || $fmt_operator_cc) THEN $fmt_operator_cc {lookup}"
        # The number is worked out once and named by a one-element list (3x faster than repeating it).
        return (f"list_transform([{v}], lambda number: CASE"
                f" WHEN regexp_full_match(number, '[0-9]+') THEN $fmt_operator_cc"
                f" WHEN regexp_full_match(number, '[+][0-9]+') THEN CASE {lookup} END END)[1]")

    def _timestamp(self, v: str, kinds: tuple[str, ...]) -> str:
        """A TIMESTAMPTZ of the text `v`: with an offset as written, without one in the file's time zone."""
        kind = kinds[0]
        if kind == "iso":
            return (f"CASE WHEN regexp_matches({v}, '{_HAS_OFFSET}') THEN TRY_CAST({v} AS TIMESTAMPTZ)"
                    f" ELSE timezone($fmt_tz, TRY_CAST({v} AS TIMESTAMP)) END")
        if kind == "ts32298":      # YYMMDDhhmmss and an offset ±hhmm (TS 32.298 TimeStamp); without it, local
            return (f"COALESCE(try_strptime({v}, '%y%m%d%H%M%S%z'),"
                    f" timezone($fmt_tz, try_strptime({v}, '%y%m%d%H%M%S')))")
        if kind == "epoch":
            return f"to_timestamp(TRY_CAST({v} AS DOUBLE))"
        patterns = self.bind(list(kinds))
        if any("%z" in k for k in kinds):
            return f"try_strptime({v}, {patterns})"
        return f"timezone($fmt_tz, try_strptime({v}, {patterns}))"

    def _cases(self, d: Cases) -> str | None:
        decide = self.field(d.column)
        default = self.render(d.default) if d.default is not None else None
        if decide is None:
            return default
        whens = []
        for case in d.cases:
            # A pattern without * or ? is a value: ILIKE is lower() on both sides and LIKE, so it is equality of the
            # lowered texts, and that costs less than the pattern matcher (0.45 of 9 CPU s at 4.5M rows;
            # benchmarks/README.md, issue 17).
            likes = " OR ".join(f"{decide} ILIKE {self.bind(_like(p))} ESCAPE '\\'" if _GLOB.search(p) else
                                f"lower({decide}) = lower({self.bind(p)})" for p in case.patterns)
            whens.append(f"WHEN {likes} THEN {self.render(case.then) or 'NULL'}")
        return f"CASE {' '.join(whens)} ELSE {default or 'NULL'} END"

    def _answered(self, duration: str) -> str:
        a = self.fmt.answered
        column = self.field(a.column)
        if column is None:
            return duration
        answered = self.bind([v.upper() for v in a.values])
        return f"CASE WHEN {column} IS NULL OR list_contains({answered}, upper({column})) THEN {duration} ELSE '0' END"


def _like(glob: str) -> str:
    """A glob (* and ?) as an ILIKE pattern with '\\' as escape."""
    out = []
    for ch in glob:
        out.append({"*": "%", "?": "_", "%": "\\%", "_": "\\_", "\\": "\\\\"}.get(ch, ch))
    return "".join(out)


def _imei(v: str | None) -> str | None:
    """IMEISV (16 digits) → IMEI: the first 14 digits and their Luhn check digit; 15 digits pass as they are.

    The 14 terms are written out (every second digit doubled, its digits summed: 2d - 9 when d > 4): a
    list lambda over the positions costs ~10 s per million rows, this ~1 s.
    """
    if v is None:
        return None
    digit = "(ascii(substr({v}, {i}, 1)) - 48)"
    terms = [digit.format(v=v, i=i) if i % 2 else
             f"(2 * {digit.format(v=v, i=i)} - 9 * CAST({digit.format(v=v, i=i)} > 4 AS INTEGER))"
             for i in range(1, 15)]
    luhn = f"CAST((10 - ({' + '.join(terms)}) % 10) % 10 AS VARCHAR)"
    return f"CASE WHEN regexp_full_match({v}, '[0-9]{{16}}') THEN left({v}, 14) || {luhn} ELSE {v} END"
