"""The privacy policy as one typed object.

Loaded and validated once from YAML (``policy/a1_slovenia.yaml``). Every rule
keeps the clause of the policy it comes from, so any finding can cite it.
Steps ask this object questions (``is_allowed``, ``field``, ``retention``);
nobody re-parses the file and no column list or period lives elsewhere.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Hashable

import yaml

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policy" / "a1_slovenia.yaml"

COLUMN_TYPES = ("varchar", "timestamp", "bigint", "double", "decimal(18,4)", "decimal(18,6)")
IDENTIFIER_KINDS = ("msisdn", "imsi", "imei", "cell")
ANALYTICS_TREATMENTS = ("keep", "tokenize", "truncate_to_hour", "truncate_to_tac", "generalize_to_area", "drop")
RETENTION_ACTIONS = ("delete", "anonymize")
RETENTION_ANCHORS = (
    "event_date", "end_of_billing_period", "payment_date", "end_of_invoice_year",
    "end_of_aggregated_month", "same_as_source", "end_of_customer_relationship",
    "request_date", "measure_date", "consent_withdrawn",
)
# Columns the pipeline adds itself; they carry no personal data beyond the
# billing columns (DESIGN §1).
LINEAGE_COLUMNS = ("record_id", "source_file_sha256", "source_row", "run_id", "event_date")

_PERIOD = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$")


class PolicyError(ValueError):
    """The policy file is missing, unreadable or breaks a rule; names the key."""


@dataclass(frozen=True)
class Period:
    """An ISO-8601 calendar period (years, months, days)."""

    years: int = 0
    months: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str, key: str) -> "Period":
        m = _PERIOD.match(str(text))
        if not m or text == "P":
            raise PolicyError(f"{key}: expected an ISO-8601 period like P6M or P10Y, got {text!r}")
        return cls(*(int(g or 0) for g in m.groups()))

    def __str__(self) -> str:
        parts = [f"{n}{u}" for n, u in ((self.years, "Y"), (self.months, "M"), (self.days, "D")) if n]
        return "P" + ("".join(parts) or "0D")

    def after(self, start: date) -> date:
        """The day a period that starts on `start` ends on (OZ Art. 59, civil reckoning).

        Years and months count calendar months to the same day number; when that month is shorter,
        the period ends on its last day (31 Aug + P6M = 28 Feb, 29 Feb 2024 + P1Y = 28 Feb 2025).
        Days are added after. ``months_sql`` is the DuckDB twin; a test keeps them in step.
        """
        months = start.month - 1 + 12 * self.years + self.months
        year, month = start.year + months // 12, months % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return date(year, month, day) + timedelta(days=self.days)

    def after_sql(self, start_sql: str) -> str:
        """DuckDB expression for ``after`` over the DATE expression `start_sql` (DuckDB also clamps)."""
        return (f"CAST(CAST({start_sql} AS DATE) + to_months({12 * self.years + self.months})"
                f" + to_days({self.days}) AS DATE)")


@dataclass(frozen=True)
class FieldRule:
    """One canonical billing column and the §3.2 item that allows it."""

    column: str
    item: int
    term: str
    clause: str
    type: str
    identifier: str | None
    analytics: str


@dataclass(frozen=True)
class RetentionRule:
    """One retention-catalog category (§5): how long, from when, then what."""

    category: str
    datasets: tuple[str, ...]
    keep: Period
    anchor: str
    action: str
    legal_basis: str
    clause: str
    keep_until: str | None = None
    limitation_periods: tuple[tuple[str, Period], ...] = ()

    def period_for(self, claim_type: str | None = None) -> Period:
        """The period to keep: a claim type's limitation period when the category has them, else `keep`."""
        return dict(self.limitation_periods).get(claim_type, self.keep) if claim_type else self.keep

    def due_on(self, anchor: date, claim_type: str | None = None) -> date:
        """The first day the data must be gone: kept through anchor + period, due the next day."""
        return self.period_for(claim_type).after(anchor) + timedelta(days=1)


@dataclass(frozen=True)
class Operator:
    """Facts about the operator the policy applies to."""

    local_timezone: str
    country_calling_code: str
    home_plmns: tuple[str, ...]
    imsi_prefix: str


@dataclass(frozen=True)
class RoamingRule:
    """Roaming fair use (§3.2 ¶4; Impl. Reg. 2016/2286 Art. 4): the observation window and indicators."""

    clause: str
    legal_basis: str
    observation_window_months: int      # months assessed together, ending with the month assessed (>= 4)
    long_inactivity_days: int           # days without any event that make a mainly-roaming SIM "long inactive"
    reference_table: Path               # MCC -> zone table (absolute; relative to the repository in the file)


