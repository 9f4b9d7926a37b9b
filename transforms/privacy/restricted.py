"""Subjects whose processing is restricted, as the nightly steps see them (policy §6.3, §6.4, §6.6;
docs/design.md §12).

While a request's restriction stands (`subject_requests.restricted_at` set, `lifted_at` not), the night's
derivations leave the subject out: the plan, which opens the audit store, writes the restricted subjects' tokens
(under every key their request holds) to the run's fragments (`restricted.json`); the steps never open the store.
A step finds the rows to drop by the spellings whose token, under a key a restricted token is under, is one of
theirs — so a subject is found across a key rotation while the request's key is held. The spellings come from what
is hashed already where it can (`_Spellings`): the analytics step's token lookups, the billing parts' subject
indexes; else the distinct served numbers and IMSIs of the billing rows are tokenized with each such key — HMAC over
distinct values, in DuckDB, as legal holds are matched. What is dropped is counted, never named.

Rows are dropped where they are the restricted subject's own — the rows the subject finder calls theirs
(`subjects.find`, role `served`) and an erasure takes (`retention.blank`): in analytics and the marketing profiles
a row whose served subscriber's number is the subject's (or whose IMSI is, outside a forwarded leg, where the IMSI
may be the forwarding SIM's and the served party the number it was forwarded to: `steps.billing.imsi_is_served_sql`);
in roaming, whose rows are an IMSI's, a row with the subject's IMSI (by its served number only where it has none).
A number and an IMSI of one subject are linked by the night's rows that are theirs for certain (the IMSI of a row
served to the number outside a forwarded leg, and the other way round), so a request made by number also finds
their IMSI, as the finder does. Where they are only the other party (called, calling or redirected-to number,
the IMSI of their SIM forwarding someone's call to another) the record is the other subscriber's and its
processing goes on, but without the restricted subject: the predicate also gathers the raw spellings of the
caller's further number columns (`numbers`), and the step writes no token of theirs there — analytics NULL
(`privacy.analytics`), a marketing profile counts them among the called parties not named
(`marketing.profiles`), as an erasure blanks existing rows (docs/design.md §12). The cells so blanked are counted
(`write_skipped`'s `cells_blanked`), never named.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.lake import Lake
from transforms.lake.connection import execute
from transforms.lake.records import read_record, write_json
from transforms.policy import Policy
from transforms.privacy.keys import KeyRing
from transforms.privacy.subject_index import lookup
from transforms.privacy.tokens import add_tokens, distinct_spellings, match_spellings

RESTRICTED = "restricted.json"
ANALYTICS, MARKETING, ROAMING = "analytics", "marketing", "roaming"
# What a restriction stops, per right (docs/design.md §12): a restriction, and what an erasure keeps for a legal
# obligation, stop every further derivation; an objection on legitimate interest stops the processing objected to
# (analytics, §3.3) while it is decided. Billing and invoices still land (the legal obligation).
SKIPPED_BY_RIGHT = {"restriction": (ANALYTICS, MARKETING, ROAMING), "erasure": (ANALYTICS, MARKETING, ROAMING),
                    "objection": (ANALYTICS,)}


@dataclass(frozen=True)
class RestrictedToken:
    kind: str               # msisdn | imsi
    key_id: str
    token: str              # hex
    zones: tuple[str, ...]  # the derivations that skip the subject


@dataclass(frozen=True)
class Restricted:
    tokens: tuple[RestrictedToken, ...] = ()

    def of(self, zone: str) -> list[RestrictedToken]:
        return [t for t in self.tokens if zone in t.zones]


def restricted_now(con) -> Restricted:
    """The restricted subjects of the audit store (`con`): requests restricted and not lifted."""
    import json

    rows = con.execute("SELECT subject_right, subject_kind, subject_tokens FROM subject_requests"
                       " WHERE restricted_at IS NOT NULL AND lifted_at IS NULL ORDER BY request_id").fetchall()
    return Restricted(tuple(RestrictedToken(kind, key_id, tok, SKIPPED_BY_RIGHT.get(right, ()))
                            for right, kind, text in rows for key_id, tok in sorted(json.loads(text).items())))


def write_restricted(lake: Lake, run_id: str, restricted: Restricted) -> None:
    write_json(lake.fragments_dir(run_id) / RESTRICTED, restricted)


def read_restricted(lake: Lake, run_id: str | None) -> Restricted:
    """The run's restricted subjects (none when the plan wrote none, or outside a run)."""
    path = lake.fragments_dir(run_id) / RESTRICTED if run_id else None
    return read_record(path, Restricted) if path is not None and path.exists() else Restricted()


