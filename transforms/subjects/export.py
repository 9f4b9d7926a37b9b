"""A subject's copy of their data (policy §6.1 access, §6.5 portability): every zone's rows of one subject,
found from their tokens (`find`), written to a folder only the pipeline's account may read.

The folder holds, per zone, `<zone>.csv` and `<zone>.json` (a JSON array of objects; dates and times ISO
8601, tokens as hex) — also for a zone with no row, so the subject sees every zone was looked at —,
`summary.json` (rows and what was done per zone) and `index.html`, the §6.1 information in words: per zone
the categories of data, the purpose, legal basis and retention from the policy, who reads it, where it came
from, and the right to complain to the supervisory authority (policy §7).

The folder is made owner-only (0700, files 0600): it holds the subject's raw numbers. Nothing of the
subject's data goes anywhere else — the returned result carries counts only, and DuckDB's spill space is a
folder inside the export, removed when it is done.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined

from transforms.lake import Lake
from transforms.lake.commit import commit_file, remove_tree
from transforms.lake.connection import connect
from transforms.lake.permissions import make_owner_only_dir
from transforms.lake.records import write_json
from transforms.marketing.schema import ZONE as MARKETING
from transforms.policy import Policy
from transforms.policy.model import LINEAGE_COLUMNS
from transforms.privacy.generalize import treatments
from transforms.privacy.keys import KeyRing
from transforms.subjects.find import ANONYMOUS, OTHER_PARTY_KEEPS, ROLE, ZONES, ZoneFound, find_subject
from transforms.subjects.subject import Subject

RIGHTS = ("access", "portability")
RIGHT_CLAUSES = {"access": "§6.1 (right of access)", "portability": "§6.5 (right to data portability)"}
COMPLAINT_CLAUSE = "§7"
SUPERVISORY_AUTHORITY = "Informacijski pooblaščenec"
SUMMARY, INDEX = "summary.json", "index.html"
_WORK = ".work"
# Where each zone's data come from (§6.1: the source, where the data were not collected from the subject).
SOURCES = {
    "billing": "delivered by the network's billing / mediation systems (the records of your communications)",
    "quarantine": "delivered by the network's billing / mediation systems, then set aside because a value failed "
                  "a check (the failing values are blanked)",
    "invoices": "the billing system's payments extract (your invoices and their payment state)",
    "analytics": "made by this pipeline from the billing rows: numbers and IMSIs replaced by keyed tokens, times "
                 "cut to the hour, the device to its model, the cell to its area",
    "roaming": "made by this pipeline from the billing rows: per month, days and consumption at home and roaming",
    "aggregates": "made by this pipeline from the analytics rows: counts and sums over groups of subscribers",
    "consents": "recorded when you gave or withdrew a consent",
    "marketing": "the operator's marketing systems",
}
_ENV = Environment(loader=ChoiceLoader([PackageLoader("transforms.subjects", "templates"),
                                        PackageLoader("transforms.report", "templates")]),
                   autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["n"] = lambda v: f"{v:,}" if isinstance(v, int) else v


class ExportError(ValueError):
    """An export that cannot be made; the message never repeats the subject's identifier."""


@dataclass(frozen=True)
class SubjectExport:
    """What an export wrote: per zone the rows and the action, no value of the subject."""

    out: Path
    right: str
    request_id: str | None
    zones: tuple[ZoneFound, ...]
    seconds: float
    columns: dict[str, list[str]]        # zone -> the columns of its files (empty when it has none)

    @property
    def counts(self) -> dict[str, int]:
        return {z.zone: z.rows for z in self.zones}

    @property
    def actions(self) -> dict[str, str]:
        return {z.zone: z.action for z in self.zones}


