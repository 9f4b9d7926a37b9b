"""Writing a step's query to a Parquet file with Arrow's writer, the query streaming into it.

Arrow's Parquet writer encodes text columns with less CPU than DuckDB's `COPY … TO (FORMAT parquet)`, and on a
thread of its own it lets DuckDB's two threads compute the next rows meanwhile: ingest's staging statement of a
4.5M-row file took 12.5 s as a COPY and ~10 s here (docs/design.md §8). Rows stream through in batches: memory
stays that of a few batches, whatever the file's size.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.lake.connection import used_params

BATCH_ROWS = 122_880          # DuckDB's row group: the written file has row groups of this size
_BATCHES_AHEAD = 4            # batches DuckDB may run ahead of the writer (~30 MB each at the canonical row)
_DONE = object()


def _write_full_groups(writer: pq.ParquetWriter, pending: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    """Write every whole row group of BATCH_ROWS the `pending` batches hold; return what is left over."""
    held = sum(b.num_rows for b in pending)
    if held < BATCH_ROWS:
        return pending
    table = pa.Table.from_batches(pending)
    whole = held - held % BATCH_ROWS
    writer.write_table(table.slice(0, whole), row_group_size=BATCH_ROWS)
    return table.slice(whole).to_batches()


def write_parquet(con: duckdb.DuckDBPyConnection, query: str, params: dict, dst: str | Path, *,
                  compression: str, **options) -> int:
    """Write the rows of `query` (binding `params`) to the Parquet file `dst`, in the query's order; returns
    the rows written. `compression` and `options` are Arrow's `ParquetWriter`'s (`compression_level`,
    …).

    A failure of the query, at its start or part-way through its rows, raises `duckdb.Error` as a COPY would
    (with DuckDB's message), so callers handle one kind of error; `dst` is then incomplete, as after a failed
    COPY, and the caller's work folder is what it belongs to.
    """
    reader = con.sql(query, params=used_params(query, params)).to_arrow_reader(BATCH_ROWS)
    batches: queue.Queue = queue.Queue(_BATCHES_AHEAD)
    failure: list[BaseException] = []
    stop = threading.Event()

    def offer(item) -> bool:
        """Hand `item` to the writer; False once the writer has stopped (it takes nothing more)."""
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        # DuckDB computes the next batches while the writer compresses this one (both release the GIL).
        try:
            for batch in reader:
                if not offer(batch):
                    return
        except BaseException as exc:    # the writer must hear of any end, or it waits for ever
            failure.append(exc)
        offer(_DONE)

    producer = threading.Thread(target=produce, name="parquet-producer", daemon=True)
    rows = 0
    try:
        with pq.ParquetWriter(str(dst), reader.schema, compression=compression, **options) as writer:
            producer.start()
            # DuckDB hands over batches of its own sizes (~50k rows from a CSV scan); they are gathered into row
            # groups of BATCH_ROWS, as DuckDB writes them (a row group each: 2.4x as many, and slower to read).
            pending: list[pa.RecordBatch] = []
            while (batch := batches.get()) is not _DONE:
                pending.append(batch)
                rows += batch.num_rows
                pending = _write_full_groups(writer, pending)
            if pending:
                writer.write_table(pa.Table.from_batches(pending), row_group_size=BATCH_ROWS)
    finally:
        stop.set()
        if producer.ident is not None:      # started: it stops at its next batch
            producer.join()
        reader.close()
    if failure:
        exc = failure[0]
        if isinstance(exc, (pa.ArrowException, OSError)):   # DuckDB's error, as Arrow's reader passes it on
            raise duckdb.Error(str(exc)) from exc
        raise exc
    return rows