# Zones whose rows are an IMSI's (roaming: one row per IMSI token), not a served number's.
IMSI_ZONES = (ROAMING,)


@dataclass(frozen=True)
class KnownSpellings:
    """Spellings a step has already normalized and hashed (the analytics step's token lookups): a relation the
    step built, never input text, with the columns (kind, raw, norm, token), its tokens under `key_id`. A restricted
    token under that key is matched on them as they are; under another key their normalized values are hashed
    again, and the relation's rows are never read for spellings."""

    relation: str
    key_id: str


@dataclass(frozen=True)
class RestrictedFilter:
    """Who a step leaves out: the run's restricted subjects for one zone, and the SQL of a billing row's served
    subscriber's number (the caller's: `steps.billing.restricted_filter`), IMSI, and whether that IMSI is for
    certain the served subscriber's (`imsi_served`)."""

    restricted: Restricted
    zone: str
    served_number: str
    imsi: str | None = "imsi"
    imsi_served: str = "true"

    def predicate(self, con, relation: str, params: dict, policy: Policy, keyring: KeyRing,
                  name: str = "restricted_raw", numbers: tuple[str, ...] = (), known: KnownSpellings | None = None,
                  parts: list[str] | None = None) -> str:
        return restricted_predicate(con, relation, params, policy, keyring, self.restricted, self.zone,
                                    self.served_number, self.imsi, name, numbers, self.imsi_served, known, parts)


def restricted_predicate(con, relation: str, params: dict, policy: Policy, keyring: KeyRing, restricted: Restricted,
                         zone: str, served_number: str, imsi: str | None = "imsi", name: str = "restricted_raw",
                         numbers: tuple[str, ...] = (), imsi_served: str = "true",
                         known: KnownSpellings | None = None, parts: list[str] | None = None) -> str:
    """SQL over a row of `relation`: true when the row is a subject's own who is restricted for `zone` (see the
    module docstring). Creates the temp table `name (kind, raw)` of the raw spellings that are restricted, among
    the served numbers and IMSIs and the number columns `numbers` (where a restricted subject is the other party:
    for the caller to blank). "false" when nobody is restricted for the zone.

    Where the spellings come from (`_Spellings`): the `known` ones a step already hashed; or, when `relation` is the
    billing part files `parts`, the subject indexes beside them (`subject_index.lookup`), a part without a usable
    index read and hashed; or else every distinct spelling of `relation`, normalized and hashed here."""
    tokens = restricted.of(zone)
    held = {k.key_id: k for k in keyring.keys}
    usable = [t for t in tokens if t.key_id in held]
    if not usable:
        return "false"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_tokens (kind VARCHAR, key_id VARCHAR, token BLOB)")
    con.executemany(f"INSERT INTO {name}_tokens VALUES (?, ?, ?)",
                    [(t.kind, t.key_id, bytes.fromhex(t.token)) for t in usable])
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (kind VARCHAR, raw VARCHAR)")
    columns = {"msisdn": (served_number, *numbers), "imsi": (imsi,) if imsi else ()}
    found = _Spellings(con, name, held, policy, columns, known, parts, relation, params)
    found.add(f"{name}_tokens")
    is_number = f"CAST({served_number} AS VARCHAR) IN (SELECT raw FROM {name} WHERE kind = 'msisdn')"
    if imsi:
        is_imsi = f"CAST({imsi} AS VARCHAR) IN (SELECT raw FROM {name} WHERE kind = 'imsi')"
        # The subject's other identifier, from tonight's rows that are theirs for certain; every spelling of it,
        # found by its tokens under the restricted tokens' keys.
        execute(con, f"""CREATE OR REPLACE TEMP TABLE {name}_linked AS
            SELECT 'imsi' AS kind, CAST({imsi} AS VARCHAR) AS raw FROM {relation} WHERE ({imsi_served}) AND {is_number}
            UNION SELECT 'msisdn', CAST({served_number} AS VARCHAR) FROM {relation} WHERE ({imsi_served}) AND {is_imsi}
            EXCEPT SELECT kind, raw FROM {name}""", params)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_linked_tokens (kind VARCHAR, key_id VARCHAR, token BLOB)")
        add_tokens(con, f"{name}_linked_tokens", f"{name}_linked", [held[k] for k in found.keys(f"{name}_tokens")],
                   policy.operator)
        found.add(f"{name}_linked_tokens")
        con.execute(f"DROP TABLE {name}_linked")
    found.close()
    if not imsi:
        return f"coalesce({is_number}, false)"
    if zone in IMSI_ZONES:
        return f"coalesce({is_imsi}, {is_number}, false)"
    return f"coalesce({is_number} OR (({imsi_served}) AND {is_imsi}), false)"


