"""Analytics zone: a file's billing rows, pseudonymized and generalized (policy §3.3; docs/design.md §4).

Further use of traffic data is allowed only pseudonymized or aggregated. For each file whose rows reached
billing: generalize (`generalize`: hour, TAC, area, drops), then replace direct identifiers with keyed
tokens (`tokens`), then commit to `analytics/event_date=…/part-<sha>.parquet`. Every file there carries
the HMAC key id it was made with. Each analytics part's distinct tokens are then committed as the subject index
of that part and of the billing part it was made from (`subject_index`): the same identifiers, hashed once.

A day's rows are tokenized in pieces of at most `ROWS_PER_PIECE` rows (ranges of their source rows), each piece with
the token lookup of its own identifiers: the lookup's joins hold every distinct identifier they may meet, so a
lookup over a whole 13M-row file needed DuckDB's whole memory, and more than 600 MB of it (benchmarks/README.md,
"Memory as the night grows"). A piece's memory does not grow with the file.

The lookups cover every row, a restricted subject's too (policy §6.4; docs/design.md §12): the restricted subjects'
spellings are matched among them (no identifier hashed twice), their rows are then left out and their tokens
blanked, and the billing part's index still lists every identifier its part holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transforms.lake import Lake
from transforms.lake.commit import remove_tree
from transforms.lake.connection import connect, execute, remove_database
from transforms.lake.partitions import PART_DICTIONARY_ENTRIES, ZoneWrite, commit_partitions
from transforms.policy import Policy
from transforms.privacy.generalize import ColumnTreatment, define_generalized, treatments
from transforms.privacy.keys import KeyRing
from transforms.privacy.restricted import KnownSpellings, RestrictedFilter
from transforms.privacy.subject_index import commit_index, day_index_columns, stage_day_index
from transforms.privacy.tokens import TokenPlan, identifiers_counted, lookup_rows, plan_tokens, tokenized_columns


@dataclass(frozen=True)
class AnalyticsResult:
    """What the analytics step did with one file's billing rows."""

    rows: int
    key_id: str
    tokenized: dict[str, int]              # column -> distinct values tokenized
    treatments: tuple[ColumnTreatment, ...]
    zone: ZoneWrite
    rows_restricted: int = 0               # rows left out: their served subscriber's processing is restricted
    cells_blanked: int = 0                 # cells written NULL: a restricted subject as someone else's other party


ROWS_PER_PIECE = 5_000_000     # a day's rows tokenized at a time: the largest day of a 10M-row night is one piece


