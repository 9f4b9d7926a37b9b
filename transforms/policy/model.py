"""The privacy policy as one typed object: every rule with the clause it comes from.

Built once by `transforms.policy.loader.load_policy`; steps ask it questions (`is_allowed`, `field`,
`retention_of`, `claim_types` …) and never re-read the file. No column list, threshold or period is
written anywhere else in the code (docs/design.md §1, §3, §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from transforms.policy.period import Period

COLUMN_TYPES = ("varchar", "timestamp", "bigint", "double", "decimal(18,4)", "decimal(18,6)")
IDENTIFIER_KINDS = ("msisdn", "imsi", "imei", "cell")
# Identifier kinds that single out a subscriber or their device; a cell names a place.
SUBJECT_IDENTIFIER_KINDS = ("msisdn", "imsi", "imei")
ANALYTICS_TREATMENTS = ("keep", "tokenize", "truncate_to_hour", "truncate_to_tac", "generalize_to_area", "drop")
RETENTION_ACTIONS = ("delete", "anonymize")
RETENTION_ANCHORS = (
    "event_date", "end_of_billing_period", "payment_date", "end_of_invoice_year",
    "end_of_aggregated_month", "same_as_source", "end_of_customer_relationship",
    "request_date", "measure_date", "consent_withdrawn", "consent_superseded",
)
# Columns the pipeline adds itself; they carry no personal data beyond the billing columns
# (docs/design.md §1). `record_id` names one source row, so it identifies as much as the row does.
LINEAGE_COLUMNS = ("record_id", "source_file_sha256", "source_row", "run_id", "event_date")
RECORD_ID = "record_id"
# Zones that hold data rows (each needs a retention category or must be anonymous: docs/design.md §3) ...
DATA_ZONES = ("billing", "invoices", "quarantine", "analytics", "aggregates", "roaming", "marketing", "consents")
# ... and every zone of the lake; `access` below gives each its readers (docs/design.md §2).
ZONE_NAMES = (*DATA_ZONES, "audit", "reports")
# The rights of §6 a subscriber may exercise, in the policy's order (§6.1-§6.6); the `subject_rights` section
# gives each its clause (docs/design.md §12).
SUBJECT_RIGHTS = ("access", "rectification", "erasure", "restriction", "portability", "objection")
# Who may read a zone (docs/design.md §2): `owner`, the account that runs the pipeline alone; `group`, that
# account writes and one named group reads. Nobody else reads any zone. The Unix modes each kind means are
# transforms/lake/permissions.py's.
ACCESS_KINDS = ("owner", "group")
# What a release table may be grouped by (docs/design.md §4): columns of the analytics rows, or generalizations
# of them, each mapped to the finer dimension it coarsens (a table grouped by the finer one contains it). The
# SQL of each is transforms/privacy/aggregates.py's. Every table is per event date.
RELEASE_DIMENSIONS: dict[str, str | None] = {
    "event_hour": None,
    "service_type": None,
    "area": None,                       # the location area (a cell's generalization), never the cell
    "service_area": None,               # home / roaming
    "called_country_code": None,
    "called_zone": "called_country_code",   # home / eu_eea / rest_of_world of the called country's code
    "visited_zone": None,               # home / eu_eea / rest_of_world of the served subscriber's visited network
}


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

    @property
    def identifies_subject(self) -> bool:
        """A number, IMSI or IMEI: its value points at one subscriber (retention proofs look for these)."""
        return self.identifier in SUBJECT_IDENTIFIER_KINDS


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
class ReleaseTable:
    """One k-anonymous aggregate table released per event date (docs/design.md §4): its grain, the coarser
    table whose cells contain its cells (None: a coarsest table), and why it is released."""

    name: str
    by: tuple[str, ...]                 # RELEASE_DIMENSIONS, in output column order
    within: str | None                  # the parent table: its grain coarsens this one's
    clause: str

    def coarsens(self, finer: "ReleaseTable") -> bool:
        """Every cell of `finer` lies inside one cell of this table: each of this grain's dimensions is one of
        `finer`'s or a generalization of one."""
        return all(d in finer.by or RELEASE_DIMENSIONS[d] in finer.by for d in self.by)


@dataclass(frozen=True)
class AnonymousDataset:
    """A data set that holds no personal data (so no retention category), and why."""

    dataset: str
    clause: str


@dataclass(frozen=True)
class Operator:
    """Facts about the operator the policy applies to."""

    local_timezone: str
    country_calling_code: str
    national_number_length: int         # digits of a national significant number (after the country code)
    home_plmns: tuple[str, ...]
    imsi_prefix: str


