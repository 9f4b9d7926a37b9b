"""Vectorized helpers (numpy + pyarrow compute): per-item hashing, digit and hex text,
string assembly, weighted choices and CSV lines.

Underscore names are the generator's own vocabulary, not part of sample_data.generate's API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _hash(seed: int, stream: int, idx: np.ndarray) -> np.ndarray:
    """splitmix64 of (seed, stream, idx): per-item randomness that does not depend on array size."""
    with np.errstate(over="ignore"):
        z = idx.astype(np.uint64) * _GOLDEN
        z += np.uint64((seed * 0x632BE59BD9B4E019 + stream * 0x8CB92BA72F3D8DD7) & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def _unit(h: np.ndarray) -> np.ndarray:
    """uint64 hash -> float in [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _affine(seed: int, stream: int, modulus: int) -> tuple[int, int]:
    """(a, b) with gcd(a, modulus) = 1: i -> (a*i + b) % modulus is a bijection (unique identifiers)."""
    h = int(_hash(seed, stream, np.array([0, 1]))[0])
    a = h % modulus
    while np.gcd(a, modulus) != 1:
        a += 1
    b = int(_hash(seed, stream, np.array([1]))[0]) % modulus
    return a, b


def _fixed(mat: np.ndarray) -> pa.Array:
    """(n, w) uint8 ASCII matrix -> string array of width w, zero-copy."""
    n, w = mat.shape
    mat = np.ascontiguousarray(mat)
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(mat))


def _digit_matrix(x: np.ndarray, width: int) -> np.ndarray:
    x = np.asarray(x).astype(np.uint64)
    pows = np.uint64(10) ** np.arange(width - 1, -1, -1, dtype=np.uint64)
    return ((x[:, None] // pows) % np.uint64(10)).astype(np.uint8) + np.uint8(48)


def _dec(x: np.ndarray, width: int) -> pa.Array:
    """Non-negative integers as zero-padded decimal strings of a fixed width."""
    return _fixed(_digit_matrix(x, width))


_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


def _hexs(x: np.ndarray, width: int) -> pa.Array:
    x = np.asarray(x).astype(np.uint64)
    shifts = np.uint64(4) * np.arange(width - 1, -1, -1, dtype=np.uint64)
    return _fixed(_HEX[((x[:, None] >> shifts) & np.uint64(15)).astype(np.intp)])


def _int(x: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(x, dtype=np.int64)), pa.string())


def _cat(*parts) -> pa.Array:
    """Element-wise concatenation of string arrays / Python strings."""
    return pc.binary_join_element_wise(*parts, "")


def _amount(e: np.ndarray, decimals: int) -> pa.Array:
    """Non-negative fixed-point integers (value * 10**decimals) as 'int.frac' text."""
    scale = 10 ** decimals
    return _cat(_int(e // scale), ".", _dec(e % scale, decimals))


def _pick(pool: pa.Array, idx: np.ndarray) -> pa.Array:
    return pool.take(pa.array(np.asarray(idx, dtype=np.int64)))


def _where(mask: np.ndarray, a, b) -> pa.Array:
    return pc.if_else(pa.array(mask), a, b)


def _blank_unless(mask: np.ndarray, a: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), a, "")


def _choice(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    cdf = np.cumsum(weights) / weights.sum()
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(weights) - 1)


def _choice_hash(h: np.ndarray, weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights) / weights.sum()
    return np.minimum(np.searchsorted(cdf, _unit(h), side="right"), len(weights) - 1)


def _csv_escape(col: pa.Array) -> pa.Array:
    """Quote values that need it (RFC 4180), leave the rest bare."""
    needs = pc.match_substring_regex(col, '[",\r\n]')
    quoted = _cat('"', pc.replace_substring(col, '"', '""'), '"')
    return pc.if_else(needs, quoted, col)


def _quote_all(col: pa.Array, may_hold_quotes: bool = False) -> pa.Array:
    if may_hold_quotes:
        col = pc.replace_substring(col, '"', '""')
    return _cat('"', col, '"')


@dataclass
class _Lines:
    """A chunk of CSV text: one buffer, line boundaries in `offsets`."""

    data: memoryview
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def part(self, start: int, stop: int) -> memoryview:
        return self.data[self.offsets[start]:self.offsets[stop]]


def _lines(cols: Sequence[pa.Array]) -> _Lines:
    joined = pc.binary_join_element_wise(*cols, ",", null_handling="replace")
    joined = pc.binary_join_element_wise(joined, "", "\n")
    if isinstance(joined, pa.ChunkedArray):
        joined = joined.combine_chunks()
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)[joined.offset:joined.offset + len(joined) + 1]
    offsets = offsets.astype(np.int64)
    data = memoryview(joined.buffers()[2])[offsets[0]:offsets[-1]]
    return _Lines(data, offsets - offsets[0])

