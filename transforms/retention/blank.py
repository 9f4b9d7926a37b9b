"""Blanking an erased subject where they are the other party of someone else's rows (policy §6.3, §6.6;
docs/design.md §12).

An erasure removes the subject's own rows (`rewrite`); the rows of other subscribers stay, since they are
those subscribers' records, but may no longer name the subject:

analytics   a tokenized column (the called, calling or redirected-to number; an IMSI) holding one of the
            subject's tokens under the row's key is set to NULL. NULL, not a placeholder token: a placeholder
            would be one more value shared by every blanked row, which groups them as "calls with an erased
            party" and is a token no key made; NULL is what a missing party already is in the zone.
marketing   a profile's named called parties (`called_parties_consented`) lose the subject's marketing token,
            and the subject is counted with the parties not named (`called_parties_other`): the erasure
            withdrew their every consent, and a party who has not consented is counted, never named, which is
            what the nightly rebuild of that day would write (docs/design.md §11). The row is not deleted: it
            is the other subscriber's profile, on their own consent.

Rows the subject is the served party of (their own, removed by the erasure unless a hold keeps them) and rows
an active legal hold keeps (on their own subscriber, or on the subject: `held` lists their (file, key)) are left
as they are. Every file is rewritten like a sweep's (temp file, fsync, rename), journaled first (`journal`:
intent with both digests, then done), so a killed answer is finished, not redone; the part's subject index goes
before its part changes (it lists the tokens before). The tokens only blanked cells held are written aside (the
evidence), and `prove_blanked` re-reads the file: none may remain in its values (list elements included), its
footer statistics or its raw bytes. Counted, never named: rows and cells blanked per file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from transforms.lake import Lake
from transforms.lake.commit import commit_file, sha256_file
from transforms.lake.connection import columns_of, execute
from transforms.lake.partitions import index_path, part_files
from transforms.marketing.schema import NAMED_PARTIES, SUBSCRIBER_TOKEN
from transforms.policy import Policy
from transforms.retention.catalog import RetentionError
from transforms.retention.journal import Journal, staged_rewrite
from transforms.retention.proof import Proof, found_in_bytes
from transforms.retention.rows import SERVED_NUMBER, subject_key
from transforms.privacy.subject_index import candidate_parts
from transforms.privacy.tokens import KEY_ID_COLUMN

BLANKED = "blanked"
# The marketing row's count of the called parties not named (docs/design.md §11).
OTHERS_COUNTED = "called_parties_other"


@dataclass(frozen=True)
class BlankJob:
    """One part file whose rows of other subscribers name the subject: rewritten with those cells blanked."""

    dataset: str                # analytics | marketing
    partition: str
    file: str                   # relative to the lake root
    rows: int                   # the file's rows, before and after: none is removed
    rows_blanked: int
    cells_blanked: int          # analytics: cells set NULL; marketing: named parties taken out of a list
    clause: str


@dataclass(frozen=True)
class _Shape:
    """Where a file's rows hold tokens, and which rows are the subject's own (SQL over one row)."""

    scalars: tuple[str, ...]    # token columns set NULL where they hold the subject
    lists: tuple[str, ...]      # token-list columns the subject's tokens are taken out of
    kept: tuple[str, ...]       # token columns never blanked (a marketing row's own subscriber)
    own: tuple[str, ...]        # SQL templates over `{subject}`: true when the row is the subject's own
    key: str                    # the row's subject key (`rows.subject_key`), as the sweep's plan has it

    def blankable(self, subject: str, held: str) -> str:
        """SQL: true for a row blanking may touch — someone else's, and no hold keeps it (binds `$file`)."""
        own = " OR ".join(o.format(subject=subject) for o in self.own) or "false"
        return (f"NOT coalesce({own}, false)"
                f" AND NOT coalesce({self.key} IN (SELECT key FROM {held} WHERE file = $file), false)")


def subject_list(con, tokens: str) -> tuple[str, dict]:
    """SQL of the subject's tokens under a row's key (a BLOB[]; `tokens` is a table (key_id, token)), and the
    parameters it binds: one list per key, bound, never written into the SQL."""
    pairs = con.execute(f"SELECT key_id, list(DISTINCT token ORDER BY token) FROM {tokens}"
                        " WHERE token IS NOT NULL GROUP BY key_id ORDER BY key_id").fetchall()
    if not pairs:
        return "CAST([] AS BLOB[])", {}
    whens = " ".join(f"WHEN $k{i} THEN CAST($t{i} AS BLOB[])" for i in range(len(pairs)))
    params = {f"{p}{i}": v for i, (k, t) in enumerate(pairs) for p, v in (("k", k), ("t", t))}
    return f"(CASE {KEY_ID_COLUMN} {whens} ELSE CAST([] AS BLOB[]) END)", params