class _Spellings:
    """Finds the spellings of tokens (a temp table: kind, key_id, token) and adds them to the temp table `name`
    (kind, raw): from the `known` spellings a step hashed, from the subject indexes of the billing `parts`, or by
    hashing every distinct spelling of `relation` (or of the parts without a usable index) — once per predicate."""

    def __init__(self, con, name: str, held: dict, policy: Policy, columns: dict[str, tuple[str, ...]],
                 known: KnownSpellings | None, parts: list[str] | None, relation: str, params: dict):
        self.con, self.name, self.held, self.policy, self.columns = con, name, held, policy, columns
        self.known, self.parts, self.relation, self.params = known, parts, relation, params
        self.hashed: str | None = None      # the temp table of hashed spellings, once made

    def keys(self, tokens: str) -> list[str]:
        return [k for (k,) in self.con.execute(f"SELECT DISTINCT key_id FROM {tokens} ORDER BY 1").fetchall()]

    def add(self, tokens: str) -> None:
        if self.known is not None:
            self._match(tokens, f"(SELECT kind, raw, norm, token FROM {self.known.relation}"
                                " WHERE kind IN ('msisdn', 'imsi'))", self.known.key_id)
            return
        relation, params = self.relation, self.params
        if self.parts is not None:
            listed = lookup(self.con, self.parts, set(self.held), tokens, spellings=f"{self.name}_listed")
            self.con.execute(f"INSERT INTO {self.name} SELECT DISTINCT kind, raw FROM {self.name}_listed"
                             f" EXCEPT SELECT kind, raw FROM {self.name}")
            self.con.execute(f"DROP TABLE {self.name}_listed")
            if not listed.unindexed:
                return
            relation, params = "read_parquet($restricted_files, union_by_name = true)", \
                {"restricted_files": listed.unindexed}
        self._match(tokens, self._hashed(relation, params), None)

    def _hashed(self, relation: str, params: dict) -> str:
        """The distinct spellings of `relation`'s identifier columns, normalized: made once."""
        if self.hashed is None:
            self.hashed = f"{self.name}_distinct"
            distinct_spellings(self.con, self.hashed, relation, params, self.columns, self.policy.operator)
        return self.hashed

    def _match(self, tokens: str, spellings: str, hashed_under: str | None) -> None:
        """Add the spellings (kind, raw, norm[, token]) whose token is in `tokens`: as they are under the key
        `hashed_under`, hashed under any other."""
        for key_id in self.keys(tokens):
            match_spellings(self.con, self.name, spellings, tokens, self.held[key_id], hashed=key_id == hashed_under)

    def close(self) -> None:
        if self.hashed is not None:
            self.con.execute(f"DROP TABLE {self.hashed}")


SKIPPED, BLANKED = "restricted", "blanked"


def write_skipped(lake: Lake, run_id: str, name: str, rows: dict[str, int],
                  cells_blanked: dict[str, int] | None = None) -> None:
    """The rows a step left out for restricted subjects, and the cells where it blanked one as the other party
    (counts only), for the night's facts."""
    write_json(lake.fragments_dir(run_id) / f"{SKIPPED}-{name}.json", rows)
    if cells_blanked is not None:
        write_json(lake.fragments_dir(run_id) / f"{BLANKED}-{name}.json", cells_blanked)


def read_skipped(lake: Lake, run_id: str, fact: str = SKIPPED) -> dict[str, int]:
    """Every step's skipped rows (`fact` BLANKED: blanked cells) of the run, summed per zone."""
    total: dict[str, int] = {}
    for p in sorted(lake.fragments_dir(run_id).glob(f"{fact}-*.json")):
        for zone, n in read_record(p, dict[str, int]).items():
            total[zone] = total.get(zone, 0) + n
    return total