def export_subject(lake: Lake, policy: Policy, keyring: KeyRing, subject: Subject, out: Path, *,
                   right: str = "access", request_id: str | None = None) -> SubjectExport:
    """Find the subject in every zone and write their copy to `out` (a new or empty folder)."""
    if right not in RIGHTS:
        raise ExportError(f"the right is one of {', '.join(RIGHTS)}, not {right!r}")
    started = time.monotonic()
    out = Path(out)
    _prepare(out)
    work = out / _WORK
    con = connect(work)
    try:
        found = find_subject(con, lake, policy, keyring, subject)
        columns = {z.zone: _write_zone(con, out, z) for z in found}
    finally:
        con.close()
        remove_tree(work)
    result = SubjectExport(out, right, request_id, found, time.monotonic() - started, columns)
    write_json(out / SUMMARY, {"request_id": request_id, "right": right, "zones": result.counts,
                               "actions": result.actions, "notes": {z.zone: z.note for z in found},
                               "policy": {"id": policy.id, "version": policy.version},
                               "keys_searched": sorted(subject.tokens),
                               "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    _write_text(out / INDEX, render_index(result, policy))
    return result


def _prepare(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ExportError("--out must be a folder (new or empty), not a file or a link")
    if out.is_dir() and any(out.iterdir()):
        raise ExportError("--out must be a new or empty folder: the export never mixes with other files")
    make_owner_only_dir(out)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    tmp.write_text(text, encoding="utf-8")
    commit_file(tmp, path)       # the folder's modes (owner-only: 0600), in one rename


def _presented(con, table: str) -> str:
    """A found table's columns as the export shows them: tokens as hex, times ISO 8601 (UTC)."""
    out = []
    for name, kind, *_ in con.execute(f"DESCRIBE {table}").fetchall():
        if kind == "BLOB":
            out.append(f"hex({name}) AS {name}")
        elif kind.startswith("TIMESTAMP"):
            out.append(f"strftime({name}, '%Y-%m-%dT%H:%M:%SZ') AS {name}")
        else:
            out.append(name)
    return ", ".join(out)


def _write_zone(con, out: Path, z: ZoneFound) -> list[str]:
    """`<zone>.csv` and `<zone>.json`, header-only / `[]` when the zone holds nothing of the subject; returns
    the columns."""
    csv, js = out / f"{z.zone}.csv", out / f"{z.zone}.json"
    if z.table is None:
        _write_text(csv, "")
        _write_text(js, "[]\n")
        return []
    select = f"SELECT {_presented(con, z.table)} FROM {z.table}"
    for final, options in ((csv, "FORMAT csv, HEADER true"), (js, "FORMAT json, ARRAY true")):
        tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex}")
        con.execute(f"COPY ({select}) TO $dst ({options})", {"dst": str(tmp)})
        commit_file(tmp, final)
    return [d[0] for d in con.execute(f"SELECT * FROM {z.table} LIMIT 0").description]


# ------------------------------------------------------------------------------------------------ index.html

@dataclass(frozen=True)
class ZonePage:
    """What index.html says about one zone."""

    zone: str
    rows: int
    action: str
    note: str
    categories: list[str]
    purpose: str
    legal_basis: str
    retention: str
    readers: str
    source: str


def _categories(policy: Policy, columns: list[str]) -> list[str]:
    """Each column in the policy's words: a billing column by its §3.2 item and term, an analytics column by
    the billing column it was made from."""
    made_from = {t.output_column: t for t in treatments(policy) if t.output_column and t.output_column != t.column}
    words = []
    for c in columns:
        if c == ROLE:
            words.append(f"{c}: whether the row is about your own communication (served) or one where you were "
                         "only the other party (other_party)")
        elif c in LINEAGE_COLUMNS:
            words.append(f"{c}: where the row came from (the delivered file, its line, the run that read it, the "
                         "day of the communication)")
        elif policy.is_allowed(c):
            f = policy.field(c)
            words.append(f"{c}: {f.term} ({f.clause})")
        elif c in made_from:
            f = policy.field(made_from[c].column)
            words.append(f"{c}: {f.term}, {made_from[c].action} ({f.clause})")
        else:
            words.append(c)
    return words


def _readers(policy: Policy, zone: str) -> tuple[str, str]:
    """(purpose, who reads it) from the policy's access section."""
    try:
        access = policy.access.of(zone)
    except KeyError:
        return ("not declared in the policy's access section", "the pipeline's own account")
    if access.group is None:
        return (access.clause, "only the account that runs the audit pipeline: no person's account and no other "
                               f"system reads this zone ({policy.access.clause})")
    return (access.clause, f"the role '{access.group.role}' ({access.group.clause}), through the Unix group "
                           f"{access.group.unix_group}; nobody else ({policy.access.clause})")


def _retention(policy: Policy, zone: str) -> tuple[str, str]:
    """(legal basis, retention) from the policy's retention catalog."""
    rule = policy.retention_of(zone)
    if rule is None:
        anonymous = next((a for a in policy.anonymous_datasets if a.dataset == zone), None)
        if anonymous:
            return (anonymous.clause, "no retention period: no personal data")
        return ("no category of the policy's retention catalog names this zone", "—")
    anchor = rule.anchor.replace("_", " ")
    keep = (f"until {rule.keep_until.replace('_', ' ')}, at most {rule.keep} (ISO 8601 period) from the {anchor}"
            if rule.keep_until else f"{rule.keep} (ISO 8601 period) from the {anchor}")
    return (f"{rule.legal_basis} ({rule.clause})", f"{keep}; then {rule.action}d")


@dataclass(frozen=True)
class Profiling:
    """What index.html says about automated decisions and profiling (§6.1, last indent): whether a profile of the
    subject is held, what it is made of, what it leads to, and the consent it rests on (§3.4 ¶5)."""

    held: bool
    clause: str
    purpose: str
    inputs: list[str]


# What a marketing profile row holds, in words (transforms/marketing/schema.py PROFILE_COLUMNS).
_PROFILE_INPUTS = [
    "the number of your communications, minutes of calls, SMS and MMS counts and data volume, per day",
    "how your use is spread over the 24 hours of the day",
    "the area your phone was most often in (home area)",
    "the people you called who consented to profiling too (by a marketing token), and how many others "
    "(a count, never who)",
]


def _profiling(policy: Policy, result: SubjectExport) -> Profiling:
    purpose = policy.consent.purpose(policy.consent.profiling_purpose)
    held = any(z.zone == MARKETING and z.rows for z in result.zones)
    return Profiling(held, purpose.clause, purpose.purpose, _PROFILE_INPUTS)


def render_index(result: SubjectExport, policy: Policy, statement: list[str] | None = None) -> str:
    """index.html: the export in words for the person it is about (every value escaped); `statement`: the
    paragraphs answering a request for another right than access (`transforms.subjects.fulfil`)."""
    pages = []
    for z in result.zones:
        columns = result.columns.get(z.zone, []) if z.rows else []
        purpose, readers = _readers(policy, z.zone)
        basis, keep = _retention(policy, z.zone)
        pages.append(ZonePage(z.zone, z.rows, z.action, z.note, _categories(policy, columns), purpose, basis, keep,
                              readers, SOURCES.get(z.zone, "—")))
    return _ENV.get_template("access.html.j2").render(
        right=result.right, request_id=result.request_id, statement=statement or [],
        right_clause=RIGHT_CLAUSES.get(result.right) or policy.subject_rights.clause_of(result.right),
        zones=pages, profiling=_profiling(policy, result), anonymous=ANONYMOUS, policy=policy, kept=", ".join(OTHER_PARTY_KEEPS),
        authority=SUPERVISORY_AUTHORITY, complaint_clause=COMPLAINT_CLAUSE,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), files=sorted(
            [f"{z}.csv" for z in ZONES] + [f"{z}.json" for z in ZONES] + [SUMMARY]))

