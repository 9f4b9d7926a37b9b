"""Where one subject's rows are, zone by zone, from the subject's tokens alone (policy §6.1, §6.5;
docs/design.md §2, §4).

Each zone has one small finder in a registry (`FINDERS`, in the order a summary lists the zones). A finder
leaves the subject's rows as a temp table `found_<zone>` in the search's connection and says how many it
found; nothing of them is read into Python.

* Zones of raw values (billing, invoices, quarantine, consents) are matched by the subject's spellings: those the
  subject index lists for its tokens (`transforms.privacy.subject_index`: billing and invoice parts), and, in
  parts without a usable index, as the retention sweep matches a hold's subject (`transforms.retention.hold_scope`):
  the DISTINCT spellings of numbers and IMSIs normalized and tokenized with each key the subject has a token
  under, inside DuckDB (`token_sql`) — HMAC over distinct values only.
* Every zone of rows is read in two steps (`_pinpointed`): a narrow scan of the identifier columns of the parts
  that may hold the subject, the filter inside the Parquet reader, gives row numbers; the parts are then read at
  those rows only. The rows so read are a superset, matched exactly as before: the same rows either way.
* Zones of tokens (analytics, roaming) are matched on (key id, token) pairs: a row is compared with the
  subject's token under the key the row was made with (`hmac_key_id`), so rows from before and after a key
  rotation are found; a token made with a key since dropped still matches the rows of that key.
* The marketing zone holds purpose-bound tokens (`privacy.purpose`): they are made from the subject's number as
  their own billing and invoice rows spell it, with each held key's purpose key.
* The identifiers of the rows where the subject is the served subscriber (their number and their SIM's IMSI,
  never from a forwarded leg) are tokenized under every key held and added to the subject before billing is
  searched: a row where they are the other party keeps their IMSI however they asked, the roaming zone knows a
  subscriber by the IMSI's token only, and a number asked for is found in rows made with a key newer than the
  request.

The served subscriber of a CDR is the party the record is about (`transforms.steps.billing`); a subject who
is only the other party of someone else's communication gets those rows WITHOUT that someone's identifiers:
every column but the communication's own (`OTHER_PARTY_KEEPS`) and the subject's own number is blanked, so
the export discloses nothing about the caller (GDPR Art. 15(4): the copy must not adversely affect the rights
of others). Such rows say `subject_role = 'other_party'`, the subject's own `served`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transforms.lake import Lake
from transforms.lake.connection import connect, execute
from transforms.policy import Policy
from transforms.policy.model import ZONE_NAMES
from transforms.privacy.generalize import treatments
from transforms.privacy.keys import KeyRing
from transforms.privacy.numbers import normalize_sql, numbering_params
from transforms.privacy.purpose import marketing_keyring
from transforms.privacy.subject_index import IndexLookup, lookup
from transforms.privacy.tokens import KEY_ID_COLUMN, add_tokens, distinct_spellings, match_spellings, token_sql
from transforms.retention.rows import ROAMING_TOKEN, SERVED_NUMBER, part_files
from transforms.marketing.schema import SUBSCRIBER_TOKEN as MARKETING_TOKEN
from transforms.marketing.schema import ZONE as MARKETING
from transforms.roaming.schema import STATUS_DIR
from transforms.steps.billing import imsi_is_served_sql
from transforms.subjects.subject import SUBJECT_KINDS, Subject

ROLE = "subject_role"
SERVED, OTHER_PARTY = "served", "other_party"
# What a row where the subject is only the other party keeps of the communication: its direction, time,
# duration and kind of service (policy billing_data items 3-5) — the subject's own data. Every other column
# (the served subscriber's number, IMSI, IMEI, cell, network, tariff, charges, and the lineage that names
# the served subscriber's source row) points at the other person and is blanked.
OTHER_PARTY_KEEPS = ("direction", "start_time", "duration_s", "service_type")
# The SIM that made a CDR, its device and its place: the served subscriber's outside a forwarded leg, the forwarding
# SIM's in one (`steps.billing.imsi_is_served_sql`; docs/design.md §12). A copy gives them to whoever the SIM is:
# not to a forwarded-to party served by the leg, and to the SIM's subscriber where they are only the other party.
SIM_COLUMNS = ("imsi", "imei", "cell_id", "location_area")
# The roaming zone's subscriber token is the served IMSI's (transforms/roaming/months.py).
ROAMING_TOKEN_KIND = "imsi"
# The payments extract's (and the consent register's) subscriber column: E.164, as billing numbers.
SUBSCRIBER_NUMBER = "subscriber_number"

# Actions a summary reports per zone.
EXPORTED, ANONYMOUS, ABSENT = "exported", "anonymous", "absent"


@dataclass(frozen=True)
class ZoneFound:
    """What one zone holds of the subject: the row count, and the temp table holding the rows."""

    zone: str
    rows: int
    action: str            # exported | anonymous | absent
    note: str
    table: str | None      # `found_<zone>` in the search's connection (None: the zone has no rows to hold)


class Search:
    """One subject looked for in one lake, in one DuckDB connection.

    Holds the table `subject_tokens (kind, key_id, token)`: the subject's tokens, and from billing's search on the
    tokens of the identifiers of their own rows under every key held (`_link_own_rows`).
    """

    def __init__(self, con, lake: Lake, policy: Policy, keyring: KeyRing, subject: Subject) -> None:
        self.con, self.lake, self.policy, self.keyring, self.subject = con, lake, policy, keyring, subject
        self.spelling_tables: list[str] = []        # `<zone>_spellings` made so far: the subject's raw spellings
        self.parts_scanned: dict[str, tuple[int, int]] = {}   # zone -> (parts scanned, parts in the zone)
        con.execute("CREATE OR REPLACE TEMP TABLE subject_tokens (kind VARCHAR, key_id VARCHAR, token BLOB)")
        con.executemany("INSERT INTO subject_tokens VALUES (?, ?, ?)",
                        [(subject.kind, k, bytes.fromhex(t)) for k, t in sorted(subject.tokens.items())])

    def columns(self, kind: str, present: set[str]) -> list[str]:
        """The policy's columns of identifier `kind` that `present` holds, in policy order."""
        return [f.column for f in self.policy.fields if f.identifier == kind and f.column in present]

    def tokens_of(self, kind: str) -> str:
        """SQL: the subject's (key id, token) pairs of one identifier kind."""
        assert kind in SUBJECT_KINDS, kind
        return f"(SELECT key_id, token FROM subject_tokens WHERE kind = '{kind}')"

    def candidates(self, zone: str, files: list[str], *, spellings: bool = False) -> IndexLookup:
        """The part files of `zone` that may hold the subject's present tokens: the subject index rules out the
        others (`privacy.subject_index`); parts without a usable index are all kept. The rows of those kept are
        still matched one by one, so an index can only save a scan, never decide a row. With `spellings`, the
        table `<zone>_indexed` holds the subject's raw spellings the indexes list."""
        found = lookup(self.con, files, {k.key_id for k in self.keyring.keys},
                       spellings=f"{zone}_indexed" if spellings else None)
        self.parts_scanned[zone] = (len(found.parts), len(files))
        return found

    def keys_to_tokenize(self):
        """Keys held that the subject has a token under: only those can find the subject's raw values."""
        have = {k for (k,) in self.con.execute("SELECT DISTINCT key_id FROM subject_tokens").fetchall()}
        return [k for k in self.keyring.keys if k.key_id in have]

    def spellings(self, zone: str, source: str, params: dict, columns: dict[str, list[str]], *,
                  indexed: str | None = None, hash_source: bool = True) -> str:
        """Temp table `<zone>_spellings (kind, raw)`: the spellings in `columns` ({kind: columns}) of `source`
        whose normalized value has the subject's token under one of the keys held, and those of the kinds of
        `columns` the subject index listed (the table `indexed`, from `candidates`).

        One read of the identifier columns (unless `hash_source` is false: every part had its index); HMAC over
        the distinct spellings, per key, inside DuckDB.
        """
        table = f"{zone}_spellings"
        if table not in self.spelling_tables:
            self.spelling_tables.append(table)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (kind VARCHAR, raw VARCHAR)")
        if indexed and columns:
            self.con.execute(f"INSERT INTO {table} SELECT DISTINCT kind, raw FROM {indexed}"
                             f" WHERE kind IN ({', '.join(repr(k) for k in columns)})")
        if not any(columns.values()) or not hash_source:
            return table
        distinct_spellings(self.con, f"{zone}_distinct", source, params, columns, self.policy.operator)
        for key in self.keys_to_tokenize():
            match_spellings(self.con, table, f"{zone}_distinct", "subject_tokens", key)
        self.con.execute(f"DROP TABLE {zone}_distinct")
        return table

    def link(self, table: str, served_number: str, imsi: str | None) -> None:
        """Add the identifiers of the subject's own rows in `table` (CDRs: their number, their SIM's IMSI),
        tokenized under every key held, to `subject_tokens`: the token zones know the subject under those too.

        An IMSI only from a row outside a forwarded leg (`steps.billing.imsi_is_served_sql`): a leg served to the
        subject's number that another SIM forwarded holds that SIM's IMSI, and taking it for theirs would give
        them the other subscriber's analytics, roaming and quarantine rows (docs/design.md §12)."""
        branches = [f"SELECT 'msisdn' AS kind, {served_number} AS raw FROM {table} WHERE {ROLE} = '{SERVED}'"]
        if imsi:
            branches.append(f"SELECT 'imsi', CAST({imsi} AS VARCHAR) FROM {table}"
                            f" WHERE {ROLE} = '{SERVED}' AND {imsi_is_served_sql()}")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE linked AS {' UNION ALL '.join(branches)}")
        add_tokens(self.con, "subject_tokens", "linked", self.keyring.keys, self.policy.operator, SUBJECT_KINDS)
        self.con.execute("DROP TABLE linked")