def build_analytics(billing_files: list[str], lake: Lake, policy: Policy, keyring: KeyRing, work_dir: Path, *,
                    source_sha256: str, skip: RestrictedFilter | None = None) -> AnalyticsResult:
    """Pseudonymize and generalize one file's billing rows into the analytics zone.

    Per day and piece: generalization is a view, tokens are looked up for its distinct identifiers, and
    each day's rows are written once, straight into the zone's layout.
    """
    out, indexes = work_dir / "analytics_out", work_dir / "analytics_index"
    remove_tree(out)
    remove_tree(indexes)
    out.mkdir(parents=True)
    by_day: dict[str, list[str]] = {}
    for f in billing_files:   # billing/event_date=D/part-….parquet: the folder is the day
        by_day.setdefault(Path(f).parent.name, []).append(f)
    # A work database file, not memory: the token lookups of the pieces are kept compressed
    # there, and DuckDB may evict them to it rather than fail (`plan_tokens`). The work zone is its owner's only.
    db = work_dir / "analytics.duckdb"
    remove_database(db)
    con = connect(work_dir / "tmp", str(db))
    # Row order means nothing in analytics; keeping it through the token joins only costs memory.
    con.execute("SET preserve_insertion_order = false")
    try:
        define_generalized(con, billing_files, policy)
        targets = tokenized_columns(con, "generalized_billing", policy)
        key_id = keyring.current.key_id
        restricting = skip is not None and bool(skip.restricted.of(skip.zone))
        # 1. Each day's pieces, each with the token lookup of all its rows — a restricted subject's too: their rows
        #    stay in billing, and the billing part's index must list every identifier the part holds.
        days: list[tuple[str, list[str], list[_Piece]]] = []
        lookups: list[str] = []       # every piece's token lookup, kept to the end: the distinct counts read them all
        for i, (folder, files) in enumerate(sorted(by_day.items())):
            # Each day reads its own files: a filter on event_date instead makes DuckDB expect ~1 row
            # and hash-build the joins on the big side (out of memory at 4.5M rows).
            define_generalized(con, files, policy, view=f"day_{i}")
            ranges = _pieces(con, f"day_{i}_billing")
            pieces = []
            for k, (low, high) in enumerate(ranges):
                # A piece's own rows: the day's view, cut to the range (the whole day when it is one piece).
                view, lookup, outside = f"day_{i}", f"tokens_{i}_{k}", "false"
                if len(ranges) > 1:
                    view, outside = f"day_{i}_{k}", f"NOT (source_row >= {low} AND source_row < {high})"
                    define_generalized(con, files, policy, view=view, leave_out=outside)
                pieces.append(_Piece(view, lookup, outside, plan_tokens(con, f"{view}_billing", policy, keyring,
                                                                        table=lookup, counted=restricting)))
                lookups.append(lookup)
            days.append((folder, files, pieces))
        # 2. Restricted subjects (policy §6.4; docs/design.md §12): their rows never reach the zone, and where they
        #    are the other party of someone else's row, their token does not either. Their spellings are found among
        #    the lookups' (hashed once), not by hashing the file's identifiers again.
        numbers = tuple(c for c in targets if policy.field(c).identifier == "msisdn")
        left_out = "false"
        if skip:
            known = KnownSpellings(_spellings(lookups, targets, policy), key_id)
            left_out = skip.predicate(con, "generalized_billing", {}, policy, keyring, numbers=numbers, known=known)
        rows = restricted = blanked = 0
        only_left_out = None
        if left_out != "false":
            only_left_out, restricted, blanked = _left_out_and_blanked(con, lookups, targets, policy, left_out)
        # 3. Each day's part: the billing index from every spelling, the restricted subjects' tokens blanked, the
        #    restricted rows left out, one COPY, then the analytics index from the tokens the part may hold.
        for i, (folder, files, pieces) in enumerate(days):
            day_lookups = [p.lookup for p in pieces]
            # One billing part a day: a part's index lists its own rows' identifiers only.
            indexed = day_index_columns(con, f"day_{i}", policy, targets) if len(files) == 1 else None
            if indexed:
                stage_day_index(con, _index_pairs(day_lookups, indexed), key_id, indexes / folder, "billing")
            selects, params = [], {}
            for piece in pieces:
                tokens = piece.tokens
                if left_out != "false":
                    _blank_restricted_parties(con, tokens, policy, piece.lookup)
                    define_generalized(con, files, policy, view=piece.view,
                                       leave_out=f"({left_out}) OR {piece.outside}")
                selects.append(f"SELECT {tokens.select(exclude=('event_date',))} FROM {piece.view} t{tokens.joins}")
                params = tokens.params
            # One statement writes the day's part from every piece, each joined with its own lookup: DuckDB works
            # through them one by one within its memory (a 13M-row day in 500 MB), and each row is written once.
            dst = out / folder / "part.parquet"
            dst.parent.mkdir()
            rows += _write_part(con, " UNION ALL ".join(selects), params, dst)
            if indexed:
                # Blanked tokens are NULL (not listed), and the spellings only the left-out rows held are left out.
                stage_day_index(con, _index_pairs(day_lookups, indexed, only_left_out), key_id, indexes / folder,
                                "analytics")
        tokenized = identifiers_counted(con, lookups, targets, leave_out=only_left_out)
    finally:
        con.close()
        remove_database(db)
    zone = commit_partitions(out, lake, "analytics", source_sha256)
    remove_tree(out)
    # Each index after its part (`subject_index`): an index that exists was made from its part's rows.
    for rel in zone.files:
        staged = indexes / (lake.root / rel).parent.name
        if (staged / "analytics.tokens").exists():
            commit_index(staged / "analytics.tokens", lake.root / rel)
            commit_index(staged / "billing.tokens", Path(by_day[staged.name][0]))
    remove_tree(indexes)
    return AnalyticsResult(rows=rows, key_id=keyring.current.key_id, tokenized=tokenized,
                           treatments=treatments(policy), zone=zone, rows_restricted=restricted,
                           cells_blanked=blanked)


@dataclass(frozen=True)
class _Piece:
    """A range of a day's source rows tokenized at once: its views (`view`, `<view>_billing`), the SQL true for the
    day's rows outside it, its token lookup (a table of the work database) and plan."""

    view: str
    lookup: str
    outside: str
    tokens: TokenPlan


def _index_pairs(lookups: list[str], indexed: tuple[int, ...], leave_out: str | None = None) -> str:
    """(token, raw) of the index columns `indexed` in a day's `lookups`, without the spellings of the table
    `leave_out` (col, raw) if given."""
    where = f"col IN ({', '.join(map(str, indexed))})"
    if leave_out is not None:
        where += f" AND (col, raw) NOT IN (SELECT col, raw FROM {leave_out})"
    return f"(SELECT token, raw FROM ({lookup_rows(lookups)}) WHERE {where})"