def _shape(dataset: str, columns: list[str], policy: Policy) -> _Shape | None:
    present = set(columns)
    if KEY_ID_COLUMN not in present:
        return None
    if dataset == "analytics":
        scalars = tuple(c for c in policy.columns_treated("tokenize") if c in present)
        # The subject's own rows are those their number is the served party of: the erasure's keys (a row with
        # their IMSI but another's served number, a forwarded leg, is that other subscriber's, and blanked).
        own = ("list_contains({subject}, %s)" % SERVED_NUMBER,) if {"direction", "origin_number",
                                                                    "destination_number"} <= present else ()
        lists: tuple[str, ...] = ()
        kept: tuple[str, ...] = ()
    elif dataset == "marketing" and NAMED_PARTIES in present:
        scalars, lists, kept = (), (NAMED_PARTIES,), (SUBSCRIBER_TOKEN,)
        own = ("list_contains({subject}, %s)" % SUBSCRIBER_TOKEN,)
    else:
        return None
    return _Shape(scalars, lists, kept, own, subject_key(dataset, columns))


def _cells(shape: _Shape, subject: str, held: str) -> str:
    """SQL: the subject's cells in a row blanking may touch (list elements counted one by one)."""
    parts = [f"coalesce(list_contains({subject}, {c}), false)::INT" for c in shape.scalars]
    parts += [f"len(list_filter(coalesce({c}, []), lambda t: list_contains({subject}, t)))" for c in shape.lists]
    return f"CASE WHEN {shape.blankable(subject, held)} THEN {' + '.join(parts) or '0'} ELSE 0 END"


def plan_blanking(con, lake: Lake, policy: Policy, dataset: str, tokens: str, held: str, clause: str,
                  keys_held: set[str]) -> list[BlankJob]:
    """The files of `dataset` whose rows of other subscribers hold one of the subject's tokens (`tokens`: a table
    (key_id, token), under the key each row was made with). `held` is a table (file, key) of rows a hold keeps.
    Analytics parts whose subject index lists none of the tokens are not read (`privacy.subject_index`)."""
    files = [str(p) for p in part_files(lake, dataset)]
    if not files:
        return []
    subject, params = subject_list(con, tokens)
    if not params:
        return []
    if dataset == "analytics":      # `tokens` is the search's `subject_tokens` (kind, key_id, token)
        files = candidate_parts(con, files, keys_held, tokens)
    jobs = []
    for f in files:
        path = Path(f)
        shape = _shape(dataset, columns_of(con, path), policy)
        if shape is None:
            continue
        rel = str(path.relative_to(lake.root))
        rows, blanked, cells = execute(con, f"""
            SELECT count(*), count(*) FILTER (WHERE n > 0), coalesce(sum(n), 0)
            FROM (SELECT {_cells(shape, subject, held)} AS n FROM read_parquet($path, hive_partitioning = false))""",
                                       {**params, "path": f, "file": rel}).fetchone()
        if cells:
            jobs.append(BlankJob(dataset=dataset, partition=path.parent.name, file=rel, rows=int(rows),
                                 rows_blanked=int(blanked), cells_blanked=int(cells), clause=clause))
    return jobs


def blank(con, lake: Lake, policy: Policy, job: BlankJob, tokens: str, held: str, journal: Journal,
          evidence_dir: Path) -> dict:
    """Rewrite `job.file` with the subject's tokens blanked in other subscribers' rows (see the module
    docstring); every row stays. Returns the journal entry, done."""
    path = lake.root / job.file
    columns = columns_of(con, path)
    subject, params = subject_list(con, tokens)
    shape = _shape(job.dataset, columns, policy)
    blankable = shape.blankable(subject, held)
    params = {**params, "path": str(path), "file": job.file}
    entry = {**asdict(job), "before_sha256": sha256_file(path), "after_sha256": None, "evidence": None,
             "state": "intent"}
    replaced = [f"CASE WHEN {blankable} AND coalesce(list_contains({subject}, {c}), false) THEN NULL"
                f" ELSE {c} END AS {c}" for c in shape.scalars]
    for c in shape.lists:
        replaced.append(f"CASE WHEN {blankable} THEN list_filter({c}, lambda t: NOT list_contains({subject}, t))"
                        f" ELSE {c} END AS {c}")
    if shape.lists and OTHERS_COUNTED in columns:
        # The named party taken out is counted with those not named (a row's parties stay as many).
        replaced.append(f"{OTHERS_COUNTED} + {_cells(shape, subject, held)} AS {OTHERS_COUNTED}")
    evidence = evidence_dir / (hashlib.sha256(job.file.encode()).hexdigest()[:16] + ".parquet")
    evidence.parent.mkdir(parents=True, exist_ok=True)
    _write_evidence(con, shape, blankable, subject, {**params, "dst": str(evidence)})
    tmp = staged_rewrite(path)
    kept = execute(con, f"""
        COPY (SELECT * REPLACE ({', '.join(replaced)}) FROM read_parquet($path, hive_partitioning = false))
        TO $tmp (FORMAT parquet, COMPRESSION zstd)""", {**params, "tmp": str(tmp)}).fetchone()[0]
    if kept != job.rows:
        tmp.unlink(missing_ok=True)
        raise RetentionError(f"{job.file}: expected {job.rows} rows after blanking, the rewrite wrote {kept}")
    entry.update(after_sha256=sha256_file(tmp), evidence=str(evidence))
    journal.note(entry)
    index_path(path).unlink(missing_ok=True)     # it lists the tokens blanked
    commit_file(tmp, path)                       # commit point: the file without the subject's tokens
    entry["state"] = "done"
    return entry