Finder = Callable[[Search], ZoneFound]
FINDERS: dict[str, Finder] = {}


def finder(zone: str) -> Callable[[Finder], Finder]:
    """Register the finder of one zone (the registry's order is the order zones are searched and listed)."""
    def register(fn: Finder) -> Finder:
        FINDERS[zone] = fn
        return fn
    return register


def zone_folder(lake: Lake, zone: str) -> Path:
    """A zone's folder; zones another release adds (consents, marketing) may not be the lake's names yet."""
    return lake.zone(zone) if zone in ZONE_NAMES else lake.root / zone


def _source(files: list[str]) -> str:
    """Every part file of a zone as one relation, partition columns included (binds `$files`: the lake's own
    paths, never input text)."""
    return "read_parquet($files, hive_partitioning = true, union_by_name = true)"


def _columns(con, source: str, params: dict) -> list[str]:
    return [d[0] for d in execute(con, f"SELECT * FROM {source} LIMIT 0", params).description]


def _present(con, source: str, params: dict) -> set[str]:
    return set(_columns(con, source, params))


def _pinpointed(s: Search, zone: str, files: list[str], tests: dict[str, list], schema: list[str] | None = None
                ) -> str:
    """Temp table `<zone>_read`: the rows of the part files `files` where a column holds one of its values
    (`tests`: {column: values}), with the columns of `schema` (part files; default `files`; partition columns
    included) — a superset of the subject's rows, which the finder then matches exactly.

    Read in two steps, so a row group is decoded whole only where a row of the subject is (docs/design.md §12): one
    narrow scan per column, its filter pushed into the Parquet reader (footer statistics skip row groups that
    cannot hold a value, and no other column is read), gives each part's row numbers; then each part holding one
    is read at those rows only, one part after the other (memory stays that of one part's row groups). Reading
    every row of the listed parts and filtering afterwards decoded every column of every row group."""
    params: dict = {"files": files}
    branches = []
    for column, values in tests.items():
        if not values:
            continue
        names = []
        for value in values:
            names.append(f"$v{len(params)}")
            params[names[-1][1:]] = value
        # Spellings are compared as text (a no-op cast on a text column: the filter still goes into the reader).
        stored = column if isinstance(values[0], bytes) else f"CAST({column} AS VARCHAR)"
        branches.append(f"SELECT filename, file_row_number FROM read_parquet($files, filename = true,"
                        f" file_row_number = true, union_by_name = true, hive_partitioning = false)"
                        f" WHERE {stored} IN ({', '.join(names)})")
    located = execute(s.con, f"""SELECT filename, list(file_row_number ORDER BY file_row_number)
                                  FROM ({' UNION '.join(branches)}) GROUP BY filename ORDER BY filename""",
                      params).fetchall() if branches else []
    table = f"{zone}_read"
    # Every column of the parts, whichever of them hold a row (`WHERE false` reads no row).
    execute(s.con, f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {_source(files)} WHERE false",
            {"files": schema or files})
    # Paths are the lake's own; the row numbers are positions in them, nothing of a person.
    for path, rows in located:
        s.con.execute(f"""INSERT INTO {table} BY NAME
            SELECT * EXCLUDE (file_row_number) FROM read_parquet($part, hive_partitioning = true, file_row_number = true)
            WHERE file_row_number IN (SELECT unnest($rows))""", {"part": path, "rows": rows})
    return table


