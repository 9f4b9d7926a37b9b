"""A landing file as physical lines: what one pass over it tells, the copies a reader needs, and a walk
over its lines as a strict CSV reader sees them (docs/design.md §1, reading a file).

The night's plan takes `fingerprint` (sha256, physical lines, line endings) once per file. The reader
(`steps.reading`) asks this module where lines are: the line of a byte offset, the blank lines that end a
file, the blank and comment lines and the extent of broken records (`scan_lines`); and for copies it can
read: every line ending as LF (`plain_line_endings`), every byte as a Latin-1 character
(`latin1_as_utf8`), chosen lines only (`copy_lines`). Plain Python over bytes, streaming, no SQL.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from transforms.formats.recognize import head_text, records
from transforms.steps.delivery import HashingReader, StreamFault, compression_of, decompressed, decompressed_limit

LINE_ENDINGS = ("lf", "crlf", "cr", "mixed")


@dataclass(frozen=True)
class FileShape:
    """What one streaming pass over a landing file tells: its digest, physical lines and line endings.

    Of a compressed delivery (steps.delivery), the digest is of the delivered bytes and the lines and line
    endings are of its decompressed content; `fault` says why that content cannot be read whole.
    """

    sha256: str
    lines: int | None            # LF, CRLF and a lone CR each end a line; None for Parquet
    line_endings: str | None     # lf | crlf | cr | mixed; None for Parquet or a file without a line break
    compression: str | None = None   # gzip | bzip2 | zstd, told by the first bytes
    fault: str | None = None     # a compressed stream not readable whole: why (lines: those read before it)
    content_sha256: str | None = None   # its content's, decompressed and line endings LF (None: the bytes are it)

    @property
    def content(self) -> str:
        """What the delivery holds, as a digest: a compressed file, a CRLF re-export and a plain LF copy of the same
        content are one."""
        return self.content_sha256 or self.sha256


@dataclass(frozen=True)
class Layout:
    """How the records of a delimited file are written: a format's declared values or the sniffed ones."""

    n_columns: int
    header: bool
    delimiter: str = ","
    quote: str = '"'
    comment: str | None = None


def fingerprint(path: Path) -> FileShape:
    """sha256, physical lines and line endings of a file, in one streaming pass."""
    with open(path, "rb") as fh:
        return fingerprint_file(fh)


def fingerprint_file(fh: BinaryIO) -> FileShape:
    """`fingerprint` of an open regular file, read from its start; a compressed one's lines and line endings
    are its decompressed content's (docs/design.md §1, reading a file)."""
    compression = compression_of(fh.read(4))
    fh.seek(0)
    raw = HashingReader(fh)
    if compression:
        content = decompressed(raw, compression, decompressed_limit(os.fstat(fh.fileno()).st_size))
    else:
        content = iter(lambda: raw.read(1 << 20), b"")
    lf, cr, crlf, first, last, fault = 0, 0, 0, b"", b"", None
    content_digest = _ContentDigest(fh, compressed=bool(compression))
    try:
        for chunk in content:
            if not first:
                first = chunk[:4]
                inner = compression and compression_of(first)
                if inner:
                    raise StreamFault(f"{compression} stream holds a {inner} stream (compressed twice); not read",
                                      counts_lines=False)
                content_digest.binary = first == b"PAR1"
            lf += chunk.count(b"\n")
            # Most files hold no CR at all: a search (memchr) says so at a fraction of two counts' cost, which
            # were two thirds of the plan's time (benchmarks/README.md, issue 17).
            has_cr = b"\r" in chunk
            if has_cr:
                cr, crlf = cr + chunk.count(b"\r"), crlf + chunk.count(b"\r\n")
            crlf += last == b"\r" and chunk[:1] == b"\n"     # a CRLF split between two chunks
            last = chunk[-1:]
            content_digest.update(chunk, has_cr)
    except StreamFault as exc:
        fault = exc
    digest = raw.drain()
    if first == b"PAR1" and not fault:
        return FileShape(digest, None, None, compression, content_sha256=content_digest.hexdigest())
    kinds = [kind for kind, n in (("lf", lf - crlf), ("crlf", crlf), ("cr", cr - crlf)) if n]
    endings = kinds[0] if len(kinds) == 1 else ("mixed" if kinds else None)
    if fault:     # only the lines that ended before the fault were readable
        lines = lf + cr - crlf
        why = f"{fault.what} after {lines:,} line(s)" if fault.counts_lines else fault.what
        return FileShape(digest, lines, endings, compression, why)
    unterminated = bool(last) and last not in (b"\n", b"\r")
    return FileShape(digest, lf + cr - crlf + unterminated, endings, compression,
                     content_sha256=content_digest.hexdigest())


