"""Load the source formats from YAML: the built-ins in `formats/` and a user's own folder.

Each file is read strictly (`policy.strict_yaml`): an unknown key, a missing key or a key given twice is
an error naming the file and the key path. A user's format with a built-in's name replaces it (an
Asterisk dial plan's contexts are a deployment's own). docs/design.md §1.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import available_timezones

from transforms.bundled import BUILTIN_FORMATS
from transforms.formats.model import (
    CONTAINERS, TIME_KINDS, Answered, CallingCode, Case, Cases, Column, Constant, Derivation, First, Format,
    FormatError, ImeiFromImeisv, PlmnArea, Recognition, Sum, deciding_columns, stored_columns,
)
from transforms.policy import Policy
from transforms.policy.strict_yaml import Section, read_yaml

FORMATS_DIR_ENV = "CDR_AUDIT_FORMATS_DIR"
_NAME = r"^[a-z][a-z0-9_]*$"
_COLUMN_KINDS = ("column", "constant", "sum", "first", "imei_from_imeisv", "plmn_area", "calling_code", "cases")


@dataclass(frozen=True)
class FormatCatalog:
    """Every format a run may use, built-ins first; `folders` are where they were read from."""

    formats: tuple[Format, ...]
    folders: tuple[str, ...]

    def get(self, name: str) -> Format | None:
        return next((f for f in self.formats if f.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.formats)


def load_formats(policy: Policy, user_dir: str | Path | None = None) -> FormatCatalog:
    """The built-in formats and, from `user_dir` (or $CDR_AUDIT_FORMATS_DIR), the user's own."""
    folders = [BUILTIN_FORMATS]
    user_dir = user_dir or os.environ.get(FORMATS_DIR_ENV) or None
    if user_dir:
        if not Path(user_dir).is_dir():
            raise FormatError(f"formats folder {user_dir} does not exist or is not a folder")
        folders.append(Path(user_dir))
    by_name: dict[str, Format] = {}
    for folder in folders:
        seen: dict[str, Path] = {}
        for path in sorted(Path(folder).glob("*.yaml")):
            fmt = load_format(path, policy)
            if fmt.name in seen:
                raise FormatError(f"format file {path}: name {fmt.name!r} is also the name in {seen[fmt.name]}")
            seen[fmt.name] = path
            by_name[fmt.name] = fmt          # a user's format replaces the built-in of that name
    return FormatCatalog(tuple(by_name.values()), tuple(str(f) for f in folders))


def load_format(path: Path, policy: Policy) -> Format:
    """One format file, checked; FormatError names the file and the key."""
    what = f"format file {path}"
    _, doc = read_yaml(path, "format file", FormatError)
    try:
        return _read(Section(doc, "", what, FormatError), path, policy)
    except FormatError as exc:
        message = str(exc)
        raise FormatError(message if message.startswith("format file") else f"{what}: {message}") from None


def _read(top: Section, path: Path, policy: Policy) -> Format:
    name = top.text("name", pattern=_NAME)
    title = top.text("title")
    top.text("source", required=False)        # where the layout comes from: documentation only
    refuse = top.text("refuse", required=False)
    recognize = _recognition(top.section("recognize"))
    if refuse:
        header = _flag(top, "header", default=True)
        columns = tuple(top.text_list("columns")) if "columns" in top.node else ()
        top.no_extra_keys()
        return Format(name=name, title=title, path=str(path), recognize=recognize, refuse=refuse, header=header,
                      columns=columns)
    container = top.choice("container", CONTAINERS, required=False) or "csv"
    canonical = _flag(top, "canonical")
    header = True if canonical else _flag(top, "header", default=True)
    columns = tuple(top.text_list("columns")) if "columns" in top.node else ()
    if not header and not columns:
        raise FormatError("columns: a format without a header names its columns by position")
    delimiter = top.text("delimiter", required=False)
    if delimiter is not None and len(delimiter) != 1:
        raise FormatError(f"delimiter: one character, got {delimiter!r}")
    quote = top.text("quote", required=False) or None          # None: sniffed from the head
    comment_prefix = top.text("comment_prefix", required=False) or None
    for key, value in (("quote", quote), ("comment_prefix", comment_prefix)):
        if value is not None and (len(value) != 1 or value == delimiter):
            raise FormatError(f"{key}: one character, not the delimiter, got {value!r}")
    timezone = top.text("timezone", required=False) or "local"
    if timezone not in ("local", "UTC") and timezone not in available_timezones():
        raise FormatError(f"timezone: {timezone!r} is not 'local', 'UTC' or an IANA time zone")
    if canonical:
        if "map" in top.node or columns:
            raise FormatError("canonical: the canonical layout takes its columns and map from the policy")
        mapping: tuple[tuple[str, Derivation], ...] = tuple(
            (c, Column(c, time=("iso",)) if policy.field(c).type == "timestamp" else Column(c))
            for c in policy.allowed_columns)
    else:
        m = top.section("map")
        mapping = tuple((c, _derivation(m, c)) for c in m.keys())
        unknown = [c for c, _ in mapping if not policy.is_allowed(c)]
        if unknown:
            raise FormatError(f"map: {', '.join(unknown)} not on the policy's billing-data list")
        m.no_extra_keys()
    answered = None
    if "answered" in top.node:
        a = top.section("answered")
        answered = Answered(column=a.text("column"), values=tuple(a.text_list("values")))
        a.no_extra_keys()
    fmt = Format(
        name=name, title=title, path=str(path), container=container, header=header, columns=columns,
        canonical=canonical, delimiter=delimiter, quote=quote,
        comment_prefix=comment_prefix, timezone=timezone, recognize=recognize,
        map=mapping, not_allowed=tuple(top.text_list("not_allowed")) if "not_allowed" in top.node else (),
        answered=answered)
    _check_columns(fmt)
    _check_not_allowed(fmt)
    top.no_extra_keys()
    return fmt