def _values(s: Search, table: str, kind: str, column: str) -> list:
    """The subject's values of one identifier kind in a temp table (their spellings, or tokens), for a filter."""
    return [v for (v,) in s.con.execute(f"SELECT DISTINCT {column} FROM {table} WHERE kind = ? ORDER BY 1",
                                        [kind]).fetchall()]


def _store(s: Search, zone: str, select: str, params: dict, note: str) -> ZoneFound:
    table = f"found_{zone}"
    execute(s.con, f"CREATE OR REPLACE TEMP TABLE {table} AS {select}", params)
    s.con.execute(f"DROP TABLE IF EXISTS {zone}_read")       # the superset read, if any: matched now
    (rows,), = s.con.execute(f"SELECT count(*) FROM {table}").fetchall()
    return ZoneFound(zone, rows, EXPORTED, note, table)


def _nothing(zone: str, note: str) -> ZoneFound:
    return ZoneFound(zone, 0, EXPORTED, note, None)


def _other_party_select(present: list[str], keeps: set[str], own: dict[str, str], sim: set[str] = frozenset(),
                        sim_theirs: str = "false") -> str:
    """Select list over a matched row with `subject_role`: served rows whole; other-party rows keep `keeps`
    and, of the identifier columns in `own` ({column: SQL true when it holds the subject}), the subject's own.
    The columns `sim` (the SIM's, `SIM_COLUMNS`) are given only where `sim_theirs` (SQL) says the SIM is the
    subject's."""
    out = [ROLE]
    for c in present:
        if c in keeps:
            out.append(c)
        elif c in sim:
            out.append(f"CASE WHEN {sim_theirs} THEN {c} END AS {c}")
        elif c in own:
            out.append(f"CASE WHEN {ROLE} = '{SERVED}' OR {own[c]} THEN {c} END AS {c}")
        else:
            out.append(f"CASE WHEN {ROLE} = '{SERVED}' THEN {c} END AS {c}")
    return ", ".join(out)


