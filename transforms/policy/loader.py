"""Load the policy YAML once into the typed `Policy`, checking every rule; errors name the key path."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from pathlib import Path

from transforms.bundled import DEFAULT_POLICY, REPO_ROOT
from transforms.policy.model import (
    ACCESS_KINDS, ANALYTICS_TREATMENTS, COLUMN_TYPES, IDENTIFIER_KINDS, LINEAGE_COLUMNS, RETENTION_ACTIONS,
    RETENTION_ANCHORS, SUBJECT_RIGHTS, AccessGroup, AccessRule, AggregateReleaseRule, AnonymousDataset,
    ConsentPurpose, ConsentRule, FieldRule, LatenessRule, Operator, Policy, RELEASE_DIMENSIONS, ReleaseTable,
    Reporting, RetentionRule, RoamingRule, SubjectRight,
    SubjectRightsRule, ZONE_NAMES, ZoneAccess,
)
from transforms.policy.period import Period, PolicyError
from transforms.policy.strict_yaml import Section, read_yaml

# Impl. Reg. 2016/2286 Art. 4: presence and consumption are observed over "at least four months"; the
# regulation's floor checks the operator's setting, so it cannot live in the file it checks.
MIN_ROAMING_WINDOW_MONTHS = 4
# "Outweighs" is more than half at the least; an operator may ask for more, never for less.
MIN_OUTWEIGHS_SHARE = 0.5
# A month has at least 28 days: an inactivity that long must fit inside the shortest window.
_MIN_MONTH_DAYS = 28
# GDPR Art. 12(3): a request is answered within one month of receipt, extendable by two further months at most.
# The regulation's ceilings check the operator's setting (faster is allowed, slower never), so they cannot live
# in the file they check.
GDPR_ANSWER_WITHIN = Period(months=1)
GDPR_EXTENSION_AT_MOST = Period(months=2)
# Every start day of a leap cycle: a period that ends no later than another from each of them ends no later
# from any day (month lengths and leap days repeat).
_LEAP_CYCLE_START = date(2028, 1, 1)
_LEAP_CYCLE_DAYS = 4 * 365 + 1
# E.164: at most 15 digits, country code included.
_E164_MAX_DIGITS = 15
_NAME = r"^[a-z][a-z0-9_]*$"
# A Unix group name as useradd/groupadd accept it (POSIX portable characters, at most 32).
_UNIX_GROUP = r"^[a-z_][a-z0-9_-]{0,31}$"


def load_policy(path: str | Path | None = None) -> Policy:
    """Read, validate and freeze the policy file; raise PolicyError naming the key."""
    path = Path(path) if path else DEFAULT_POLICY
    raw_bytes, doc = read_yaml(path, "policy file")
    top = Section(doc, "")
    meta = top.section("policy")
    ident = (meta.text("id"), meta.text("title"), meta.text("version"), meta.text("source"))
    op = top.section("operator")
    operator = _read_operator(op)
    fields = _read_fields(top)
    na = top.section("not_allowed")
    analytics = top.section("analytics")
    k = analytics.integer("k_anonymity", minimum=2)
    retention = tuple(_read_retention(r) for r in top.items("retention"))
    cats = [r.category for r in retention]
    dupes = sorted({c for c in cats if cats.count(c) > 1})
    if dupes:
        raise PolicyError(f"retention: category listed twice: {', '.join(dupes)}")
    sets = [d for r in retention for d in r.datasets]
    twice = sorted({d for d in sets if sets.count(d) > 1})
    if twice:
        raise PolicyError(f"retention: data set in two categories: {', '.join(twice)}")
    anonymous = _read_anonymous(top, retention)
    releases = next((r for r in retention if "aggregates" in r.datasets), None)
    # Releases are deleted whole, per day, counted from their event date (docs/design.md §4): nothing else
    # could be read from a table of counts.
    if releases is not None and (releases.anchor, releases.action) != ("event_date", "delete"):
        raise PolicyError(f"retention: category {releases.category!r} covers aggregates, whose releases are"
                          " deleted whole per day: it needs anchor event_date and action delete")
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
        release_tables=_read_release_tables(analytics),
        retention=retention,
        anonymous_datasets=anonymous,
        roaming=_read_roaming(top.section("roaming")),
        reporting=_read_reporting(top.section("reporting")),
        lateness=_read_lateness(top.section("lateness")),
        aggregate_release=_read_aggregate_release(top.section("aggregate_release")),
        access=_read_access(top.section("access")),
        consent=_read_consent(top.section("consent")),
        subject_rights=_read_subject_rights(top.section("subject_rights")),
    )
    for section in (top, meta, op, na, analytics):
        section.no_extra_keys()
    return policy


def _read_release_tables(analytics: Section) -> tuple[ReleaseTable, ...]:
    """The release tables, checked: unique names, known dimensions, each parent declared before its child (so
    no cycle) and a coarsening of it, and every table coarsening another declared its ancestor — the
    cross-table suppression differences exactly the declared chains (docs/design.md §4)."""
    tables: list[ReleaseTable] = []
    for t in analytics.items("release_tables"):
        name = t.text("name", pattern=_NAME)
        by = t.text_list("by", pattern=_NAME)
        for d in by:
            if d not in RELEASE_DIMENSIONS:
                raise PolicyError(f"{t.key}.by: {d!r} is not one of {', '.join(RELEASE_DIMENSIONS)}")
        if len(set(by)) < len(by) or any(RELEASE_DIMENSIONS[d] in by for d in by):
            raise PolicyError(f"{t.key}.by: a dimension listed twice, or with its own generalization")
        table = ReleaseTable(name=name, by=tuple(by), within=t.text("within", required=False, pattern=_NAME),
                             clause=t.text("clause"))
        t.no_extra_keys()
        if any(x.name == name for x in tables):
            raise PolicyError(f"{t.key}.name: release table {name!r} listed twice")
        parent = next((x for x in tables if x.name == table.within), None)
        if table.within is not None and parent is None:
            raise PolicyError(f"{t.key}.within: {table.within!r} is not a release table listed before this one")
        if parent is not None and (not parent.coarsens(table) or set(parent.by) == set(table.by)):
            raise PolicyError(f"{t.key}.within: {parent.name}'s grain ({', '.join(parent.by) or 'the day'}) is not"
                              f" coarser than {name}'s ({', '.join(table.by)})")
        tables.append(table)
    if not tables:
        raise PolicyError(f"{analytics.key}.release_tables: needs at least one table")
    by_name = {x.name: x for x in tables}
    for fine in tables:
        ancestors, up = set(), fine.within
        while up is not None:
            ancestors.add(up)
            up = by_name[up].within
        for coarse in tables:
            if coarse is not fine and coarse.coarsens(fine) and coarse.name not in ancestors:
                raise PolicyError(f"{analytics.key}.release_tables: {coarse.name} contains {fine.name}'s cells but"
                                  f" is not its ancestor (declare it in `within`)")
    return tuple(tables)


def _read_operator(op: Section) -> Operator:
    cc = op.text("country_calling_code", pattern=r"^\d{1,3}$")
    nsn = op.integer("national_number_length", minimum=4)
    if len(cc) + nsn > _E164_MAX_DIGITS:
        raise PolicyError(f"{op.key}.national_number_length: {nsn} digits after country code {cc} exceed"
                          f" E.164's {_E164_MAX_DIGITS}")
    return Operator(
        local_timezone=op.text("local_timezone"),
        country_calling_code=cc,
        national_number_length=nsn,
        home_plmns=tuple(op.text_list("home_plmns", pattern=r"^\d{5,6}$")),
        imsi_prefix=op.text("imsi_prefix", pattern=r"^\d{5,6}$"),
    )


def _read_fields(top: Section) -> tuple[FieldRule, ...]:
    fields: list[FieldRule] = []
    seen: set[str] = set()
    for item in top.items("billing_data"):
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


def _read_retention(r: Section) -> RetentionRule:
    limits = r.section("limitation_periods", required=False)
    rule = RetentionRule(
        category=r.text("category", pattern=_NAME),
        datasets=tuple(r.text_list("datasets", pattern=_NAME)),
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


def _read_anonymous(top: Section, retention: tuple[RetentionRule, ...]) -> tuple[AnonymousDataset, ...]:
    covered = {d for r in retention for d in r.datasets}
    out = []
    for a in top.items("anonymous_datasets"):
        entry = AnonymousDataset(dataset=a.text("dataset", pattern=_NAME), clause=a.text("clause"))
        if entry.dataset in covered:
            raise PolicyError(f"{a.key}.dataset: {entry.dataset!r} has a retention category, so it holds personal"
                              " data; it cannot also be anonymous")
        a.no_extra_keys()
        out.append(entry)
    return tuple(out)


def _read_roaming(r: Section) -> RoamingRule:
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
        presence_share_above=r.share("presence_share_above", MIN_OUTWEIGHS_SHARE, 1),
        consumption_share_above=r.share("consumption_share_above", MIN_OUTWEIGHS_SHARE, 1),
        long_inactivity_days=inactivity,
        reference_table=(REPO_ROOT / table).resolve(),
    )
    if not rule.reference_table.is_file():
        raise PolicyError(f"{r.key}.reference_table: {table!r} is not a file in the repository")
    r.no_extra_keys()
    return rule


def _read_reporting(r: Section) -> Reporting:
    horizons = r.integer_list("retention_due_within_days", minimum=1)
    if horizons != sorted(set(horizons)):
        raise PolicyError(f"{r.key}.retention_due_within_days: list each horizon once, ascending")
    rule = Reporting(clause=r.text("clause"), retention_due_within_days=tuple(horizons))
    r.no_extra_keys()
    return rule


def _read_lateness(r: Section) -> LatenessRule:
    # 0 is a window too (any row dated before the night is late); a negative one would call rows from
    # after the night late.
    rule = LatenessRule(clause=r.text("clause"), window_days=r.integer("window_days", minimum=0))
    r.no_extra_keys()
    return rule


def _read_aggregate_release(r: Section) -> AggregateReleaseRule:
    # 0 releases a day on its own night, after that night's files; a negative window would release a day
    # before its own rows arrived.
    rule = AggregateReleaseRule(clause=r.text("clause"), window_days=r.integer("window_days", minimum=0))
    r.no_extra_keys()
    return rule


def _read_consent(c: Section) -> ConsentRule:
    """Purposes (lower_snake_case, each with its clause and whether it is direct marketing), channels, the
    profiling purpose, which must be one of the purposes, and the channel of the withdrawals the answers to
    requests record, which must not be one of the channels."""
    purposes_section = c.section("purposes")
    purposes = []
    for name in purposes_section.keys():
        p = purposes_section.section(name)
        if not re.fullmatch(_NAME, name):
            raise PolicyError(f"{p.key}: purpose names are lower_snake_case")
        purposes.append(ConsentPurpose(purpose=name, clause=p.text("clause"),
                                       direct_marketing=p.flag("direct_marketing")))
        p.no_extra_keys()
    if not purposes:
        raise PolicyError(f"{purposes_section.key}: declare at least one purpose")
    channels = c.text_list("channels", pattern=_NAME)
    if not channels or len(set(channels)) != len(channels):
        raise PolicyError(f"{c.key}.channels: list each channel once (at least one)")
    profiling = c.text("profiling_purpose", pattern=_NAME)
    if profiling not in {p.purpose for p in purposes}:
        raise PolicyError(f"{c.key}.profiling_purpose: {profiling!r} is not one of the purposes")
    # The answers' own channel: one an extract could also deliver would let an extract's row pass for a
    # withdrawal the tool recorded, and the consent extract could not tell them apart to refuse it.
    request = c.section("request_channel")
    request_channel = request.text("channel", pattern=_NAME)
    if request_channel in channels:
        raise PolicyError(f"{request.key}.channel: {request_channel!r} is one of {c.key}.channels; the channel of "
                          "the withdrawals a request's answer records must be its own (no extract delivers it)")
    rule = ConsentRule(clause=c.text("clause"), latest_counts=c.text("latest_counts"), purposes=tuple(purposes),
                       channels=tuple(channels), profiling_purpose=profiling, request_channel=request_channel,
                       request_channel_clause=request.text("clause"))
    request.no_extra_keys()
    c.no_extra_keys()
    return rule


def _read_access(a: Section) -> AccessRule:
    """Who may read each zone (docs/design.md §2): every zone of the lake (`model.ZONE_NAMES`)
    needs an entry, and no other name may have one; a group zone names one of the declared roles."""
    groups_section = a.section("groups")
    groups = {}
    for role in groups_section.keys():
        g = groups_section.section(role)
        if not re.fullmatch(_NAME, role):
            raise PolicyError(f"{g.key}: role names are lower_snake_case")
        groups[role] = AccessGroup(role=role, unix_group=g.text("unix_group", pattern=_UNIX_GROUP),
                                   clause=g.text("clause"))
        g.no_extra_keys()
    if not groups:
        raise PolicyError(f"{groups_section.key}: declare at least one role and its Unix group")
    zones_section = a.section("zones")
    named = _each_of(zones_section, ZONE_NAMES, "zone", "the lake's zones", "no access declared for")
    zones = tuple(_read_zone_access(zones_section.section(z), z, groups) for z in named)
    work = _read_zone_access(a.section("work"), "work", groups)
    if work.access != "owner":
        raise PolicyError(f"{a.key}.work.access: the run's work folders hold rows before any check: owner only")
    rule = AccessRule(clause=a.text("clause"), groups=tuple(groups.values()), zones=zones, work=work)
    a.no_extra_keys()
    return rule


def _each_of(section: Section, known: tuple[str, ...], kind: str, known_as: str, missing_words: str) -> list[str]:
    """The keys of `section`, refused unless each name of `known` has one and no other name does."""
    named = section.keys()
    unknown = [n for n in named if n not in known]
    if unknown:
        raise PolicyError(f"{section.key}: unknown {kind}(s): {', '.join(unknown)} ({known_as}: {', '.join(known)})")
    missing = [n for n in known if n not in named]
    if missing:
        raise PolicyError(f"{section.key}: {missing_words} {kind}(s): {', '.join(missing)}")
    return named


def _read_zone_access(z: Section, zone: str, groups: dict[str, AccessGroup]) -> ZoneAccess:
    access = z.choice("access", ACCESS_KINDS)
    role = z.text("group", required=False)
    if access == "group" and role is None:
        raise PolicyError(f"{z.key}.group: a group zone names the role that reads it ({', '.join(groups)})")
    if access == "owner" and role is not None:
        raise PolicyError(f"{z.key}.group: an owner zone is read by its owner alone; remove the group")
    if role is not None and role not in groups:
        raise PolicyError(f"{z.key}.group: {role!r} is not a role of access.groups ({', '.join(groups)})")
    entry = ZoneAccess(zone=zone, access=access, group=groups[role] if role else None, clause=z.text("clause"))
    z.no_extra_keys()
    return entry


def _read_subject_rights(s: Section) -> SubjectRightsRule:
    """When a request under §6 must be answered (docs/design.md §12): periods no longer than GDPR Art. 12(3)
    allows, and every right of `model.SUBJECT_RIGHTS` with its clause, no other."""
    answer = Period.parse(s.text("answer_within"), f"{s.key}.answer_within")
    extension = Period.parse(s.text("extension_at_most"), f"{s.key}.extension_at_most")
    if answer == Period():
        raise PolicyError(f"{s.key}.answer_within: a request needs some time to be answered; an empty period leaves none")
    if not _ends_no_later(answer, GDPR_ANSWER_WITHIN):
        raise PolicyError(f"{s.key}.answer_within: {answer} is longer than GDPR Art. 12(3) allows"
                          f" ({GDPR_ANSWER_WITHIN} from receipt)")
    if not _ends_no_later(extension, GDPR_EXTENSION_AT_MOST):
        raise PolicyError(f"{s.key}.extension_at_most: {extension} is longer than GDPR Art. 12(3) allows"
                          f" ({GDPR_EXTENSION_AT_MOST} further)")
    rights_section = s.section("rights")
    named = _each_of(rights_section, SUBJECT_RIGHTS, "right", "the rights of §6", "no clause for")
    rights = []
    for name in named:
        r = rights_section.section(name)
        rights.append(SubjectRight(right=name, clause=r.text("clause")))
        r.no_extra_keys()
    rule = SubjectRightsRule(clause=s.text("clause"), legal_basis=s.text("legal_basis"), answer_within=answer,
                             extension_at_most=extension,
                             due_soon_within_days=s.integer("due_soon_within_days", minimum=1), rights=tuple(rights))
    s.no_extra_keys()
    return rule


def _ends_no_later(period: Period, ceiling: Period) -> bool:
    """From every start day, `period` ends on or before `ceiling` does (a month of days is not within a calendar
    month from 1 February)."""
    starts = (_LEAP_CYCLE_START + timedelta(days=i) for i in range(_LEAP_CYCLE_DAYS))
    return all(period.after(d) <= ceiling.after(d) for d in starts)
