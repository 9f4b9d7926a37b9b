"""The proof of a deletion: a rewritten file is re-read, and none of the identifiers only the removed rows
held may remain in its decompressed values, its footer statistics or its raw bytes, nor in its subject index
(docs/design.md §3, §12). `found_in_bytes` is shared with the proof of a blanking (`blank.prove_blanked`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from transforms.lake import Lake
from transforms.lake.connection import columns_of
from transforms.lake.partitions import index_path
from transforms.policy import Policy
from transforms.privacy.tokens import TOKEN_BYTES
from transforms.retention.journal import staged_rewrite
from transforms.retention.rows import identifier_columns

# A run of the characters identifiers are written with (numbers, IMSIs, record and invoice ids).
_IDENT_RUN = re.compile(rb"[0-9A-Za-z+._-]{5,80}")
# A token as the evidence writes it (`hex()` of TOKEN_BYTES bytes).
_TOKEN_HEX = re.compile(f"[0-9A-F]{{{2 * TOKEN_BYTES}}}")


@dataclass(frozen=True)
class Proof:
    """One rewritten or removed file, re-read after the sweep."""

    dataset: str
    partition: str
    file_name: str
    outcome: str                # rewritten | removed | blanked (`blank`: rows kept, the subject's tokens blanked)
    rows_removed: int
    identifiers_checked: int
    identifiers_found: int

    @property
    def ok(self) -> bool:
        return self.identifiers_found == 0


def found_in_bytes(con, path: Path, idents: list[str], tokens_as_bytes: bool = True) -> int:
    """How many of `idents` the raw bytes of the Parquet file `path` still hold.

    Every run of identifier characters in the file (values of plain and dictionary pages, footer min/max
    statistics) against the text identifiers; with `tokens_as_bytes`, a token (32 hex digits, as the evidence
    writes them) is raw bytes in the file, so its 16 bytes are looked for as they are, in pages and statistics
    alike (only where every token cell of the file is one the evidence was taken against).
    """
    data = path.read_bytes()
    runs = set(_IDENT_RUN.findall(data))
    stats = {v for (v,) in con.execute(
        "SELECT unnest([stats_min_value, stats_max_value]) FROM parquet_metadata($path)", {"path": str(path)})
        .fetchall() if v is not None}
    return sum(1 for i in idents if i.encode() in runs or i in stats or (
        tokens_as_bytes and _TOKEN_HEX.fullmatch(i) and bytes.fromhex(i) in data))


def prove(con, lake: Lake, policy: Policy, done: dict) -> Proof:
    """Re-read the file of a done journal entry: none of the removed rows' own identifiers may remain.

    Checked twice: in the decompressed values (every identifying column, read back through DuckDB)
    and in the raw bytes of the file (footer statistics and dictionary pages included).
    """
    path = lake.root / done["file"]
    # A file that lost all its rows is gone: there is nothing left to search, only its absence to confirm.
    evidence = Path(done["evidence"]) if done["evidence"] else None
    idents = [r[0] for r in con.execute("SELECT ident FROM read_parquet($e)", {"e": str(evidence)}).fetchall()] \
        if evidence and evidence.exists() else []
    found = 0
    if path.exists() and idents:
        con.execute("CREATE OR REPLACE TEMP TABLE gone_idents AS SELECT unnest($i::VARCHAR[]) AS ident", {"i": idents})
        found += _found_in_values(con, path, identifier_columns(done["dataset"], columns_of(con, path), policy))
        # A marketing row's named called parties are not among its identifiers (`rows.identifier_columns`): a
        # removed subscriber named by a row that stays is someone else's profile, so its bytes may hold the token.
        found += found_in_bytes(con, path, idents, tokens_as_bytes=done["dataset"] != "marketing")
        found += found_in_index(con, path, idents)
    # A stray staging file, or an index left beside a part that is gone.
    stray = staged_rewrite(path).exists() + (not path.exists() and index_path(path).exists())
    return Proof(dataset=done["dataset"], partition=done["partition"], file_name=Path(done["file"]).name,
                 outcome="rewritten" if path.exists() else "removed", rows_removed=done["rows_removed"],
                 identifiers_checked=len(idents), identifiers_found=found + stray)


def found_in_index(con, part: Path, idents: list[str]) -> int:
    """How many of `idents` the subject index of a rewritten `part` still lists. The index keeps the rows of what
    stays (`subject_index.kept_index`): its spellings, or its tokens (as hex, as the evidence of a token zone holds
    them), must hold none of the gone; nor may its bytes."""
    index = index_path(part)
    if not index.exists() or not idents:
        return 0
    con.execute("CREATE OR REPLACE TEMP TABLE gone_idents AS SELECT unnest($i::VARCHAR[]) AS ident", {"i": idents})
    column = "raw" if "raw" in columns_of(con, index) else "hex(token)"
    return _found_in_values(con, index, [column]) + found_in_bytes(con, index, idents)


def _found_in_values(con, path: Path, columns: list[str]) -> int:
    """How many of the removed identifiers (the temp table `gone_idents`) the decompressed values of `columns` of
    the Parquet file `path` hold (SQL over its rows)."""
    if not columns:
        return 0
    union = " UNION ALL ".join(f"SELECT CAST({c} AS VARCHAR) AS ident FROM read_parquet($path,"
                               " hive_partitioning = false)" for c in columns)
    return con.execute(f"SELECT count(DISTINCT ident) FROM ({union}) WHERE ident IN (SELECT ident FROM"
                       " gone_idents)", {"path": str(path)}).fetchone()[0]