def _sim_theirs(cdr: bool, own_imsi: list[str]) -> str:
    """SQL over a matched row with `subject_role`: its SIM is the subject's — they are its served subscriber
    outside a forwarded leg, or its IMSI (any of `own_imsi`, SQL) is theirs. Rows that are not CDRs have no leg."""
    served = f"{ROLE} = '{SERVED}'" + (f" AND {imsi_is_served_sql()}" if cdr else "")
    return " OR ".join([f"({served})", *own_imsi])


def _role(served: list[str], other: list[str]) -> str:
    served_sql = " OR ".join(served) or "false"
    other_sql = " OR ".join(other) or "false"
    return f"CASE WHEN {served_sql} THEN '{SERVED}' WHEN {other_sql} THEN '{OTHER_PARTY}' END"


def _cdr_rows(s: Search, zone: str, files: list[str], order: str, keeps: tuple[str, ...]) -> ZoneFound:
    """Billing or quarantine: rows where the subject is the served subscriber (their number by direction, their
    IMSI, or a payments row's subscriber) or another party (any number column), the latter without the served
    subscriber's identifiers."""
    if not files:
        return _nothing(zone, "no files in the zone")
    look = s.candidates(zone, files, spellings=True)
    scan = look.parts
    # No part may hold the subject: the first part only gives the columns, and no row is read.
    source = _source(files)
    present = _columns(s.con, source, {"files": scan or files[:1]})
    present_set = set(present)
    numbers, imsis = s.columns("msisdn", present_set), s.columns("imsi", present_set)
    subscriber = [SUBSCRIBER_NUMBER] if SUBSCRIBER_NUMBER in present_set else []
    # The indexed parts' spellings come from their index; only the parts without one are read and hashed.
    spell = s.spellings(zone, source, {"files": look.unindexed or files[:1]},
                        {"msisdn": numbers + subscriber, "imsi": imsis} if scan else {},
                        indexed=look.spellings, hash_source=bool(look.unindexed))
    is_number = f"IN (SELECT raw FROM {spell} WHERE kind = 'msisdn')"
    is_imsi = f"IN (SELECT raw FROM {spell} WHERE kind = 'imsi')"
    cdr = {"direction", "origin_number", "destination_number"} <= present_set
    # Their IMSI makes a row theirs only where it is the served subscriber's for certain (not a forwarded leg's,
    # whose served party may be the number their SIM forwarded a call to): elsewhere it is a cell of theirs.
    served = [f"(CAST({c} AS VARCHAR) {is_imsi} AND {imsi_is_served_sql() if cdr else 'true'})" for c in imsis]
    served += [f"{c} {is_number}" for c in subscriber]
    if cdr:
        served.insert(0, f"CAST({SERVED_NUMBER} AS VARCHAR) {is_number}")
    own = {c: f"CAST({c} AS VARCHAR) {is_number}" for c in numbers}
    own_imsi = {c: f"coalesce(CAST({c} AS VARCHAR) {is_imsi}, false)" for c in imsis}
    own |= own_imsi
    select = _other_party_select(present, {*keeps, *OTHER_PARTY_KEEPS} & present_set, own,
                                 set(SIM_COLUMNS) & present_set, _sim_theirs(cdr, list(own_imsi.values())))
    # Only the rows holding one of the subject's spellings are read (a superset: the role decides each).
    spelled = {"msisdn": _values(s, spell, "msisdn", "raw"), "imsi": _values(s, spell, "imsi", "raw")}
    rows = _pinpointed(s, zone, scan or files[:1], {**{c: spelled["msisdn"] for c in numbers + subscriber},
                                                   **{c: spelled["imsi"] for c in imsis}} if scan else {})
    found = _store(s, zone, f"""
        SELECT {select} FROM (SELECT *, {_role(served, list(own.values()))} AS {ROLE} FROM {rows})
        WHERE {ROLE} IS NOT NULL ORDER BY {order}""", {},
                   "rows of the subscriber's own communications, and rows where they were only the other party "
                   "(without that party's identifiers)")
    return found