@dataclass(frozen=True)
class RoamingRule:
    """Roaming fair use (§3.2 ¶4; Impl. Reg. 2016/2286 Art. 4): the observation window and indicators."""

    clause: str
    legal_basis: str
    observation_window_months: int      # months assessed together, ending with the month assessed
    presence_share_above: float         # EU/EEA roaming days over (roaming + home days) above this: outweighs
    consumption_share_above: float      # mean roaming share of consumption above this: outweighs
    long_inactivity_days: int           # days without any event that make a mainly-roaming SIM "long inactive"
    reference_table: Path               # MCC -> zone table (absolute; relative to the repository in the file)


@dataclass(frozen=True)
class Reporting:
    """What the compliance report looks ahead to (an operator setting for accountability)."""

    clause: str
    retention_due_within_days: tuple[int, ...]   # horizons, ascending: rows falling due within each


@dataclass(frozen=True)
class AggregateReleaseRule:
    """When a day's aggregates are released, once (§3.3 ¶1; docs/design.md §4): after its rows had
    `window_days` nights to arrive."""

    clause: str
    window_days: int                    # rows of day D reaching the lake by the night of D + window_days are on time

    def window_closes_on(self, day: date) -> date:
        """The last night whose files are on time for `day`: its run, after those files, releases the day."""
        return day + timedelta(days=self.window_days)

    def is_due(self, day: date, night: date) -> bool:
        """Whether the run of `night` releases `day` (the day's window has closed by then)."""
        return night >= self.window_closes_on(day)


@dataclass(frozen=True)
class LatenessRule:
    """How late a night's rows may be dated before they are counted as late (an operator setting for accuracy
    and accountability; docs/design.md §9)."""

    clause: str
    window_days: int                    # rows dated more than this many days before the night arrived late


@dataclass(frozen=True)
class ConsentPurpose:
    """One purpose a subscriber may consent to (§3.4), and whether it is direct marketing (which an
    objection under §6.6 withdraws)."""

    purpose: str
    clause: str
    direct_marketing: bool


@dataclass(frozen=True)
class ConsentRule:
    """Processing on consent (§3.4): the purposes, the channels consent is given through, and that the
    latest consent received counts (docs/design.md §11)."""

    clause: str
    latest_counts: str                  # the clause that the latest consent per subscriber and purpose counts
    purposes: tuple[ConsentPurpose, ...]
    channels: tuple[str, ...]
    profiling_purpose: str              # the purpose the marketing zone's usage profiles need
    # The channel of the withdrawals an answer to a request records (§6.3, §6.6): never an extract's, never one
    # of `channels` (docs/design.md §11, §12).
    request_channel: str
    request_channel_clause: str

    @property
    def purpose_names(self) -> tuple[str, ...]:
        return tuple(p.purpose for p in self.purposes)

    @property
    def direct_marketing_purposes(self) -> tuple[str, ...]:
        """Purposes an objection to direct marketing withdraws (§6.6)."""
        return tuple(p.purpose for p in self.purposes if p.direct_marketing)

    def purpose(self, name: str) -> ConsentPurpose:
        for p in self.purposes:
            if p.purpose == name:
                return p
        raise KeyError(f"{name!r} is not a consent purpose of the policy")


@dataclass(frozen=True)
class AccessGroup:
    """A role that may read group zones, and the Unix group of the host that stands for it."""

    role: str                           # the policy's name for it: analysts, compliance
    unix_group: str                     # the host's group: cdr-analytics, cdr-compliance
    clause: str


@dataclass(frozen=True)
class ZoneAccess:
    """Who may read one zone of the lake (or the run's work folders: zone `work`)."""

    zone: str
    access: str                         # owner | group
    group: AccessGroup | None           # access group: the role whose Unix group reads it; owner: None
    clause: str


@dataclass(frozen=True)
class AccessRule:
    """Need-to-know access to the lake (§4 last ¶; the processor agreement's annex 1.3, 1.7 and 4.3): each zone
    readable by its owner alone or by one group, nothing by anyone else (docs/design.md §2)."""

    clause: str
    groups: tuple[AccessGroup, ...]
    zones: tuple[ZoneAccess, ...]       # every zone of the lake, in the policy's order
    work: ZoneAccess                    # the run's work and staging folders: owner only

    def of(self, zone: str) -> ZoneAccess:
        for z in self.zones:
            if z.zone == zone:
                return z
        raise KeyError(f"the policy's access has no entry for zone {zone!r}")


@dataclass(frozen=True)
class SubjectRight:
    """One right of §6 and the paragraph that grants it."""

    right: str                          # one of SUBJECT_RIGHTS
    clause: str