def _flag(s: Section, key: str, default: bool = False) -> bool:
    s.used.add(key)
    value = s.node.get(key, default)
    if not isinstance(value, bool):
        raise FormatError(f"{key}: expected true or false, got {value!r}")
    return value


def _recognition(r: Section) -> Recognition:
    patterns = ()
    if "patterns" in r.node:
        p = r.section("patterns")
        patterns = tuple((c, p.text(c)) for c in p.keys())
        for c, rx in patterns:
            try:
                re.compile(rx)
            except re.error as exc:
                raise FormatError(f"recognize.patterns.{c}: not a regular expression ({exc})") from None
    rec = Recognition(
        header_names=tuple(r.text_list("header_names")) if "header_names" in r.node else (),
        canonical_names=r.integer("canonical_names", minimum=1) if "canonical_names" in r.node else 0,
        field_count=r.integer("field_count", minimum=1) if "field_count" in r.node else None,
        patterns=patterns)
    if not (rec.header_names or rec.canonical_names or rec.field_count or rec.patterns):
        raise FormatError("recognize: needs header_names, canonical_names, field_count or patterns")
    r.no_extra_keys()
    return rec


def _derivation(parent: Section, key: str) -> Derivation:
    """A map entry: a column name, or a mapping with exactly one kind key (and that kind's options)."""
    value = parent.node.get(key)
    parent.used.add(key)
    where = f"{parent.key}.{key}" if parent.key else key
    if isinstance(value, str):
        return Column(value)
    if not isinstance(value, dict):
        raise FormatError(f"{where}: a column name or a mapping with one of: {', '.join(_COLUMN_KINDS)}")
    d = Section(value, where, "format", FormatError)
    kinds = [k for k in _COLUMN_KINDS if k in value]
    if len(kinds) != 1:
        raise FormatError(f"{where}: exactly one of {', '.join(_COLUMN_KINDS)}, got {', '.join(kinds) or 'none'}")
    kind = kinds[0]
    if kind == "column":
        out: Derivation = _column(d)
    elif kind == "constant":
        out = Constant(d.text("constant"))
    elif kind == "sum":
        out = Sum(tuple(_part_column(d, "sum", i, v) for i, v in enumerate(_list(d, "sum"))))
    elif kind == "first":
        out = First(tuple(_derivation(Section({str(i): v}, f"{where}.first", "format", FormatError), str(i))
                          for i, v in enumerate(_list(d, "first"))))
    elif kind in ("imei_from_imeisv", "plmn_area"):
        part = _part_column(d, kind, None, value[kind])
        d.used.add(kind)
        out = ImeiFromImeisv(part) if kind == "imei_from_imeisv" else PlmnArea(part)
    elif kind == "calling_code":
        out = CallingCode(_number_column(d, value[kind]))
        d.used.add(kind)
    else:
        out = _cases(d)
    d.no_extra_keys()
    return out


def _list(d: Section, key: str) -> list:
    d.used.add(key)
    value = d.node[key]
    if not isinstance(value, list) or len(value) < 2:
        raise FormatError(f"{d.key}.{key}: expected a list of at least two")
    return value


def _part_column(d: Section, key: str, i: int | None, value) -> Column:
    where = f"{d.key}.{key}" + (f"[{i}]" if i is not None else "")
    if isinstance(value, str):
        return Column(value)
    if isinstance(value, dict) and "column" in value:
        s = Section(value, where, "format", FormatError)
        col = _column(s)
        s.no_extra_keys()
        return col
    raise FormatError(f"{where}: a column name or {{column: …}}")