@dataclass(frozen=True)
class Policy:
    """The whole policy: allowed billing fields, analytics rules, retention."""

    id: str
    title: str
    version: str
    sha256: str
    path: str
    operator: Operator
    fields: tuple[FieldRule, ...]
    not_allowed_action: str
    not_allowed_clause: str
    analytics_clause: str
    k_anonymity: int
    retention: tuple[RetentionRule, ...]
    roaming: RoamingRule

    @property
    def allowed_columns(self) -> tuple[str, ...]:
        """Canonical billing columns in policy order."""
        return tuple(f.column for f in self.fields)

    def is_allowed(self, column: str) -> bool:
        return any(f.column == column for f in self.fields)

    def field(self, column: str) -> FieldRule:
        for f in self.fields:
            if f.column == column:
                return f
        raise KeyError(f"{column!r} is not on the allowed billing-data list")

    def retention_for(self, category: str) -> RetentionRule:
        for r in self.retention:
            if r.category == category:
                return r
        raise KeyError(f"no retention category {category!r} in policy {self.id}")


def load_policy(path: str | Path | None = None) -> Policy:
    """Read, validate and freeze the policy file; raise PolicyError naming the key."""
    path = Path(path) if path else DEFAULT_POLICY
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"policy file {path}: cannot read ({exc.strerror})") from None
    try:
        doc = yaml.load(raw_bytes, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = f": {exc.problem}" if getattr(exc, "problem", None) else ""
        raise PolicyError(f"policy file {path}: not valid YAML{where}{problem}") from None
    reader = _Reader(doc, "")
    meta = reader.section("policy")
    ident = (meta.text("id"), meta.text("title"), meta.text("version"), meta.text("source"))
    op = reader.section("operator")
    operator = Operator(
        local_timezone=op.text("local_timezone"),
        country_calling_code=op.text("country_calling_code", pattern=r"^\d{1,3}$"),
        home_plmns=tuple(op.text_list("home_plmns", pattern=r"^\d{5,6}$")),
        imsi_prefix=op.text("imsi_prefix", pattern=r"^\d{5,6}$"),
    )
    fields = _read_fields(reader)
    na = reader.section("not_allowed")
    analytics = reader.section("analytics")
    k = analytics.integer("k_anonymity", minimum=2)
    retention = tuple(_read_retention(r) for r in reader.items("retention"))
    cats = [r.category for r in retention]
    dupes = sorted({c for c in cats if cats.count(c) > 1})
    if dupes:
        raise PolicyError(f"retention: category listed twice: {', '.join(dupes)}")
    policy = Policy(
        id=ident[0],
        title=ident[1],
        version=ident[2],
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        path=str(path),
        operator=operator,
        fields=fields,
        not_allowed_action=na.choice("action", ("dropped",)),
        not_allowed_clause=na.text("clause"),
        analytics_clause=analytics.text("clause"),
        k_anonymity=k,
        retention=retention,
        roaming=_read_roaming(reader.section("roaming")),
    )
    for section in (reader, meta, op, na, analytics):
        section.no_extra_keys()
    return policy


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                break   # SafeLoader reports an unhashable key itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_fields(reader: "_Reader") -> tuple[FieldRule, ...]:
    fields: list[FieldRule] = []
    seen: set[str] = set()
    for item in reader.items("billing_data"):
        number = item.integer("item", minimum=1)
        clause = item.text("clause")
        term = item.text("term")
        cols = item.section("columns")
        if not cols.keys():
            raise PolicyError(f"{cols.key}: needs at least one column")
        for name in cols.keys():
            col = cols.section(name)
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise PolicyError(f"{col.key}: column names are lower_snake_case")
            if name in seen or name in LINEAGE_COLUMNS:
                raise PolicyError(f"{col.key}: column listed twice or clashes with a lineage column")
            seen.add(name)
            fields.append(FieldRule(
                column=name, item=number, term=term, clause=clause,
                type=col.choice("type", COLUMN_TYPES),
                identifier=col.choice("identifier", IDENTIFIER_KINDS, required=False),
                analytics=col.choice("analytics", ANALYTICS_TREATMENTS),
            ))
            col.no_extra_keys()
        item.no_extra_keys()
    return tuple(fields)


def _read_retention(r: "_Reader") -> RetentionRule:
    limits = r.section("limitation_periods", required=False)
    rule = RetentionRule(
        category=r.text("category", pattern=r"^[a-z][a-z0-9_]*$"),
        datasets=tuple(r.text_list("datasets", pattern=r"^[a-z][a-z0-9_]*$")),
        keep=Period.parse(r.text("keep"), f"{r.key}.keep"),
        anchor=r.choice("anchor", RETENTION_ANCHORS),
        action=r.choice("action", RETENTION_ACTIONS),
        legal_basis=r.text("legal_basis"),
        clause=r.text("clause"),
        keep_until=r.text("keep_until", required=False),
        limitation_periods=tuple(
            (name, Period.parse(limits.text(name), f"{limits.key}.{name}")) for name in limits.keys()
        ),
    )
    r.no_extra_keys()
    return rule


# Impl. Reg. 2016/2286 Art. 4: presence and consumption are observed over "at least four months".
MIN_ROAMING_WINDOW_MONTHS = 4
# A month has at least 28 days: an inactivity that long must fit inside the shortest window.
_MIN_MONTH_DAYS = 28


def _read_roaming(r: "_Reader") -> RoamingRule:
    window = r.integer("observation_window_months", minimum=MIN_ROAMING_WINDOW_MONTHS)
    inactivity = r.integer("long_inactivity_days", minimum=1)
    if inactivity >= window * _MIN_MONTH_DAYS:
        raise PolicyError(f"{r.key}.long_inactivity_days: {inactivity} does not fit inside a"
                          f" {window}-month window (must be under {window * _MIN_MONTH_DAYS} days)")
    table = r.text("reference_table")
    rule = RoamingRule(
        clause=r.text("clause"),
        legal_basis=r.text("legal_basis"),
        observation_window_months=window,
        long_inactivity_days=inactivity,
        reference_table=(DEFAULT_POLICY.parent.parent / table).resolve(),
    )
    if not rule.reference_table.is_file():
        raise PolicyError(f"{r.key}.reference_table: {table!r} is not a file in the repository")
    r.no_extra_keys()
    return rule


class _Reader:
    """Typed access to one mapping of the YAML document, tracking its key path."""

    def __init__(self, node: Any, key: str):
        if node is None:
            node = {}
        if not isinstance(node, dict):
            raise PolicyError(f"{key or 'policy file'}: expected a mapping")
        self.node, self.key, self.used = node, key, set()

    def _path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def _get(self, name: str, required: bool) -> Any:
        self.used.add(name)
        if name not in self.node or self.node[name] is None:
            if required:
                raise PolicyError(f"{self._path(name)}: missing")
            return None
        return self.node[name]

    def keys(self) -> list[str]:
        self.used.update(self.node)
        return [str(k) for k in self.node]

    def section(self, name: str, required: bool = True) -> "_Reader":
        return _Reader(self._get(name, required), self._path(name))

    def items(self, name: str) -> list["_Reader"]:
        value = self._get(name, True)
        if not isinstance(value, list) or not value:
            raise PolicyError(f"{self._path(name)}: expected a non-empty list")
        return [_Reader(v, f"{self._path(name)}[{i}]") for i, v in enumerate(value)]

    def text(self, name: str, required: bool = True, pattern: str | None = None) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value).strip() == "":
            raise PolicyError(f"{self._path(name)}: expected a non-empty string")
        if pattern and not re.fullmatch(pattern, str(value)):
            raise PolicyError(f"{self._path(name)}: {value!r} does not match {pattern}")
        return str(value)

    def text_list(self, name: str, pattern: str | None = None) -> list[str]:
        value = self._get(name, True)
        if not isinstance(value, list) or not value:
            raise PolicyError(f"{self._path(name)}: expected a non-empty list")
        out = []
        for i, v in enumerate(value):
            if not isinstance(v, str) or (pattern and not re.fullmatch(pattern, v)):
                raise PolicyError(f"{self._path(name)}[{i}]: {v!r} is not a valid value")
            out.append(v)
        return out

    def integer(self, name: str, minimum: int) -> int:
        value = self._get(name, True)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise PolicyError(f"{self._path(name)}: expected an integer >= {minimum}, got {value!r}")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], required: bool = True) -> Any:
        value = self._get(name, required)
        if value is None:
            return None
        if value not in allowed:
            raise PolicyError(f"{self._path(name)}: {value!r} is not one of {', '.join(allowed)}")
        return value

    def no_extra_keys(self) -> None:
        extra = sorted(str(k) for k in self.node if k not in self.used)
        if extra:
            raise PolicyError(f"{self.key or 'policy file'}: unknown key(s): {', '.join(extra)}")
