"""A source format as data: how one export family's records become canonical billing columns.

A format names its columns (or reads them from the header), says how a file of it is recognised, and
maps each canonical column to a derivation from a closed vocabulary (`Column`, `Constant`, `Sum`,
`First`, `ImeiFromImeisv`, `Cases`, `PlmnArea`, `CallingCode`). Formats are loaded from YAML (`loader`), never
written in code; `expressions` turns a derivation into SQL over the record's positional fields, with
every value from the file bound as a parameter. docs/design.md §1 and §7.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The kinds of time a Column may hold; or a list of strptime patterns for local wall-clock times.
TIME_KINDS = ("iso", "ts32298", "epoch")
CONTAINERS = ("csv", "parquet")


class FormatError(ValueError):
    """A format file is missing, unreadable or breaks a rule; names the file and the key."""


@dataclass(frozen=True)
class Column:
    """A source column's value, as it is or transformed on the way (each modifier is optional)."""

    name: str
    time: tuple[str, ...] = ()                 # "iso" | "ts32298" | "epoch" | strptime patterns (local time)
    hex: bool = False                          # the value is hexadecimal: stored as its decimal digits
    strip_prefixes: tuple[str, ...] = ()       # removed from the front, e.g. "tel:", "sip:"
    international_prefixes: tuple[str, ...] = ()   # dial prefixes that mean "+", e.g. "00", "011"
    e164_digits: bool = False                  # bare digits are a full international number: "+" in front
    lowercase: bool = False                    # the value in lower case (a record type kept as a service type)


@dataclass(frozen=True)
class Constant:
    value: str


@dataclass(frozen=True)
class Sum:
    """The numeric sum of the parts; a part that is not a number keeps the raw text (validate rejects it)."""

    parts: tuple[Column, ...]


@dataclass(frozen=True)
class First:
    """The first part that has a value."""

    parts: tuple["Derivation", ...]


@dataclass(frozen=True)
class ImeiFromImeisv:
    """An IMEISV (TAC 8 + SNR 6 + SVN 2) as its IMEI (TAC + SNR + Luhn check digit); 15 digits pass."""

    part: Column


@dataclass(frozen=True)
class PlmnArea:
    """'home' when the serving network (MCC+MNC) is one of the operator's home PLMNs, else 'roaming'."""

    part: Column


@dataclass(frozen=True)
class CallingCode:
    """The country calling code of a number, after the column's own prefix handling: of an international
    number (`+…`) the code it starts with; of a national one (digits only) the operator's; else none."""

    part: Column                               # its number modifiers only: strip / international prefixes, e164


@dataclass(frozen=True)
class Case:
    """A rule of `Cases`: when the decision column matches one of the patterns, the value is `then`."""

    patterns: tuple[str, ...]                  # glob patterns (* and ?), case-insensitive
    then: "Derivation"


@dataclass(frozen=True)
class Cases:
    """A value chosen by another column (a record type, a dial-plan context): read to decide, not kept."""

    column: str
    cases: tuple[Case, ...]
    default: "Derivation | None" = None        # None: no value (NULL) when no pattern matches


Derivation = Column | Constant | Sum | First | ImeiFromImeisv | PlmnArea | CallingCode | Cases


@dataclass(frozen=True)
class Recognition:
    """How a file of this format is told from others, by its first record."""

    header_names: tuple[str, ...] = ()         # all present in the header (case-insensitive)
    canonical_names: int = 0                   # at least this many of the policy's canonical names in the header
    field_count: int | None = None             # headerless: the number of fields
    patterns: tuple[tuple[str, str], ...] = ()  # (column, regex) the first record's fields must match


@dataclass(frozen=True)
class Answered:
    """Which legs were answered; the others are call attempts, kept with duration_s = 0 (docs/design.md §1)."""

    column: str
    values: tuple[str, ...]                    # answered when the column holds one of these (case-insensitive)


@dataclass(frozen=True)
class Format:
    """One source format, as its YAML file declares it."""

    name: str
    title: str
    path: str                                  # the YAML file it came from
    container: str = "csv"                     # csv | parquet
    header: bool = True
    columns: tuple[str, ...] = ()              # headerless: the columns by position; header: the known columns
    canonical: bool = False                    # the project's canonical layout: columns and map are the policy's
    delimiter: str | None = None               # None: sniffed from the file's head
    quote: str | None = None               # None: sniffed from the head ('"' unless fields use "'")
    comment_prefix: str | None = None
    timezone: str = "local"                    # for times without an offset: an IANA zone, "UTC" or "local"
    recognize: Recognition = field(default_factory=Recognition)
    map: tuple[tuple[str, Derivation], ...] = ()   # canonical column -> derivation
    not_allowed: tuple[str, ...] = ()          # known columns of the format that are off the billing list
    answered: Answered | None = None
    refuse: str | None = None                  # not a CDR format: files of it are refused with this reason

    def derivation(self, canonical: str) -> Derivation | None:
        return dict(self.map).get(canonical)


def stored_columns(d: Derivation) -> set[str]:
    """Source columns whose values (as they are or transformed) end up in a canonical column."""
    if isinstance(d, Column):
        return {d.name}
    if isinstance(d, Constant):
        return set()
    if isinstance(d, (ImeiFromImeisv, PlmnArea, CallingCode)):
        return {d.part.name}
    if isinstance(d, (Sum, First)):
        return set().union(*(stored_columns(p) for p in d.parts))
    return set().union(*(stored_columns(c.then) for c in d.cases),
                       stored_columns(d.default) if d.default is not None else set())


def deciding_columns(d: Derivation) -> set[str]:
    """Source columns only read to choose a value (a `Cases` column), never stored."""
    if isinstance(d, Cases):
        inner = [deciding_columns(c.then) for c in d.cases]
        return {d.column}.union(*inner, deciding_columns(d.default) if d.default is not None else set())
    if isinstance(d, First):
        return set().union(*(deciding_columns(p) for p in d.parts))
    return set()


def is_as_is(d: Derivation) -> bool:
    """The canonical value is the source column's own value: its text unchanged, or the same instant in UTC."""
    return isinstance(d, Column) and Column(d.name, time=d.time) == d
