"""A landing file as the steps read it: compressed deliveries decompressed, every name kept from DuckDB
(docs/design.md §1, reading a file).

Mediation often delivers gzip, bzip2 or zstd. A compressed file is told by its first bytes, never by its
name (a gzip stream named `.csv` is one), and read as its decompressed content: the plan's pass
(`steps.lines.fingerprint`) hashes the delivered bytes — the sha256 that makes a re-run `known` — while
counting the lines of what they decompress to; `readable_copy` then decompresses the file once more into
the run's work dir, streaming, for the reader. A stream that is truncated or corrupt, that holds another
compressed stream, or that decompresses to more than `MAX_EXPANSION` times its size and more than
`MAX_DECOMPRESSED_FLOOR` bytes (a decompression bomb) is refused whole with a reason, its readable lines
counted as read and refused.

A landing name is never handed to DuckDB: `read_csv` globs the path string it is given (`*`, `?`, `[`), and
a name may hold any byte. Every file is read through an alias in the work dir named by its sha256 — a
symlink to the landing file, or the decompressed copy. Work dirs are removed by the run.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from transforms.lake.permissions import make_dirs

# Magic numbers of the streams read (RFC 1952 §2.3.1; bzip2's "BZh" + block size; RFC 8878 §3.1.1).
MAGIC = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "zstd": b"\x28\xb5\x2f\xfd"}
# Decompression bomb guard: a stream may grow to MAX_EXPANSION times its delivered size, or to
# MAX_DECOMPRESSED_FLOOR bytes whichever is more (CDR text compresses 5-30x; a bomb thousands of times).
MAX_EXPANSION = 200
MAX_DECOMPRESSED_FLOOR = 1 << 30
_OUT_CHUNK = 1 << 20        # decompressed bytes per step: memory stays flat whatever the stream
_ZSTD_IN_CHUNK = 2048       # zstd's decompressobj has no output limit: small inputs bound each step's output


class StreamFault(Exception):
    """A compressed delivery that cannot be read whole; `what` says why, without any of its content."""

    def __init__(self, what: str, *, counts_lines: bool = True):
        super().__init__(what)
        self.what, self.counts_lines = what, counts_lines   # counts_lines: the lines read before it matter


def compression_of(head: bytes) -> str | None:
    """gzip, bzip2 or zstd by the stream's first bytes; None for anything else."""
    if head[:3] == MAGIC["bzip2"] and head[3:4].isdigit() and head[3:4] != b"0":
        return "bzip2"
    return next((kind for kind, magic in MAGIC.items() if kind != "bzip2" and head.startswith(magic)), None)


def decompressed_limit(delivered_bytes: int) -> int:
    """How many decompressed bytes a delivery of this size may give before it is refused as a bomb."""
    return max(MAX_EXPANSION * delivered_bytes, MAX_DECOMPRESSED_FLOOR)


class HashingReader:
    """A binary file read through once, its sha256 taken on the way (the decompressors read from it)."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.sha = fh, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.sha.update(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> str:
        """Hash the rest of the file (bytes after a stream's end, or after a fault); the digest."""
        for chunk in iter(lambda: self.read(1 << 20), b""):
            pass
        return self.sha.hexdigest()


def decompressed(raw: HashingReader, kind: str, limit: int) -> Iterator[bytes]:
    """The decompressed content of the stream `raw`, in chunks of at most about a MiB.

    Raises StreamFault when the stream ends early, is corrupt, or gives more than `limit` bytes.
    """
    total = 0
    try:
        for chunk in (_zstd_chunks(raw) if kind == "zstd" else _library_chunks(raw, kind)):
            total += len(chunk)
            if total > limit:
                raise StreamFault(f"{kind} stream decompresses to more than {MAX_EXPANSION} times its size and"
                                  f" {MAX_DECOMPRESSED_FLOOR >> 20:,} MiB (decompression bomb guard); refused")
            yield chunk
    except EOFError:
        raise StreamFault(f"{kind} stream truncated") from None
    except (OSError, zlib.error, ValueError) as exc:       # BadGzipFile is an OSError; bz2 raises OSError
        raise StreamFault(f"{kind} stream corrupt ({type(exc).__name__})") from None
    except Exception as exc:
        if type(exc).__name__ == "ZstdError":
            raise StreamFault(f"{kind} stream corrupt ({type(exc).__name__})") from None
        raise


def _library_chunks(raw: HashingReader, kind: str) -> Iterator[bytes]:
    # read1: one bounded step of the decompressor, so what came before a fault is counted.
    # Concatenated gzip members and bzip2 streams are read as one (the standard library's readers do).
    reader = gzip.GzipFile(fileobj=raw, mode="rb") if kind == "gzip" else bz2.BZ2File(raw, mode="rb")
    with reader:
        yield from iter(lambda: reader.read1(_OUT_CHUNK), b"")


def _zstd_chunks(raw: HashingReader) -> Iterator[bytes]:
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    obj, pending, fed = dctx.decompressobj(), b"", False
    while True:
        data = pending or raw.read(_ZSTD_IN_CHUNK)
        pending = b""
        if not data:
            break
        out = obj.decompress(data)
        fed = True
        if out:
            yield out
        if obj.eof:             # a frame ended: the next one (concatenated frames) needs a new decoder
            pending, obj, fed = obj.unused_data, dctx.decompressobj(), False
    if fed and not obj.eof:
        raise EOFError("zstd frame not finished")


def readable_copy(path: Path, key: str, compression: str | None, work_dir: Path) -> Path:
    """The path the steps read the landing file `path` from, under `work_dir`, named by `key` (in a run, the
    file's sha256): its decompressed content for a compressed delivery, else a symlink to it (a name DuckDB
    cannot glob)."""
    make_dirs(work_dir)
    alias = work_dir / f"delivered-{key[:16]}"
    alias.unlink(missing_ok=True)
    if compression is None:
        os.symlink(os.fspath(Path(path).absolute()), alias)
        return alias
    try:
        with open(path, "rb") as fh, open(alias, "wb") as out:
            limit = decompressed_limit(os.fstat(fh.fileno()).st_size)
            for chunk in decompressed(HashingReader(fh), compression, limit):
                out.write(chunk)
    except BaseException:
        alias.unlink(missing_ok=True)       # nothing half-decompressed is left to be read
        raise
    return alias