def _link_own_rows(s: Search, files: list[str]) -> None:
    """Add the subject's other identifier, from their own billing rows, to `subject_tokens` under every key held,
    before billing is searched once for both: asked for by IMSI, the number of the SIM's rows (the number also
    finds the communications of others they were the other party of); asked for by number, the IMSI of the rows
    served to it (so a row where they are the other party keeps their SIM's IMSI, as an IMSI search gives it).
    Neither from a forwarded leg: its served number is the forwarded-to party's, its IMSI the forwarding SIM's
    (`steps.billing.imsi_is_served_sql`)."""
    look = s.candidates("billing", files, spellings=True)
    if not look.parts:
        return
    source = _source(files)
    present = set(_columns(s.con, source, {"files": look.parts}))
    imsis = s.columns("imsi", present)
    if not imsis or not {"direction", "origin_number", "destination_number"} <= present:
        return
    kind = s.subject.kind
    # A number is the subject's own where it is the row's served number: the calling or the called column.
    columns = imsis if kind == "imsi" else ["origin_number", "destination_number"]
    spell = s.spellings("billing", source, {"files": look.unindexed or files[:1]}, {kind: columns},
                        indexed=look.spellings, hash_source=bool(look.unindexed))
    # One narrow read: an equality on an identifier column as stored is a filter inside the Parquet reader, which
    # decodes the other columns only where it holds (a row group without the value is skipped).
    spelled = _values(s, spell, kind, "raw")
    if not spelled:
        return
    params: dict = {"files": look.parts}
    reads = []
    for c in columns:
        own = "true" if kind == "imsi" else f"CAST({SERVED_NUMBER} AS VARCHAR) = CAST({c} AS VARCHAR)"
        imsi = c if kind == "imsi" else imsis[0]
        for value in spelled:
            params[f"v{len(params)}"] = value
            reads.append(f"SELECT direction, origin_number, destination_number, {imsi} AS imsi FROM"
                         f" read_parquet($files, union_by_name = true, hive_partitioning = false)"
                         f" WHERE CAST({c} AS VARCHAR) = $v{len(params) - 1} AND {own} AND {imsi_is_served_sql()}")
    execute(s.con, f"""CREATE OR REPLACE TEMP TABLE own_rows AS
        SELECT '{SERVED}' AS {ROLE}, * FROM ({' UNION ALL '.join(reads)})""",
            params)
    s.link("own_rows", f"CAST({SERVED_NUMBER} AS VARCHAR)", "imsi")
    s.con.execute("DROP TABLE own_rows")


