"""The proof of a deletion: a rewritten file is re-read, and none of the identifiers only the removed rows
held may remain in its decompressed values, its footer statistics or its raw bytes, nor in its subject index
(docs/design.md §3, §12). `found_in_bytes` is shared with the proof of a blanking (`blank.prove_blanked`)."""

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
from transforms.privacy.tokens import TOKEN_BYTES
from transforms.retention.journal import staged_rewrite
from transforms.retention.rows import identifier_columns

# A run of the characters identifiers are written with (numbers, IMSIs, record and invoice ids).
_RUN_BYTES = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+._-"
_LONGEST_RUN = 80
_IDENT_RUN = re.compile(rb"[0-9A-Za-z+._-]{5,%d}" % _LONGEST_RUN)
CHUNK_BYTES = 8 << 20      # the raw-byte check reads a file this much at a time
# A token as the evidence writes it (`hex()` of TOKEN_BYTES bytes), as a DuckDB regular expression.
_TOKEN_HEX = f"[0-9A-F]{{{2 * TOKEN_BYTES}}}"


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


def found_in_bytes(con, path: Path, idents: list[str] | str, tokens_as_bytes: bool = True) -> int:
    """How many of `idents` the raw bytes of the Parquet file `path` still hold.

    Every run of identifier characters in the file (values of plain and dictionary pages, footer min/max
    statistics) against the text identifiers; with `tokens_as_bytes`, a token (32 hex digits, as the evidence
    writes them) is raw bytes in the file, so its 16 bytes are looked for as they are, in pages and statistics
    alike (only where every token cell of the file is one the evidence was taken against).

    `idents` is a list, or the name of a table of `con` holding them (column `ident`): the sweep's evidence of a
    day's part is millions of identifiers, so they stay in DuckDB, and the file is read a chunk at a time
    (`identifier_runs`, `_token_hits`): memory does not grow with the part.
    """
    table = idents if isinstance(idents, str) else _idents_table(con, idents)
    con.execute("CREATE OR REPLACE TEMP TABLE file_runs (run BLOB)")
    con.execute("CREATE OR REPLACE TEMP TABLE file_tokens (ident VARCHAR)")
    prefixes = _token_prefixes(con, table) if tokens_as_bytes else None
    for runs, hits in _scan(path, prefixes):
        _append(con, "file_runs", "run", list(set(runs)), pa.binary())
        _append(con, "file_tokens", "ident", sorted(hits), pa.string())
    found = con.execute(f"""
        SELECT count(*) FROM {table}
        WHERE encode(ident) IN (SELECT run FROM file_runs)
           OR ident IN (SELECT v FROM (SELECT unnest([stats_min_value, stats_max_value]) AS v
                                       FROM parquet_metadata($path)) WHERE v IS NOT NULL)
           OR ident IN (SELECT ident FROM file_tokens)""", {"path": str(path)}).fetchone()[0]
    con.execute("DROP TABLE file_runs")
    con.execute("DROP TABLE file_tokens")
    if table != idents:
        con.execute(f"DROP TABLE {table}")
    return found


def _idents_table(con, idents: list[str]) -> str:
    con.execute("CREATE OR REPLACE TEMP TABLE bytes_idents (ident VARCHAR)")
    _append(con, "bytes_idents", "ident", list(idents), pa.string())
    return "bytes_idents"


def _append(con, table: str, column: str, values: list, kind) -> None:
    if values:
        con.register("_chunk", pa.table({column: pa.array(values, kind)}))
        con.execute(f"INSERT INTO {table} SELECT {column} FROM _chunk")
        con.unregister("_chunk")


def _token_prefixes(con, table: str):
    """The tokens among the identifiers, as the sorted big-endian 64-bit numbers of their first 8 bytes."""
    import numpy as np

    got = con.execute(f"SELECT DISTINCT CAST('0x' || left(ident, 16) AS UBIGINT) AS p FROM {table}"
                      " WHERE regexp_full_match(ident, $re) ORDER BY p", {"re": _TOKEN_HEX}).fetchnumpy()
    prefixes = np.asarray(got["p"], dtype=np.uint64)
    return prefixes if len(prefixes) else None


def _scan(path: Path, prefixes) -> Iterator[tuple[list[bytes], set[str]]]:
    """Per chunk of the file: its runs of identifier characters (`identifier_runs`) and the hex of every
    TOKEN_BYTES-long byte string in it whose first 8 bytes start a token (`prefixes`; none: not looked for).
    Chunks overlap by TOKEN_BYTES - 1 bytes for the tokens, so one cut by a chunk boundary is still seen."""
    tail = b""
    with open(path, "rb") as fh:
        runs = _RunSplitter()
        while chunk := fh.read(CHUNK_BYTES):
            hits = _token_hits(tail + chunk, prefixes) if prefixes is not None else set()
            tail = (tail + chunk)[-(TOKEN_BYTES - 1):]
            yield runs.feed(chunk), hits
        yield runs.close(), set()