class _ContentDigest:
    """The sha256 of what a delivery holds as its rows see it: decompressed, every line ending made LF (docs/design.md
    §1, duplicate files). The same rows delivered plain and gzipped, or re-exported with CRLF endings, are one
    delivery. Taken only where it differs from the bytes' own: from the start for a compressed delivery, and for a
    plain text file from its first CR on (the bytes before it are hashed again from the file: they are its content
    as they are). Binary content (Parquet) is hashed as it is."""

    def __init__(self, fh: BinaryIO, *, compressed: bool):
        self.fh, self.sha = fh, hashlib.sha256() if compressed else None
        self.seen, self.lf, self.binary = 0, LfEndings(), False

    def update(self, chunk: bytes, has_cr: bool) -> None:
        if self.sha is None and has_cr and not self.binary:
            self.sha = hashlib.sha256()
            for at in range(0, self.seen, 1 << 20):          # the plain bytes before: no CR among them
                self.sha.update(os.pread(self.fh.fileno(), min(1 << 20, self.seen - at), at))
        self.seen += len(chunk)
        if self.sha is None:
            return
        self.sha.update(chunk if self.binary else self.lf.feed(chunk))

    def hexdigest(self) -> str | None:
        if self.sha is None:
            return None
        self.sha.update(self.lf.end())
        return self.sha.hexdigest()


def plain_line_endings(path: Path, shape: FileShape, work_dir: Path) -> Path:
    """The file itself when DuckDB reads its line endings as they are (LF or CRLF throughout); otherwise a
    copy under `work_dir` with every line ending as LF — the same lines, so the same line numbers."""
    if shape.line_endings not in ("cr", "mixed"):
        return path
    out = work_dir / "line_endings_lf.txt"
    lf = LfEndings()
    with open(path, "rb") as src, open(out, "wb") as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            dst.write(lf.feed(chunk))
        dst.write(lf.end())
    return out


class LfEndings:
    """Chunks of a byte stream with every CRLF and lone CR made LF, a CRLF split between two chunks included: the
    copy DuckDB reads (`plain_line_endings`) and the content a delivery is known by (`_ContentDigest`)."""

    def __init__(self) -> None:
        self.carry = b""

    def feed(self, chunk: bytes) -> bytes:
        chunk, self.carry = self.carry + chunk, b""
        if chunk.endswith(b"\r"):                 # maybe the first half of a CRLF
            chunk, self.carry = chunk[:-1], b"\r"
        return chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if b"\r" in chunk else chunk

    def end(self) -> bytes:
        """What the stream's last chunk held back: a final lone CR, as LF."""
        rest, self.carry = self.carry.replace(b"\r", b"\n"), b""
        return rest


def latin1_as_utf8(path: Path, work_dir: Path) -> Path:
    """A copy of the file with every byte read as the Latin-1 character of that value, written as UTF-8:
    the same lines, every one readable; `utf8_of_latin1` turns a field back into its own bytes' UTF-8."""
    out = work_dir / "latin1_as_utf8.txt"
    with open(path, "rb") as src, open(out, "wb") as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            dst.write(chunk.decode("latin-1").encode("utf-8"))
    return out


def header_lines(head: bytes, layout: Layout) -> int:
    """Physical lines the header (the first record of `head`) takes: a quoted name may hold line breaks."""
    if not layout.header:
        return 0
    first = next(iter(records(head_text(head), layout.delimiter, layout.quote, limit=1)), ())
    return 1 + sum(name.count("\n") for name in first)