@dataclass(frozen=True)
class SubjectRightsRule:
    """When a data-subject request must be answered (§6 ¶1): within a period of receipt, which may be extended
    once or more, at most by a further period, the subscriber told inside the first (docs/design.md §12)."""

    clause: str
    legal_basis: str
    answer_within: Period               # from receipt; the last day to answer is `answer_within.after(received)`
    extension_at_most: Period           # the extended period ends at most (answer_within + this) after receipt
    due_soon_within_days: int           # the report lists open requests whose last day is this close
    rights: tuple[SubjectRight, ...]    # every right of SUBJECT_RIGHTS, in the policy's order

    def due_on(self, received: date) -> date:
        """The last day to answer a request received on `received` (inclusive): the same date a period later,
        or the last day of a shorter month (GDPR Art. 12(3) read with Reg. 1182/71 Art. 3(2)(c))."""
        return self.answer_within.after(received)

    def latest_extension(self, received: date) -> date:
        """The furthest an extension may move the last day: the two periods counted together from receipt."""
        return (self.answer_within + self.extension_at_most).after(received)

    def clause_of(self, right: str) -> str:
        for r in self.rights:
            if r.right == right:
                return r.clause
        raise KeyError(f"{right!r} is not a right of the policy's subject_rights")


@dataclass(frozen=True)
class Policy:
    """The whole policy: allowed billing fields, analytics rules, retention, roaming, reporting, lateness, aggregate
    releases, access,
    consent, subjects' rights."""

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
    release_tables: tuple[ReleaseTable, ...]     # coarse to fine: a parent before its children
    retention: tuple[RetentionRule, ...]
    anonymous_datasets: tuple[AnonymousDataset, ...]
    roaming: RoamingRule
    reporting: Reporting
    lateness: LatenessRule
    aggregate_release: AggregateReleaseRule
    access: AccessRule
    consent: ConsentRule
    subject_rights: SubjectRightsRule

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

    def columns_treated(self, treatment: str) -> tuple[str, ...]:
        """Billing columns whose analytics treatment is `treatment`, in policy order."""
        return tuple(f.column for f in self.fields if f.analytics == treatment)

    @property
    def subject_identifier_columns(self) -> tuple[str, ...]:
        """Billing columns whose values identify a subscriber (numbers, IMSI, IMEI)."""
        return tuple(f.column for f in self.fields if f.identifies_subject)

    def retention_for(self, category: str) -> RetentionRule:
        for r in self.retention:
            if r.category == category:
                return r
        raise KeyError(f"no retention category {category!r} in policy {self.id}")

    def retention_of(self, dataset: str) -> RetentionRule | None:
        """The retention category that covers a data set (None: the catalog has none)."""
        return next((r for r in self.retention if dataset in r.datasets), None)

    @property
    def billing_retention(self) -> RetentionRule:
        """The category of billing traffic data: kept until paid, at most a claim's limitation period."""
        rule = self.retention_of("billing")
        if rule is None:
            raise KeyError(f"policy {self.id} has no retention category for the billing data set")
        return rule

    @property
    def claim_types(self) -> tuple[str, ...]:
        """Claim types with a limitation period; a payments extract names one per invoice."""
        return tuple(name for name, _ in self.billing_retention.limitation_periods)

    @property
    def personal_datasets(self) -> tuple[str, ...]:
        """Every data set the retention catalog covers (each holds personal data), in catalog order."""
        return tuple(dict.fromkeys(d for r in self.retention for d in r.datasets))

    def release_table(self, name: str) -> ReleaseTable:
        for t in self.release_tables:
            if t.name == name:
                return t
        raise KeyError(f"{name!r} is not a release table of the policy")

    def ancestors_of(self, name: str) -> tuple[str, ...]:
        """The tables containing `name`'s cells, nearest first (its parent, the parent's parent …)."""
        chain, table = [], self.release_table(name)
        while table.within is not None:
            chain.append(table.within)
            table = self.release_table(table.within)
        return tuple(chain)

    def release_columns(self, name: str) -> tuple[str, ...]:
        """A release table's dimension columns: its grain, then what its ancestors generalize it to (so an
        `other` row, which holds its parent cell's values, names that cell)."""
        dims = list(self.release_table(name).by)
        for up in self.ancestors_of(name):
            dims += [d for d in self.release_table(up).by if d not in dims]
        return tuple(dims)

    def is_anonymous(self, dataset: str) -> bool:
        return any(a.dataset == dataset for a in self.anonymous_datasets)