def _token_hits(buf: bytes, prefixes) -> set[str]:
    import numpy as np

    hits = set()
    for offset in range(8):       # every byte position: the 8-byte words starting at offsets 0..7 mod 8
        n = (len(buf) - offset) // 8
        if n <= 0:
            continue
        words = np.frombuffer(buf, dtype=">u8", count=n, offset=offset).astype(np.uint64)
        at = np.searchsorted(prefixes, words)
        match = np.nonzero(prefixes[np.minimum(at, len(prefixes) - 1)] == words)[0]
        for k in match:
            start = offset + 8 * int(k)
            if start + TOKEN_BYTES <= len(buf):
                hits.add(buf[start:start + TOKEN_BYTES].hex().upper())
    return hits


class _RunSplitter:
    """`identifier_runs` fed chunk by chunk: the runs a whole read gives."""

    def __init__(self, chunk_bytes: int = CHUNK_BYTES):
        self.carry, self.chunk_bytes = b"", chunk_bytes

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self.carry + chunk
        cut = len(data.rstrip(_RUN_BYTES))
        if cut == 0:                      # one run all along: keep whole pieces of it, carry the rest
            cut = len(data) - len(data) % _LONGEST_RUN if len(data) > self.chunk_bytes else 0
        self.carry = data[cut:]
        return _IDENT_RUN.findall(data, 0, cut) if cut else []

    def close(self) -> list[bytes]:
        rest, self.carry = self.carry, b""
        return _IDENT_RUN.findall(rest) if rest else []


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
        found += _found_in_values(con, path, identifier_columns(done["dataset"], columns_of(con, path), policy))
        # A marketing row's named called parties are not among its identifiers (`rows.identifier_columns`): a
        # removed subscriber named by a row that stays is someone else's profile, so its bytes may hold the token.
        found += found_in_bytes(con, path, "gone_idents", tokens_as_bytes=done["dataset"] != "marketing")
        found += found_in_index(con, path, "gone_idents")
    if checked:
        con.execute("DROP TABLE gone_idents")
    # A stray staging file, or an index left beside a part that is gone.
    stray = staged_rewrite(path).exists() + (not path.exists() and index_path(path).exists())
    return Proof(dataset=done["dataset"], partition=done["partition"], file_name=Path(done["file"]).name,
                 outcome="rewritten" if path.exists() else "removed", rows_removed=done["rows_removed"],
                 identifiers_checked=checked, identifiers_found=found + stray)


def found_in_index(con, part: Path, idents: list[str] | str) -> int:
    """How many of `idents` (a list, or the name of a table of `con` with column `ident`) the subject index of a
    rewritten `part` still lists. The index keeps the rows of what stays (`subject_index.kept_index`): its
    spellings, or its tokens (as hex, as the evidence of a token zone holds them), must hold none of the gone;
    nor may its bytes."""
    index = index_path(part)
    if not index.exists() or not idents:
        return 0
    table = idents if isinstance(idents, str) else _idents_table(con, idents)
    column = "raw" if "raw" in columns_of(con, index) else "hex(token)"
    found = _found_in_values(con, index, [column], table) + found_in_bytes(con, index, table)
    if table != idents:
        con.execute(f"DROP TABLE {table}")
    return found


def _found_in_values(con, path: Path, columns: list[str], table: str = "gone_idents") -> int:
    """How many of the removed identifiers (in `table`, column `ident`) the decompressed values of `columns` of
    the Parquet file `path` hold (SQL over its rows)."""
    if not columns:
        return 0
    union = " UNION ALL ".join(f"SELECT CAST({c} AS VARCHAR) AS ident FROM read_parquet($path,"
                               " hive_partitioning = false)" for c in columns)
    return con.execute(f"SELECT count(DISTINCT ident) FROM ({union}) WHERE ident IN (SELECT ident FROM"
                       f" {table})", {"path": str(path)}).fetchone()[0]


def identifier_runs(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[list[bytes]]:
    """Every run of identifier characters in the file's bytes, a chunk at a time: the runs the whole file
    read at once would give, in the same order.

    A chunk is cut after its last byte that no run holds, and the run it ends in goes on into the next; a
    run longer than a chunk (never seen in Parquet: lengths and page headers break them) is cut at a multiple
    of the longest run matched, where the whole-file match would cut it too.
    """
    runs = _RunSplitter(chunk_bytes)
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            yield runs.feed(chunk)
    yield runs.close()
