"""Writing landing files: CSV records as each writer spells them, bulk chunks streamed to disk
with Python-made records placed between them, atomic replacement, progress on stderr."""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pyarrow as pa

from .vectorized import _Lines

CHUNK = 100_000                 # bulk rows per vectorized chunk; part of the output's identity


def _row_bytes(values: Sequence[str], style: str) -> bytes:
    """One CSV record as the given writer would have written it."""
    if style == "minimal":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        return buf.getvalue().encode("utf-8")
    quote = [True] * len(values)
    if style == "asterisk":                         # duration and billsec are bare integers
        quote = [i not in (12, 13) for i in range(len(values))]
    out = ",".join('"' + v.replace('"', '""') + '"' if q else v for v, q in zip(values, quote))
    return (out + "\n").encode("utf-8")


def _rows(cols: Sequence[pa.Array]) -> list[list[str]]:
    return [list(r) for r in zip(*(c.to_pylist() for c in cols))]


class Progress:
    """Progress lines on stderr for big runs."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled and total >= 500_000
        self.done, self.t0, self.last = 0, time.monotonic(), 0.0

    def step(self, name: str, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if self.enabled and (now - self.last >= 2.0 or self.done >= self.total):
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            print(f"  {self.done:>12,} / {self.total:,} rows ({100 * self.done / self.total:5.1f} %)"
                  f"  {rate / 1e6:.2f} M rows/s  [{name}]", file=sys.stderr, flush=True)


@dataclass
class _Insert:
    """A Python-made record placed between bulk rows; `make` gets the previous record."""

    kind: str
    make: Callable[[bytes], bytes]


def _positions(bulk: int, k: int) -> list[int]:
    """k insertion points spread over the bulk rows, never before the first one."""
    return [1 + (j + 1) * max(bulk - 1, 0) // (k + 1) for j in range(k)]


def _chunks(bulk: int) -> Iterator[tuple[int, int, int]]:
    for c, a in enumerate(range(0, bulk, CHUNK)):
        yield c, a, min(a + CHUNK, bulk)


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def write_csv_stream(path: Path, header: bytes, bulk: int, make_chunk: Callable[[int, int, int], _Lines],
                     inserts: list[_Insert], tail: bytes, progress: Progress) -> None:
    """Bulk chunks with inserted records between them, then `tail`; written atomically."""
    placed = sorted(zip(_positions(bulk, len(inserts)), range(len(inserts))))
    tmp = _tmp(path)
    prev = b""
    with open(tmp, "wb") as fh:
        fh.write(header)
        q = 0
        for c, a, b in _chunks(bulk):
            lines = make_chunk(c, a, b)
            cur = 0
            while q < len(placed) and placed[q][0] < b:
                at = placed[q][0] - a
                if at > cur:
                    fh.write(lines.part(cur, at))
                    prev = bytes(lines.part(at - 1, at))
                cur = at
                rec = inserts[placed[q][1]].make(prev)
                fh.write(rec)
                q += 1
            fh.write(lines.part(cur, len(lines)))
            prev = bytes(lines.part(len(lines) - 1, len(lines)))
            progress.step(path.name, b - a)
        for _, i in placed[q:]:                     # only when bulk is tiny
            fh.write(inserts[i].make(prev))
        fh.write(tail)
    os.replace(tmp, path)


def write_atomically(path: Path, data: bytes) -> None:
    """Write a whole file under a temporary name, then move it into place."""
    tmp = _tmp(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)
