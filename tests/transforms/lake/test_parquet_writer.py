"""transforms/lake/parquet_writer.py: a step's query streamed into a Parquet file by Arrow's writer — every row,
in the query's order, with the types DuckDB reads back as its own; a query that fails part-way raises DuckDB's
error, as a COPY would, and leaves no thread behind."""

from __future__ import annotations

import threading
from decimal import Decimal

import duckdb
import pyarrow.parquet as pq
import pytest

from transforms.lake.connection import connect
from transforms.lake.parquet_writer import BATCH_ROWS, write_parquet

# Types the staged file and the zones hold, one row per i; `text` is unique per row, so order shows.
TYPED = """
    SELECT i, 'row-' || i AS text, TIMESTAMP '2026-11-22 00:00:00' + INTERVAL (i) SECOND AS start_time,
           CAST(i / 8 AS DECIMAL(18,4)) AS amount, CAST(i AS DOUBLE) / 3 AS rate,
           {'hi': CAST(i AS UBIGINT), 'lo': CAST(2 * i AS UBIGINT)} AS digest,
           unhex(lpad(printf('%x', i), 8, '0')) AS token,
           CASE WHEN i % 7 = 0 THEN NULL ELSE 'x' END AS sometimes, CAST(NULL AS BIGINT) AS never
    FROM range($n) t(i)"""


def _read(path) -> list[tuple]:
    con = duckdb.connect()
    try:
        return con.execute("SELECT * FROM read_parquet($p)", {"p": str(path)}).fetchall()
    finally:
        con.close()


def test_rows_types_and_order_as_duckdb_reads_them(tmp_path):
    con = connect(tmp_path / "tmp")
    n = 2 * BATCH_ROWS + 17          # three batches, the last one short
    dst = tmp_path / "out.parquet"
    assert write_parquet(con, TYPED, {"n": n, "unused": 1}, dst, compression="lz4") == n
    expected = con.execute(TYPED, {"n": n}).fetchall()
    assert _read(dst) == expected                        # every row, every value, in the query's order
    types = duckdb.connect().execute("DESCRIBE SELECT * FROM read_parquet($p)", {"p": str(dst)}).fetchall()
    assert [t[1] for t in types] == ["BIGINT", "VARCHAR", "TIMESTAMP", "DECIMAL(18,4)", "DOUBLE",
                                     "STRUCT(hi UBIGINT, lo UBIGINT)", "BLOB", "VARCHAR", "BIGINT"]
    assert expected[9][3] == Decimal("1.1250")
    assert pq.ParquetFile(dst).metadata.num_row_groups == 3      # DuckDB's row group size


def test_an_empty_result_is_a_file_of_no_rows_with_the_columns(tmp_path):
    con = connect(tmp_path / "tmp")
    dst = tmp_path / "empty.parquet"
    assert write_parquet(con, TYPED, {"n": 0}, dst, compression="zstd", compression_level=1) == 0
    assert _read(dst) == []
    assert pq.ParquetFile(dst).schema_arrow.names[:3] == ["i", "text", "start_time"]


def test_a_query_failing_part_way_raises_duckdbs_error_and_leaves_no_thread(tmp_path):
    con = connect(tmp_path / "tmp")
    before = threading.active_count()
    # The cast fails on a row of the third batch: two batches have gone to the writer by then.
    failing = f"SELECT i, CAST(CASE WHEN i = {2 * BATCH_ROWS + 5} THEN 'x' ELSE '1' END AS INTEGER) AS v FROM range($n) t(i)"
    with pytest.raises(duckdb.Error, match="Could not convert string 'x'"):
        write_parquet(con, failing, {"n": 3 * BATCH_ROWS}, tmp_path / "out.parquet", compression="lz4")
    assert threading.active_count() == before
    # The connection is still usable for the step's next statement.
    assert con.execute("SELECT 42").fetchone() == (42,)


def test_a_query_that_cannot_start_raises_duckdbs_error(tmp_path):
    con = connect(tmp_path / "tmp")
    with pytest.raises(duckdb.Error, match="No files found"):
        write_parquet(con, "SELECT * FROM read_csv($src)", {"src": str(tmp_path / "missing.csv")},
                      tmp_path / "out.parquet", compression="lz4")


def test_a_writer_that_fails_stops_the_query_and_raises(tmp_path):
    con = connect(tmp_path / "tmp")
    before = threading.active_count()
    with pytest.raises(OSError):
        write_parquet(con, TYPED, {"n": 3 * BATCH_ROWS}, tmp_path / "no-such-folder" / "out.parquet",
                      compression="lz4")
    assert threading.active_count() == before


def test_row_groups_are_duckdbs_size_whatever_batches_the_scan_hands_over(tmp_path):
    # A CSV scan hands over a batch per buffer it reads (~65k rows of 1 MB here); the file still has row groups of
    # BATCH_ROWS rows, and every row in the file's order.
    n = 2 * BATCH_ROWS + 1_001
    csv = tmp_path / "rows.csv"
    csv.write_text("".join(f"{i},value-{i}\n" for i in range(n)))
    con = connect(tmp_path / "tmp")
    dst = tmp_path / "out.parquet"
    query = ("SELECT * FROM read_csv($src, header = false, columns = {'i': 'BIGINT', 'v': 'VARCHAR'}, parallel = true,"
             " buffer_size = 1048576)")
    assert write_parquet(con, query, {"src": str(csv)}, dst, compression="lz4") == n
    meta = pq.ParquetFile(dst).metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [BATCH_ROWS, BATCH_ROWS, 1_001]
    assert [i for (i,) in duckdb.connect().execute("SELECT i FROM read_parquet($p)", {"p": str(dst)}).fetchall()] \
        == list(range(n))