def _column(d: Section) -> Column:
    time = ()
    if "time" in d.node:
        raw = d.node["time"]
        d.used.add("time")
        time = tuple(raw) if isinstance(raw, list) else (raw,)
        for t in time:
            if not isinstance(t, str) or not (t in TIME_KINDS or "%" in t):
                raise FormatError(f"{d.key}.time: {t!r} is not one of {', '.join(TIME_KINDS)} or a strptime pattern")
        if len(time) > 1 and any(t in TIME_KINDS for t in time):
            raise FormatError(f"{d.key}.time: several patterns are strptime patterns only")
        for t in time:
            problem = _strptime_problem(t) if t not in TIME_KINDS else None
            if problem:
                raise FormatError(f"{d.key}.time: {t!r} is not a strptime pattern the reader knows ({problem})")
    return Column(name=d.text("column"), time=time, hex=_flag(d, "hex"), lowercase=_flag(d, "lowercase"),
                  **_number_modifiers(d))


def _number_modifiers(d: Section) -> dict:
    """The modifiers that bring a number to `+…` when it is international (the rest is national)."""
    return dict(
        strip_prefixes=tuple(d.text_list("strip_prefixes")) if "strip_prefixes" in d.node else (),
        international_prefixes=(tuple(d.text_list("international_prefixes", pattern=r"^\d{2,4}$"))
                                if "international_prefixes" in d.node else ()),
        e164_digits=_flag(d, "e164_digits"))


def _number_column(d: Section, value) -> Column:
    """The number a calling code is read from: a column name, or {column: …} with the number modifiers only."""
    where = f"{d.key}.calling_code"
    if isinstance(value, str):
        return Column(value)
    if not isinstance(value, dict) or "column" not in value:
        raise FormatError(f"{where}: a column name or {{column: …}} (with strip_prefixes, international_prefixes,"
                          " e164_digits)")
    s = Section(value, where, "format", FormatError)
    number = Column(name=s.text("column"), **_number_modifiers(s))
    s.no_extra_keys()
    return number


def _cases(d: Section) -> Cases:
    rules = []
    for i, w in enumerate(d.items("when")):
        patterns = w.node.get("match")
        w.used.add("match")
        patterns = [patterns] if _pattern(patterns) else patterns
        if not isinstance(patterns, list) or not patterns or not all(_pattern(p) for p in patterns):
            raise FormatError(f"{w.key}.match: a pattern or a list of patterns")
        if ("value" in w.node) == ("then" in w.node):
            raise FormatError(f"{w.key}: give either value (a constant) or then (a derivation)")
        then = Constant(w.text("value")) if "value" in w.node else _derivation(w, "then")
        rules.append(Case(tuple(str(p) for p in patterns), then))
        w.no_extra_keys()
    default = None
    if "default" in d.node:
        raw = d.node["default"]
        default = Constant(str(raw)) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else \
            _derivation(d, "default")
        d.used.add("default")
    return Cases(column=d.text("cases"), cases=tuple(rules), default=default)


def _strptime_problem(pattern: str) -> str | None:
    """Why DuckDB's strptime (the reader, formats.expressions) refuses the pattern, or None. Caught here, a bad
    directive names its key; at read time it would refuse every file of the format as unreadable."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SELECT try_strptime('', $p)", {"p": pattern})
    except duckdb.Error as exc:
        return str(exc).splitlines()[0].rsplit(f"{pattern}: ", 1)[-1]
    finally:
        con.close()
    return None


def _pattern(value) -> bool:
    """A glob of `match`: text, or a bare number (a record type's number, `85`)."""
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def _check_not_allowed(fmt: Format) -> None:
    """A column the format reads (kept, or read to decide) is not also declared off the list: the field check
    would report it as allowed while `formats show` lists it as dropped (docs/design.md §1)."""
    read = {c.lower() for _, d in fmt.map for c in stored_columns(d) | deciding_columns(d)}
    if fmt.answered:
        read.add(fmt.answered.column.lower())
    both = [c for c in fmt.not_allowed if c.lower() in read]
    if both:
        raise FormatError(f"not_allowed: {', '.join(both)} read by the format's map or answered rule; "
                          "a column is either read or off the list")


def _check_columns(fmt: Format) -> None:
    """Every column a format names must be one of its columns, when it lists them."""
    if not fmt.columns:
        return
    named = set(fmt.not_allowed) | {c for c, _ in fmt.recognize.patterns}
    for _, d in fmt.map:
        named |= stored_columns(d) | deciding_columns(d)
    if fmt.answered:
        named.add(fmt.answered.column)
    missing = sorted(named - set(fmt.columns))
    if missing:
        raise FormatError(f"columns: {', '.join(missing)} named in the format but not among its columns")
    if len(set(fmt.columns)) != len(fmt.columns):
        raise FormatError("columns: a column is listed twice")
