"""The proof of a deletion: a rewritten file is re-read, and none of the identifiers only the removed rows
held may remain in its decompressed values, its footer statistics or its raw bytes, nor in its subject index
(docs/design.md §3, §12)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from transforms.lake import Lake
from transforms.lake.connection import columns_of
from transforms.lake.partitions import index_path
from transforms.policy import Policy
from transforms.retention.journal import staged_rewrite
from transforms.retention.rows import identifier_columns

# A run of the characters identifiers are written with (numbers, IMSIs, record and invoice ids).
_IDENT_RUN = re.compile(rb"[0-9A-Za-z+._-]{5,80}")


@dataclass(frozen=True)
class Proof:
    """One rewritten or removed file, re-read after the sweep."""

    dataset: str
    partition: str
    file_name: str
    outcome: str                # rewritten | removed
    rows_removed: int
    identifiers_checked: int
    identifiers_found: int

    @property
    def ok(self) -> bool:
        return self.identifiers_found == 0


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
        found += _found_in(con, path, identifier_columns(done["dataset"], columns_of(con, path), policy), idents)
        index = index_path(path)
        if index.exists():
            # A rewritten part's index keeps the rows of what stays (`subject_index.kept_index`): its spellings,
            # or its tokens (as hex, as the evidence of a token zone holds them), must hold none of the gone.
            present = columns_of(con, index)
            found += _found_in(con, index, ["raw"] if "raw" in present else ["hex(token)"], idents)
    # A stray staging file, or an index left beside a part that is gone.
    stray = staged_rewrite(path).exists() + (not path.exists() and index_path(path).exists())
    return Proof(dataset=done["dataset"], partition=done["partition"], file_name=Path(done["file"]).name,
                 outcome="rewritten" if path.exists() else "removed", rows_removed=done["rows_removed"],
                 identifiers_checked=len(idents), identifiers_found=found + stray)


def _found_in(con, path: Path, columns: list[str], idents: list[str]) -> int:
    """How many of the removed identifiers (`idents`, also the temp table `gone_idents`) the Parquet file `path`
    holds: in the decompressed values of `columns` (SQL over its rows), and in its raw bytes (values of plain and
    dictionary pages, footer min/max statistics; tokens are raw bytes in the file, so statistics are compared as
    bytes)."""
    union = " UNION ALL ".join(f"SELECT CAST({c} AS VARCHAR) AS ident FROM read_parquet($path,"
                               " hive_partitioning = false)" for c in columns)
    found = con.execute(f"SELECT count(DISTINCT ident) FROM ({union}) WHERE ident IN (SELECT ident FROM"
                        " gone_idents)", {"path": str(path)}).fetchone()[0] if columns else 0
    runs = set(_IDENT_RUN.findall(path.read_bytes()))
    found += sum(1 for i in idents if i.encode() in runs)
    stats = {v for (v,) in con.execute(
        "SELECT unnest([stats_min_value, stats_max_value]) FROM parquet_metadata($path)", {"path": str(path)})
        .fetchall() if v is not None}
    return found + sum(1 for i in idents if i in stats)