@finder("billing")
def find_billing(s: Search) -> ZoneFound:
    files = [str(p) for p in part_files(s.lake, "billing")]
    _link_own_rows(s, files)     # the subject's other identifier first, then one search for both
    return _cdr_rows(s, "billing", files, "event_date, start_time", ("event_date",))


def _by_subscriber_number(s: Search, zone: str, files: list[str], note: str) -> ZoneFound:
    """Rows of a zone whose `subscriber_number` (E.164) is the subject's: the whole row is theirs."""
    if not files:
        return _nothing(zone, "no files in the zone")
    source = _source(files)
    if SUBSCRIBER_NUMBER not in _present(s.con, source, {"files": files}):
        return _nothing(zone, f"the zone's files have no {SUBSCRIBER_NUMBER} column")
    look = s.candidates(zone, files, spellings=True)      # invoices have an index; the consent register none
    spell = s.spellings(zone, source, {"files": look.unindexed or files[:1]},
                        {"msisdn": [SUBSCRIBER_NUMBER]} if look.parts else {},
                        indexed=look.spellings, hash_source=bool(look.unindexed))
    rows = _pinpointed(s, zone, look.parts or files[:1],
                       {SUBSCRIBER_NUMBER: _values(s, spell, "msisdn", "raw")} if look.parts else {}, files)
    return _store(s, zone, f"SELECT * FROM {rows} WHERE {SUBSCRIBER_NUMBER} IN"
                           f" (SELECT raw FROM {spell} WHERE kind = 'msisdn')", {}, note)


@finder("invoices")
def find_invoices(s: Search) -> ZoneFound:
    return _by_subscriber_number(s, "invoices", [str(p) for p in part_files(s.lake, "invoices")],
                                 "the subscriber's invoices and their payment state, one row per payments extract")


