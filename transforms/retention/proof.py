"""The proof of a deletion: a rewritten file is re-read, and none of the identifiers only the removed rows
held may remain in its decompressed values, its footer statistics or its raw bytes, and its subject index must be
gone (docs/design.md §3). `found_in_bytes` is shared with the proof of a blanking (`blank.prove_blanked`)."""

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
        cols = identifier_columns(done["dataset"], columns_of(con, path), policy)
        union = " UNION ALL ".join(f"SELECT CAST({c} AS VARCHAR) AS ident FROM read_parquet($path,"
                                   " hive_partitioning = false)" for c in cols)
        found += con.execute(f"SELECT count(DISTINCT ident) FROM ({union}) WHERE ident IN (SELECT ident FROM"
                             " gone_idents)", {"path": str(path)}).fetchone()[0]
        # A marketing row's named called parties are not among its identifiers (`rows.identifier_columns`): a
        # removed subscriber named by a row that stays is someone else's profile, so its bytes may hold the token.
        found += found_in_bytes(con, path, idents, tokens_as_bytes=done["dataset"] != "marketing")
    # A stray staging file, or the part's subject index (the tokens of the rows before the sweep), left behind.
    stray = staged_rewrite(path).exists() + index_path(path).exists()
    return Proof(dataset=done["dataset"], partition=done["partition"], file_name=Path(done["file"]).name,
                 outcome="rewritten" if path.exists() else "removed", rows_removed=done["rows_removed"],
                 identifiers_checked=len(idents), identifiers_found=found + stray)
