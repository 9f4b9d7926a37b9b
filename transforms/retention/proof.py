"""The proof of a deletion: a rewritten file is re-read, and none of the identifiers only the removed rows
held may remain in its decompressed values, its footer statistics or its raw bytes, and its subject index must be
gone (docs/design.md §3)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from transforms.lake import Lake
from transforms.lake.connection import columns_of
from transforms.lake.partitions import index_path
from transforms.policy import Policy
from transforms.retention.journal import staged_rewrite
from transforms.retention.rows import identifier_columns

# A run of the characters identifiers are written with (numbers, IMSIs, record and invoice ids).
_RUN_BYTES = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+._-"
_LONGEST_RUN = 80
_IDENT_RUN = re.compile(rb"[0-9A-Za-z+._-]{5,%d}" % _LONGEST_RUN)
CHUNK_BYTES = 8 << 20      # the raw-byte check reads a file this much at a time


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
    and in the raw bytes of the file (footer statistics and dictionary pages included). The identifiers
    stay in DuckDB and the file is read in chunks: a rewrite of a whole day's part removes millions of
    them, and memory must not grow with the part (docs/design.md §3).
    """
    path = lake.root / done["file"]
    # A file that lost all its rows is gone: there is nothing left to search, only its absence to confirm.
    evidence = Path(done["evidence"]) if done["evidence"] else None
    checked = found = 0
    if evidence and evidence.exists():
        con.execute("CREATE OR REPLACE TEMP TABLE gone_idents AS SELECT ident FROM read_parquet($e)",
                    {"e": str(evidence)})
        checked = con.execute("SELECT count(*) FROM gone_idents").fetchone()[0]
    if path.exists() and checked:
        cols = identifier_columns(done["dataset"], columns_of(con, path), policy)
        union = " UNION ALL ".join(f"SELECT CAST({c} AS VARCHAR) AS ident FROM read_parquet($path,"
                                   " hive_partitioning = false)" for c in cols)
        found += con.execute(f"SELECT count(DISTINCT ident) FROM ({union}) WHERE ident IN (SELECT ident FROM"
                             " gone_idents)", {"path": str(path)}).fetchone()[0]
        # Raw bytes: every run of identifier characters in the file (values of plain and dictionary pages,
        # footer min/max statistics) against the removed text identifiers; tokens are raw bytes in the
        # file, so their statistics are compared as bytes.
        con.execute("CREATE OR REPLACE TEMP TABLE file_runs (run BLOB)")
        for runs in identifier_runs(path):
            con.register("chunk_runs", pa.table({"run": pa.array(list(set(runs)), pa.binary())}))
            con.execute("INSERT INTO file_runs SELECT run FROM chunk_runs")
            con.unregister("chunk_runs")
        found += con.execute("SELECT count(*) FROM gone_idents WHERE encode(ident) IN (SELECT run FROM file_runs)"
                             ).fetchone()[0]
        found += con.execute("""
            SELECT count(*) FROM gone_idents WHERE ident IN (
                SELECT v FROM (SELECT unnest([stats_min_value, stats_max_value]) AS v FROM parquet_metadata($path))
                WHERE v IS NOT NULL)""", {"path": str(path)}).fetchone()[0]
        con.execute("DROP TABLE file_runs")
    if checked:
        con.execute("DROP TABLE gone_idents")
    # A stray staging file, or the part's subject index (the tokens of the rows before the sweep), left behind.
    stray = staged_rewrite(path).exists() + index_path(path).exists()
    return Proof(dataset=done["dataset"], partition=done["partition"], file_name=Path(done["file"]).name,
                 outcome="rewritten" if path.exists() else "removed", rows_removed=done["rows_removed"],
                 identifiers_checked=checked, identifiers_found=found + stray)


def identifier_runs(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[list[bytes]]:
    """Every run of identifier characters in the file's bytes, a chunk at a time: the runs the whole file
    read at once would give, in the same order.

    A chunk is cut after its last byte that no run holds, and the run it ends in goes on into the next; a
    run longer than a chunk (never seen in Parquet: lengths and page headers break them) is cut at a multiple
    of the longest run matched, where the whole-file match would cut it too.
    """
    carry = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            data = carry + chunk
            cut = len(data.rstrip(_RUN_BYTES))
            if cut == 0:                      # one run all along: keep whole pieces of it, carry the rest
                cut = len(data) - len(data) % _LONGEST_RUN if len(data) > chunk_bytes else 0
            carry = data[cut:]
            if cut:
                yield _IDENT_RUN.findall(data, 0, cut)
    if carry:
        yield _IDENT_RUN.findall(carry)