@finder("analytics")
def find_analytics(s: Search) -> ZoneFound:
    """Pseudonymized rows, matched under the key each was made with; other-party rows without the served
    subscriber's tokens and generalized identifiers."""
    files = [str(p) for p in part_files(s.lake, "analytics")]
    if not files:
        return _nothing("analytics", "no files in the zone")
    scan = s.candidates("analytics", files).parts
    params = {"files": scan or files[:1]}      # none may hold the subject: columns only, no row read
    source = _source(files)
    present = _columns(s.con, source, params)
    present_set = set(present)
    tokenized = {f.column for f in s.policy.fields if f.analytics == "tokenize"}
    numbers = [c for c in s.columns("msisdn", present_set) if c in tokenized]
    imsis = [c for c in s.columns("imsi", present_set) if c in tokenized]
    if KEY_ID_COLUMN not in present_set or not (numbers or imsis):
        return _nothing("analytics", "the zone's files hold no tokens")
    own = {c: f"({KEY_ID_COLUMN}, {c}) IN {s.tokens_of('msisdn')}" for c in numbers}
    cdr = {"direction", "origin_number", "destination_number"} <= present_set
    # As in billing (`_cdr_rows`): a forwarded leg with their IMSI is theirs only if it is served to their number.
    served = [f"(({KEY_ID_COLUMN}, {c}) IN {s.tokens_of('imsi')} AND {imsi_is_served_sql() if cdr else 'true'})"
              for c in imsis]
    own_imsi = {c: f"coalesce(({KEY_ID_COLUMN}, {c}) IN {s.tokens_of('imsi')}, false)" for c in imsis}
    own |= own_imsi
    if cdr:
        served.insert(0, f"({KEY_ID_COLUMN}, {SERVED_NUMBER}) IN {s.tokens_of('msisdn')}")
    made = {t.column: t.output_column for t in treatments(s.policy)}
    keeps = {made[c] for c in OTHER_PARTY_KEEPS if c in made}
    sim = {made[c] for c in SIM_COLUMNS if made.get(c)} & present_set
    select = _other_party_select(present, {*keeps, "event_date", KEY_ID_COLUMN} & present_set, own, sim,
                                 _sim_theirs(cdr, list(own_imsi.values())))
    order = ", ".join(c for c in ("event_date", "event_hour") if c in present_set) or KEY_ID_COLUMN
    # Only the rows holding one of the subject's tokens are read (a superset: the key and the role decide each).
    tokens = {kind: _values(s, "subject_tokens", kind, "token") for kind in SUBJECT_KINDS}
    rows = _pinpointed(s, "analytics", scan or files[:1],
                       {**{c: tokens["msisdn"] for c in numbers}, **{c: tokens["imsi"] for c in imsis}} if scan else {})
    return _store(s, "analytics", f"""
        SELECT {select} FROM (SELECT *, {_role(served, list(own.values()))} AS {ROLE} FROM {rows}
                              WHERE {KEY_ID_COLUMN} IN (SELECT key_id FROM subject_tokens))
        WHERE {ROLE} IS NOT NULL ORDER BY {order}""", {},
                  "pseudonymized and generalized rows (tokens instead of numbers), made for further use")


@finder("roaming")
def find_roaming(s: Search) -> ZoneFound:
    """Monthly roaming aggregates and fair-use window statuses of the subscriber's IMSI token."""
    files = part_files(s.lake, "roaming")
    if not files:
        return _nothing("roaming", "no files in the zone")
    groups = {"month": [str(p) for p in files if p.parent.parent.name != STATUS_DIR],
              "window_status": [str(p) for p in files if p.parent.parent.name == STATUS_DIR]}
    params = {name: group for name, group in groups.items() if group}
    # The month is a column of the files as well as their folder's name: read without hive columns.
    source = "(" + " UNION ALL BY NAME ".join(
        f"SELECT '{name}' AS roaming_record, * FROM read_parquet(${name}, union_by_name = true)"
        for name in params) + ")"
    present = _present(s.con, source, params)
    order = ", ".join(c for c in ("roaming_record", "month", "as_of_month") if c in present)
    return _store(s, "roaming", f"""
        SELECT * FROM {source} WHERE ({KEY_ID_COLUMN}, {ROAMING_TOKEN}) IN {s.tokens_of(ROAMING_TOKEN_KIND)}
        ORDER BY {order}""", params,
                  "per month: days at home and roaming, and consumption; per fair-use window: the assessment")