def _token_cells(shape: _Shape, relation: str, gone: Callable[[str], str] | None = None) -> str:
    """SQL: one row per token cell of `relation` (list elements one by one): `tok` (hex) and, with `gone` (SQL of
    whether blanking takes a token, given the token's SQL), `gone`."""
    also = (lambda tok: f", {gone(tok)} AS gone") if gone else (lambda _tok: "")
    branches = [f"SELECT hex({c}) AS tok{also(c)} FROM {relation} WHERE {c} IS NOT NULL" for c in shape.scalars]
    branches += [f"SELECT hex({c}) AS tok{', false AS gone' if gone else ''} FROM {relation} WHERE {c} IS NOT NULL"
                 for c in shape.kept]
    branches += [f"SELECT hex(t) AS tok{also('t')} FROM (SELECT *, unnest({c}) AS t FROM {relation}) WHERE t IS NOT NULL"
                 for c in shape.lists]
    return " UNION ALL ".join(branches)


def _write_evidence(con, shape: _Shape, blankable: str, subject: str, params: dict) -> None:
    """The subject's tokens that only blanked cells hold (hex), for the proof."""
    cells = _token_cells(shape, "read_parquet($path, hive_partitioning = false)",
                         lambda tok: f"{blankable} AND coalesce(list_contains({subject}, {tok}), false)")
    execute(con, f"""COPY (WITH cells AS ({cells})
                          SELECT DISTINCT tok AS ident FROM cells WHERE gone
                          EXCEPT SELECT tok FROM cells WHERE NOT gone) TO $dst (FORMAT parquet)""", params)


def prove_blanked(con, lake: Lake, policy: Policy, done: dict) -> Proof:
    """Re-read a blanked file: none of the tokens only its blanked cells held may remain in its values (every
    token column, list elements included), its statistics or its raw bytes; no staging file or subject index
    may be left beside it."""
    path = lake.root / done["file"]
    evidence = Path(done["evidence"]) if done["evidence"] else None
    idents = [i for (i,) in con.execute("SELECT ident FROM read_parquet($e)", {"e": str(evidence)}).fetchall()] \
        if evidence and evidence.exists() else []
    found = 0
    if path.exists() and idents:
        shape = _shape(done["dataset"], columns_of(con, path), policy)
        if shape is not None:
            cells = _token_cells(shape, "read_parquet($path, hive_partitioning = false)")
            found += execute(con, f"SELECT count(DISTINCT tok) FROM ({cells}) WHERE list_contains($idents, tok)",
                             {"path": str(path), "idents": idents}).fetchone()[0]
        found += found_in_bytes(con, path, idents)
    stray = staged_rewrite(path).exists() + index_path(path).exists()
    return Proof(dataset=done["dataset"], partition=done["partition"], file_name=Path(done["file"]).name,
                 outcome=BLANKED if path.exists() else "removed", rows_removed=0, identifiers_checked=len(idents),
                 identifiers_found=found + stray)


def define_held(con, subject_tokens: str = "subject_tokens", name: str = "blank_held") -> str:
    """Temp table `name (file, key)`: the keys of the sweep's plan (`key_due`, `hold_scope`: `plan.plan_sweep`)
    an active hold covers, whatever their due date — a hold on the row's own subscriber (matched as the sweep
    matches it) or on the subject (a hold whose token is one of the subject's), for the data set and day."""
    execute(con, f"""
        CREATE OR REPLACE TEMP TABLE {name} AS
        SELECT DISTINCT k.file, k.key FROM key_due k JOIN hold_scope h
          ON (h.dataset IS NULL OR h.dataset = k.dataset)
         AND (h.date_from IS NULL OR k.day_to >= h.date_from)
         AND (h.date_to IS NULL OR k.day_from <= h.date_to)
         AND (h.any_subject OR h.number = k.number OR h.account = k.account
              OR (h.token = k.token AND h.key_id = k.key_id)
              OR (h.key_id, h.token) IN (SELECT key_id, token FROM {subject_tokens}))""", {})
    return name