def line_numbers(path: Path, offsets: list[int]) -> dict[int, int]:
    """The 1-based line of the file each byte offset lies on, in one streaming pass."""
    wanted, found, breaks, done = sorted(set(offsets)), {}, 0, 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            while len(found) < len(wanted) and wanted[len(found)] < done + len(chunk):
                offset = wanted[len(found)]
                found[offset] = 1 + breaks + chunk.count(b"\n", 0, offset - done)
            if len(found) == len(wanted):
                break
            breaks += chunk.count(b"\n")
            done += len(chunk)
    return {**found, **{offset: 1 + breaks for offset in wanted[len(found):]}}


def trailing_blank_lines(path: Path) -> int:
    """How many blank lines end the file (read from its last bytes only)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(size - (1 << 16), 0))
        tail = fh.read()
    body = tail.rstrip(b"\r\n")
    if not body and size > len(tail):
        return 0          # more than 64 KiB of line breaks: let the scan count them
    ends = tail[len(body):].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    # The first line break ends the last line with content; every further one ends a blank line.
    return max(len(ends) - (1 if body else 0), 0)


def scan_lines(path: Path, layout: Layout, header: int,
                rejected_starts: set[int]) -> tuple[list[int], dict[int, tuple[int, bool]]]:
    """Walk the file's lines as a strict reader does: the blank and comment lines it skips (outside any
    record), and for each record starting on one of `rejected_starts` how many lines it ran over and
    whether a stray quote made it run over them (its quote never closed, or text followed it)."""
    q, d = layout.quote.encode(), layout.delimiter.encode()
    c = layout.comment.encode() if layout.comment else None
    silent, extents = [], {}
    in_quote, broken, start, n = False, False, 0, 0
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if n <= header:
                continue
            body = raw.rstrip(b"\r\n")
            if not in_quote:
                if not body or (c is not None and body.startswith(c)):
                    silent.append(n)
                    continue
                start = n
            in_quote, broken = quote_open_after(body, q, d, in_quote)
            if not in_quote and start in rejected_starts:
                extents[start] = (n - start + 1, broken)
    if in_quote and start in rejected_starts:
        extents[start] = (n - start + 1, True)          # a quote open until the end of the file
    return silent, extents


def record_extents(path: Path, layout: Layout, starts: dict[int, int]) -> dict[int, tuple[int, bool]]:
    """For records starting on line → byte offset `starts`: how many lines each ran over, and whether a
    stray quote made it (as `scan_lines`), walking from each record's first byte only."""
    q, d = layout.quote.encode(), layout.delimiter.encode()
    extents = {}
    with open(path, "rb") as fh:
        for line, offset in sorted(starts.items()):
            fh.seek(offset)
            in_quote, broken, n = False, False, 0
            for n, raw in enumerate(fh, start=1):
                in_quote, broken = quote_open_after(raw.rstrip(b"\r\n"), q, d, in_quote)
                if not in_quote:
                    break
            extents[line] = (max(n, 1), broken or in_quote)      # a quote open until the end of the file
    return extents


def quote_open_after(body: bytes, q: bytes, d: bytes, in_quote: bool) -> tuple[bool, bool]:
    """Whether a quoted field is still open at the end of the line `body` (the record goes on), and
    whether the record broke on this line.

    A quote opens a field only at its start; inside, a doubled quote is one quote character, and a
    closing quote must end the field. Text after a closing quote breaks the record: the reader gives it
    up at the end of that line.
    """
    pos = 0
    while True:
        j = body.find(q, pos)
        if j < 0:
            return in_quote, False
        if in_quote:
            after = body[j + 1:j + 2]
            if after == q:
                pos = j + 2
                continue
            if after in (b"", d):
                in_quote, pos = False, j + 1
                continue
            return False, True
        in_quote = j == 0 or body[j - 1:j] == d
        pos = j + 1


def copy_lines(source: Path, wanted: list[int], dst: Path) -> None:
    """The lines numbered `wanted` (ascending) of `source`, as a file of their own."""
    todo = iter(wanted)
    nxt = next(todo, None)
    with open(source, "rb") as fh, open(dst, "wb") as out:
        for n, raw in enumerate(fh, start=1):
            if nxt is None:
                break
            if n == nxt:
                out.write(raw if raw.endswith(b"\n") else raw + b"\n")
                nxt = next(todo, None)