@finder("marketing")
def find_marketing(s: Search) -> ZoneFound:
    """Consent-based profiles (docs/design.md §11) under the subscriber's marketing token: a token of their number
    made with each held key's purpose key (`privacy.purpose`), which no analytics token can be turned into. The
    number is the one the subject's own billing and invoice rows were found by (their raw spellings, never kept
    beyond the search)."""
    folder = zone_folder(s.lake, MARKETING)
    if not folder.is_dir():
        return ZoneFound(MARKETING, 0, ABSENT, "this lake has no marketing zone", None)
    files = sorted(str(p) for p in folder.rglob("*.parquet") if not any(
        part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        return _nothing(MARKETING, "no files in the zone")
    numbers = [f"SELECT raw FROM {t} WHERE kind = 'msisdn'" for t in s.spelling_tables]
    s.con.execute("CREATE OR REPLACE TEMP TABLE marketing_tokens (key_id VARCHAR, token BLOB)")
    if numbers:
        execute(s.con, f"""CREATE OR REPLACE TEMP TABLE subject_numbers AS
            SELECT DISTINCT {normalize_sql('raw', 'msisdn')} AS norm FROM ({' UNION '.join(numbers)})""",
                numbering_params(s.policy.operator))
        for key in marketing_keyring(s.keyring, s.policy).keys:
            hmac_expr, hmac_params = token_sql(key, "'msisdn'", "norm")
            execute(s.con, f"INSERT INTO marketing_tokens SELECT $key_id, {hmac_expr} FROM subject_numbers",
                    {"key_id": key.key_id, **hmac_params})
    return _store(s, MARKETING, f"""SELECT * FROM {_source(files)}
        WHERE ({KEY_ID_COLUMN}, {MARKETING_TOKEN}) IN (SELECT key_id, token FROM marketing_tokens)
        ORDER BY event_date""", {"files": files},
                  "profiles of the subscriber's own use, made on their consent to profiling")


@finder("quarantine")
def find_quarantine(s: Search) -> ZoneFound:
    # Rejected rows as delivered, the values that failed a rule blanked; the reason and night are the row's own.
    return _cdr_rows(s, "quarantine", [str(p) for p in part_files(s.lake, "quarantine")], "night, source_row",
                     ("night", "reason"))


@finder("consents")
def find_consents(s: Search) -> ZoneFound:
    folder = zone_folder(s.lake, "consents")
    if not folder.is_dir():
        return ZoneFound("consents", 0, ABSENT, "this lake has no consents zone", None)
    files = sorted(str(p) for p in folder.rglob("*.parquet") if not any(
        part.startswith(".") for part in p.relative_to(folder).parts))
    return _by_subscriber_number(s, "consents", files, "the consents the subscriber gave or withdrew, by purpose")


@finder("aggregates")
def find_aggregates(s: Search) -> ZoneFound:
    anonymous = next((a for a in s.policy.anonymous_datasets if a.dataset == "aggregates"), None)
    why = anonymous.clause if anonymous else "k-anonymous counts and sums"
    return ZoneFound("aggregates", 0, ANONYMOUS, f"anonymous: no row is about one person ({why})", None)


ZONES = tuple(FINDERS)


def find_subject(con, lake: Lake, policy: Policy, keyring: KeyRing, subject: Subject) -> tuple[ZoneFound, ...]:
    """Search every zone for the subject, leaving each zone's rows as `found_<zone>` in `con`."""
    search = Search(con, lake, policy, keyring, subject)
    return tuple(FINDERS[zone](search) for zone in ZONES)


@dataclass(frozen=True)
class SubjectHit:
    """Analytics rows of one subject under one key id, day and column (counts, no values)."""

    key_id: str
    event_date: str
    column: str
    rows: int


def analytics_hits(lake: Lake, policy: Policy, keyring: KeyRing, subject: Subject) -> list[SubjectHit]:
    """Where the subject's tokens appear in analytics, per key id, day and column (`cdr-audit lookup`)."""
    con = connect()
    try:
        found = find_analytics(Search(con, lake, policy, keyring, subject))
        if not found.rows:
            return []
        present = {d[0] for d in con.execute(f"SELECT * FROM {found.table} LIMIT 0").description}
        union = " UNION ALL ".join(
            f"SELECT {KEY_ID_COLUMN}, CAST(event_date AS VARCHAR), '{c}' FROM {found.table}"
            f" WHERE ({KEY_ID_COLUMN}, {c}) IN (SELECT key_id, token FROM subject_tokens WHERE kind = '{f.identifier}')"
            for f in policy.fields if (c := f.column) in present and f.identifier == subject.kind)
        return [SubjectHit(k, d, c, n) for k, d, c, n in con.execute(
            f"SELECT *, count(*) FROM ({union}) GROUP BY ALL ORDER BY 2, 3, 1").fetchall()]
    finally:
        con.close()
