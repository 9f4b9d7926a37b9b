"""Subject index: which part files of a zone may hold a subject, from the subject's tokens alone (policy §6.1,
§6.5; docs/design.md §4, §12).

Beside each billing, analytics and invoice part file (`event_date=D/part-<sha>.parquet`) the pipeline commits
`part-<sha>.tokens` (`transforms.lake.partitions.index_path`): a small Parquet file of the DISTINCT tokens of the
identifiers the part holds (every msisdn and IMSI column, an invoice's subscriber number), with the key id they were
made with, sorted by token in small row groups. A subject search reads the indexes first — footer statistics skip
every row group but the one a token would be in — and scans only the parts whose index holds one of the subject's
tokens.

* A billing or invoice index also maps each token to the raw spellings of it that its part holds (`raw`): a search
  then matches the part's rows by those spellings without normalizing and hashing every distinct spelling of the
  zone (the cost of a search without the index). The zone holds those spellings already, in the same folder with
  the same mode, and the index goes with its part; an analytics index has tokens only (the analytics zone holds
  no raw identifier).
* The billing and analytics tokens are the analytics step's own (`transforms.privacy.analytics`): the analytics
  part of a day is made from the billing part of that day, so its token columns are the billing part's
  identifiers, hashed once. An invoice part is hashed under the current key when the night commits it
  (`index_committed`).
* An index holds tokens, which are pseudonymous personal data: it sits in its part's folder, with the zone's
  mode (committed as the parts are), and goes with its part (a failed file withdrawn, a part replaced or removed).
* An index is written after its part and removed before its part is replaced or rewritten, so an index that
  exists was made from its part's present rows. A part the retention sweep or an erasure rewrites
  (`transforms.retention.rewrite`) gets its index back, keeping only the rows whose identifier the rewritten part
  still holds (`kept_index`: by spelling or by token, no key needed), so no index lists an identifier only the
  removed rows held, and the sweep's proof checks it. The search still matches the rows it reads, so a part whose
  index lists a token it no longer holds costs a read and nothing else.
* A part without an index (a lake written before the index, a crash between a part and its index), or whose index
  was made with a key no longer held, is scanned as before (`candidate_parts`); `build_missing` writes the missing
  indexes of a lake (`cdr-audit subject index`).
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from transforms.lake import Lake
from transforms.lake.commit import commit_file
from transforms.lake.connection import columns_of, connect, execute
from transforms.lake.partitions import index_path, part_files
from transforms.policy import Policy
from transforms.privacy.keys import KeyRing
from transforms.privacy.numbers import normalize_sql, numbering_params
from transforms.privacy.tokens import KEY_ID_COLUMN, token_sql

# Zones whose parts get an index: the bulk of a lake (billing and analytics: one source file's rows of one day) and
# the invoices (one payments extract's rows of an invoice year: ~0.6M rows a 10M-row night, ~1 s to hash whole).
# Quarantine and the consent register are searched without one: at 10M rows a night they hold a few thousand rows
# (benchmarks/README.md, the subject export).
INDEXED_ZONES = ("billing", "analytics", "invoices")
INDEX_KINDS = ("msisdn", "imsi")        # the identifiers a subject is searched by (transforms.subjects.subject)
# The payments extract's subscriber column (transforms.steps.payments): a number in E.164.
SUBSCRIBER_NUMBER = "subscriber_number"
# ~1M distinct tokens in a 10M-row night's day part: 8k-token row groups let a lookup read ~130 KB of it.
_ROW_GROUP = 8192


def identifier_kinds(policy: Policy, present: set[str] | list[str]) -> dict[str, str]:
    """The columns of a part the index covers, with their kind: every msisdn and IMSI column it has, in policy
    order, and an invoice's subscriber number."""
    kinds = {f.column: f.identifier for f in policy.fields if f.identifier in INDEX_KINDS and f.column in present}
    if SUBSCRIBER_NUMBER in present:
        kinds.setdefault(SUBSCRIBER_NUMBER, "msisdn")
    return kinds


def indexed_columns(policy: Policy, present: set[str] | list[str]) -> list[str]:
    """The columns of a part the index covers (`identifier_kinds`)."""
    return list(identifier_kinds(policy, present))