def _spellings(lookups: list[str], targets: tuple[str, ...], policy: Policy) -> str:
    """The lookups' spellings with their kind (kind, raw, norm, token), for the restricted subjects' match."""
    kind = " ".join(f"WHEN {i} THEN '{policy.field(c).identifier}'" for i, c in enumerate(targets))
    return f"(SELECT CASE col {kind} END AS kind, raw, norm, token FROM ({lookup_rows(lookups)}))"


def _left_out_and_blanked(con, lookups: list[str], targets: tuple[str, ...], policy: Policy,
                          left_out: str) -> tuple[str, int, int]:
    """What a restriction takes out of the file, from one scan of it: the temp table (col, raw) of the spellings
    that only the left-out rows hold (a restricted subject's own, and parties only they dealt with), the number of
    those rows, and the cells of the rows that land holding a restricted subject's spelling (they are the other
    party of someone else's row; counts only, `_blank_restricted_parties` blanks them).

    The lookups list every spelling; the zone does not get the left-out rows' own, and the audit does not count
    them. A spelling is the left-out rows' only when they hold it as many times as the lookups counted it in the
    whole file.
    """
    spelled = "".join(f", CAST({c} AS VARCHAR) AS c{i}" for i, c in enumerate(targets))
    cells = " + ".join(f"coalesce(CAST({c} AS VARCHAR) IN (SELECT raw FROM restricted_raw WHERE kind ="
                       f" '{policy.field(c).identifier}'), false)::INT" for c in targets) or "0"
    # Only the rows either count needs: the few left out, and the landing rows holding a restricted spelling.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE restricted_rows AS
        SELECT * FROM (SELECT ({left_out}) AS left_out, {cells} AS cells{spelled} FROM generalized_billing)
        WHERE left_out OR cells > 0""")
    rows, blanked = con.execute("SELECT count(*) FILTER (WHERE left_out),"
                                " coalesce(sum(cells) FILTER (WHERE NOT left_out), 0) FROM restricted_rows").fetchone()
    con.execute("CREATE OR REPLACE TEMP TABLE only_left_out (col INTEGER, raw VARCHAR)")
    if targets:
        counts = lookup_rows(lookups, "col, raw, n")     # each piece's rows holding each spelling
        held = " UNION ALL ".join(f"SELECT {i} AS col, c{i} AS raw FROM restricted_rows WHERE left_out"
                                  for i in range(len(targets)))
        con.execute(f"""INSERT INTO only_left_out
            SELECT l.col, l.raw FROM (SELECT col, raw, count(*) AS n FROM ({held}) WHERE raw IS NOT NULL GROUP BY ALL) l
            JOIN (SELECT col, raw, sum(n) AS n FROM ({counts}) GROUP BY ALL) a USING (col, raw)
            WHERE l.n = a.n""")
    con.execute("DROP TABLE restricted_rows")
    return "only_left_out", rows, int(blanked)


def _pieces(con, day_rows: str) -> list[tuple[int, int]]:
    """Ranges [low, high) of source rows that cut the day's rows `day_rows` into pieces of about `ROWS_PER_PIECE`
    rows (the billing part is in source row order: each piece reads its own row groups)."""
    n, low, high = con.execute(f"SELECT count(*), min(source_row), max(source_row) FROM {day_rows}").fetchone()
    count = max(1, -(-n // ROWS_PER_PIECE))
    if count == 1:
        return [(low or 0, (high or 0) + 1)]
    span = high + 1 - low
    return [(low + span * k // count, low + span * (k + 1) // count) for k in range(count)]


def _write_part(con, select: str, params: dict, dst: Path) -> int:
    """Write the rows `select` gives as the day's part file `dst`; their number."""
    # LZ4 and v2 pages: the tokens do not compress, and zstd spent ~15% more time failing to.
    return execute(con, f"COPY ({select}) TO $dst (FORMAT parquet, COMPRESSION lz4_raw, PARQUET_VERSION V2,"
                        f" DICTIONARY_SIZE_LIMIT {PART_DICTIONARY_ENTRIES})",
                   {**params, "dst": str(dst)}).fetchone()[0]


def _blank_restricted_parties(con, tokens: TokenPlan, policy: Policy, lookup: str) -> None:
    """The restricted subjects' spellings' tokens in the lookup (the table `lookup`) become NULL, so every cell
    holding one is written NULL — no placeholder, for the reason a blanked erased subject is NULL (docs/design.md
    §12). Set-based: one update of the distinct spellings."""
    kinds = [(i, policy.field(c).identifier) for i, c in enumerate(tokens.targets)]
    if not kinds:
        return
    values = ", ".join(f"({i}, '{k}')" for i, k in kinds)
    con.execute(f"""UPDATE {lookup} SET token = NULL WHERE (col, raw) IN (
                        SELECT c.col, r.raw FROM restricted_raw r JOIN (VALUES {values}) c(col, kind) USING (kind))""")