def write_index_file(con, dst: Path, tokens_sql: str, params: dict, *, raw: bool) -> None:
    """Write to `dst` the distinct non-NULL `token` values (BLOB) and their `hmac_key_id` that `tokens_sql`
    selects (binding `params`), with their `raw` spelling when `raw`, sorted by token."""
    cols = f"token, {KEY_ID_COLUMN}" + (", raw" if raw else "")
    execute(con, f"""COPY (SELECT DISTINCT {cols} FROM ({tokens_sql}) WHERE token IS NOT NULL ORDER BY ALL)
                     TO $index_dst (FORMAT parquet, ROW_GROUP_SIZE {_ROW_GROUP})""", {**params, "index_dst": str(dst)})


def commit_index(staged: Path, part: Path) -> Path:
    """Commit a copy of the index written to `staged` as the index of the committed part file `part`: the
    folder's (the zone's) mode, in one rename."""
    final = index_path(part)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex}")
    try:
        shutil.copyfile(staged, tmp)
        commit_file(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def write_index(con, part: Path, tokens_sql: str, params: dict, *, raw: bool = False) -> Path:
    """Commit the index of the committed part file `part` (see `write_index_file`)."""
    final = index_path(part)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex}")
    try:
        write_index_file(con, tmp, tokens_sql, params, raw=raw)
        commit_file(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def day_index_columns(con, day_view: str, policy: Policy, tokenized: tuple[str, ...]) -> tuple[int, ...] | None:
    """Positions in `tokenized` (a token plan's columns, `transforms.privacy.tokens.plan_tokens`) of the identifier
    columns the index of a day's billing rows `day_view` lists; None when some identifier column of the day was not
    tokenized (its part is left without an index: an index must list every identifier of its part)."""
    columns = indexed_columns(policy, columns_of_relation(con, day_view))
    if not columns or set(columns) - set(tokenized):
        return None
    return tuple(tokenized.index(c) for c in columns)


def stage_day_index(con, pairs: str, key_id: str, dst_dir: Path, zone: str) -> None:
    """One of the analytics step's indexes of a day, written to `dst_dir` as `<zone>.tokens` (`billing` with the
    raw spellings, `analytics` tokens only) from `pairs` (a relation the step built, never input text: token, raw):
    the spellings the day's rows hold with their tokens, taken from the token lookups the step made for those rows
    (`day_index_columns`' columns only); no identifier is hashed again, no row read again."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    raw = zone == "billing"
    write_index_file(con, dst_dir / f"{zone}.tokens",
                     f"SELECT token, $key_id AS {KEY_ID_COLUMN}{', raw' if raw else ''} FROM {pairs}",
                     {"key_id": key_id}, raw=raw)


def kept_index(con, part: Path, rewritten: Path, policy: Policy, dst: Path) -> Path | None:
    """Write to `dst` the index `part` must have once `rewritten` (the part without some of its rows: the retention
    sweep, an erasure) replaces it, and return `dst`; None when the part has no index.

    The present index's rows whose identifier the rewritten part still holds, by its spelling where the index
    lists spellings (billing: `raw`), else by its (token, key id) pair (analytics): no key is needed, nothing is
    hashed, and no token of an identifier only the removed rows held stays listed (docs/design.md §12)."""
    old = index_path(part)
    if not old.exists():
        return None
    try:
        raw = "raw" in columns_of(con, old)
    except duckdb.Error:
        return None          # an unreadable index is dropped with its part's old rows: the part is read whole
    columns = indexed_columns(policy, columns_of(con, rewritten))
    if raw:
        held = " UNION ALL ".join(f"SELECT CAST({c} AS VARCHAR) AS raw FROM read_parquet($rewritten,"
                                  f" hive_partitioning = false)" for c in columns) or "SELECT NULL AS raw"
        kept = f"SELECT * FROM read_parquet($old_index) WHERE raw IN (SELECT raw FROM ({held}))"
    else:
        held = " UNION ALL ".join(f"SELECT {c} AS token, {KEY_ID_COLUMN} FROM read_parquet($rewritten,"
                                  f" hive_partitioning = false)" for c in columns) or \
            f"SELECT NULL::BLOB AS token, NULL AS {KEY_ID_COLUMN}"
        kept = (f"SELECT * FROM read_parquet($old_index) WHERE (token, {KEY_ID_COLUMN}) IN"
                f" (SELECT token, {KEY_ID_COLUMN} FROM ({held}))")
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_index_file(con, dst, kept, {"old_index": str(old), "rewritten": str(rewritten)}, raw=raw)
    return dst


def columns_of_relation(con, relation: str) -> list[str]:
    return [d[0] for d in con.execute(f"SELECT * FROM {relation} LIMIT 0").description]


def tokens_of_part(columns: list[str]) -> str:
    """SQL: the (token, key id) pairs of a tokenized part file `$part` (an analytics part: its own key id)."""
    return " UNION ALL ".join(f"SELECT {c} AS token, {KEY_ID_COLUMN} FROM read_parquet($part)" for c in columns)


def index_tokenized(con, part: Path, policy: Policy) -> Path | None:
    """Index an analytics part from its own token columns (no hashing); None when it has none."""
    present = columns_of(con, part)
    columns = indexed_columns(policy, present)
    if KEY_ID_COLUMN not in present or not columns:
        return None
    return write_index(con, part, tokens_of_part(columns), {"part": str(part)})


def index_raw(con, part: Path, policy: Policy, keyring: KeyRing) -> Path | None:
    """Index a part of raw identifiers (billing, invoices) under the current key: its distinct spellings normalized and
    hashed in DuckDB (`token_sql`), as the analytics step does, each token with its spellings. None when it has
    no identifier column."""
    kinds = identifier_kinds(policy, columns_of(con, part))
    columns = list(kinds)
    if not columns:
        return None
    spellings = " UNION ALL ".join(
        f"SELECT '{kinds[c]}' AS kind, CAST({c} AS VARCHAR) AS raw FROM read_parquet($part, hive_partitioning = false)"
        f" WHERE {c} IS NOT NULL" for c in columns)
    norm = " ".join(f"WHEN '{k}' THEN {normalize_sql('raw', k)}" for k in sorted({kinds[c] for c in columns}))
    key = keyring.current
    hmac_expr, hmac_params = token_sql(key, "kind", "norm")
    return write_index(con, part, f"""
        SELECT {hmac_expr} AS token, $key_id AS {KEY_ID_COLUMN}, raw
        FROM (SELECT kind, raw, NULLIF(CASE kind {norm} END, '') AS norm
              FROM (SELECT DISTINCT kind, raw FROM ({spellings})))
        WHERE norm IS NOT NULL""", {"part": str(part), "key_id": key.key_id, **hmac_params,
                                    **numbering_params(policy.operator)}, raw=True)


@dataclass(frozen=True)
class IndexLookup:
    """What the indexes of a zone's parts say of one subject."""

    parts: list[str]          # the parts to scan: every part without a usable index, and those listing the subject
    unindexed: list[str]      # of those, the parts without a usable index (their spellings must be hashed)
    spellings: str | None     # temp table (kind, raw): the subject's spellings the usable indexes list, if any


def lookup(con, parts: list[str], keys_held: set[str], subject_tokens: str = "subject_tokens",
           spellings: str | None = None) -> IndexLookup:
    """Of a zone's part files, those that may hold a subject whose tokens are the temp table `subject_tokens`
    (kind, key_id, token): every part without a usable index, and every part whose index lists one of its
    (key id, token) pairs; with `spellings` (a temp table name), the raw spellings those indexes map the
    subject's tokens to (billing indexes) are left in that table.

    An index is usable when its key is held (`keys_held`) and the subject has a token under it: a subject
    recorded before a key was made, or an index of a key since dropped, cannot be matched, and its part is
    scanned (and matched by its spellings under the keys held that the subject has, as without an index: a
    search finds the same rows with or without the index).
    """
    if spellings:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {spellings} (kind VARCHAR, raw VARCHAR)")
    indexed = {str(index_path(Path(p))): p for p in parts if index_path(Path(p)).exists()}
    if not indexed:
        return IndexLookup(list(parts), list(parts), spellings)
    held = keys_held & {k for (k,) in con.execute(f"SELECT DISTINCT key_id FROM {subject_tokens}").fetchall()}
    key_of = {f: (lo, hi) for f, lo, hi in con.execute(
        f"""SELECT file_name, min(stats_min_value), max(stats_max_value) FROM parquet_metadata($files)
            WHERE path_in_schema = '{KEY_ID_COLUMN}' GROUP BY file_name""", {"files": sorted(indexed)}).fetchall()}
    # An index with no row (a part whose identifiers are all NULL) has no statistics: it lists nothing.
    usable = {f for f in indexed if f not in key_of or (key_of[f][0] == key_of[f][1] and key_of[f][0] in held)}
    if spellings:
        # A part is matched by the spellings its index lists: an index without them cannot stand for its part.
        usable &= {f for (f,) in con.execute("SELECT DISTINCT file_name FROM parquet_schema($files) WHERE name = 'raw'",
                                             {"files": sorted(indexed)}).fetchall()}
    pairs = con.execute(f"SELECT DISTINCT kind, key_id, token FROM {subject_tokens} ORDER BY ALL").fetchall()
    files = sorted(f for f in usable if f in key_of)
    hits: set[str] = set()
    if files and pairs:
        # One equality per token: a row group is read only when the token lies within its min/max (an IN list
        # of random tokens would span every row group).
        raw = "raw" if spellings else "NULL"
        params: dict = {"index_files": files}
        branches = []
        for i, (kind, key_id, tok) in enumerate(pairs):
            params[f"k{i}"], params[f"t{i}"] = key_id, tok
            branches.append(f"SELECT filename, '{kind}' AS kind, {raw} AS raw FROM read_parquet($index_files,"
                            f" filename = true, union_by_name = true) WHERE token = $t{i} AND {KEY_ID_COLUMN} = $k{i}")
        execute(con, f"CREATE OR REPLACE TEMP TABLE index_hits AS {' UNION '.join(branches)}", params)
        hits = {f for (f,) in con.execute("SELECT DISTINCT filename FROM index_hits").fetchall()}
        if spellings:
            con.execute(f"INSERT INTO {spellings} SELECT DISTINCT kind, raw FROM index_hits WHERE raw IS NOT NULL")
        con.execute("DROP TABLE index_hits")
    unindexed = [p for p in parts if str(index_path(Path(p))) not in usable]
    return IndexLookup([p for p in parts if str(index_path(Path(p))) not in usable or str(index_path(Path(p))) in hits],
                       unindexed, spellings)


def candidate_parts(con, parts: list[str], keys_held: set[str], subject_tokens: str = "subject_tokens") -> list[str]:
    """The parts `lookup` says to scan."""
    return lookup(con, parts, keys_held, subject_tokens).parts


@dataclass(frozen=True)
class IndexBuild:
    """What `build_missing` wrote: indexes per zone, and parts it could not index (no identifier column)."""

    written: dict[str, int]
    skipped: int


def index_committed(lake: Lake, files: tuple[str, ...], policy: Policy, keyring: KeyRing, work_dir: Path) -> int:
    """Index the parts of raw identifiers a step has just committed (`files`, relative to the lake root; those of
    zones without an index are left), each after its part; returns how many were written."""
    parts = [lake.root / f for f in files if Path(f).parts[0] in INDEXED_ZONES]
    if not parts:
        return 0
    con = connect(work_dir / "tmp")
    try:
        return sum(index_raw(con, part, policy, keyring) is not None for part in parts)
    finally:
        con.close()


def build_missing(con, lake: Lake, policy: Policy, keyring: KeyRing) -> IndexBuild:
    """Write the index of every part of an indexed zone that has none (a lake from before the index, a part whose
    index a crash left unwritten). Analytics parts are indexed from their own tokens; billing and invoice parts
    are hashed under the current key."""
    written, skipped = {}, 0
    for zone in INDEXED_ZONES:
        written[zone] = 0
        for part in part_files(lake, zone):
            if index_path(part).exists():
                continue
            made = index_tokenized(con, part, policy) if zone == "analytics" else index_raw(con, part, policy, keyring)
            if made:
                written[zone] += 1
            else:
                skipped += 1
    return IndexBuild(written, skipped)
