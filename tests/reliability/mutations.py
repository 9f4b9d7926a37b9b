"""Seeded, named mutations of landing files: what a landing folder can hold on a bad night.

Plain functions, no test framework: `mutated_night(sources, rng, n)` returns the entries of one landing
folder, each named by the mutation that made it, so a failing check names the mutation and the seed
reproduces it byte for byte (same seed, same sources ⇒ same folder). The README's "Bad input" list and
docs/design.md §9 say what the pipeline must make of each: loaded or quarantined row by row, refused whole,
or ignored — and recorded either way.
"""

from __future__ import annotations

import gzip
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

EOL = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Source:
    """A file the mutations start from: a generated night's file or a format fixture."""

    name: str
    data: bytes
    header: bool                  # its first line names the columns
    records: int | None           # its data records, known independently (generator manifest / fixture lines)
    parquet: bool = False

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Entry:
    """One landing entry to create."""

    mutation: str
    name: bytes                    # raw bytes: names need not be UTF-8
    kind: str = "file"             # file | symlink | fifo | dir
    data: bytes = b""
    target: str = ""               # symlink target
    records: int | None = None     # data records the pipeline must read when it reads the file row by row
    source: str = ""
    notes: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ helpers

def lines_of(data: bytes) -> list[bytes]:
    """Physical lines, as docs/design.md's reader sees them: LF, CRLF and lone CR each end one."""
    parts = EOL.split(data)
    return parts[:-1] if parts and parts[-1] == b"" else parts


def text_lines(src: Source) -> list[bytes]:
    return lines_of(src.data)


def join(lines: list[bytes], eol: bytes = b"\n") -> bytes:
    return eol.join(lines) + eol


def split_fields(line: bytes, delim: bytes = b",") -> list[bytes]:
    """Split on the delimiter outside double quotes (enough for the sources here: RFC 4180 quoting)."""
    out, cur, quoted = [], bytearray(), False
    for ch in line:
        c = bytes([ch])
        if c == b'"':
            quoted = not quoted
            cur += c
        elif c == delim and not quoted:
            out.append(bytes(cur))
            cur = bytearray()
        else:
            cur += c
    out.append(bytes(cur))
    return out


def table(src: Source) -> tuple[list[bytes] | None, list[list[bytes]]]:
    lines = text_lines(src)
    if src.header:
        return split_fields(lines[0]), [split_fields(l) for l in lines[1:]]
    return None, [split_fields(l) for l in lines]


def untable(header: list[bytes] | None, rows: list[list[bytes]]) -> bytes:
    lines = ([b",".join(header)] if header is not None else []) + [b",".join(r) for r in rows]
    return join(lines)


def same(src: Source) -> int | None:
    return src.records


# ------------------------------------------------------------------------------------- content mutations
# Each: (rng, source) -> (bytes, records the reader must count, or None when the mutation makes that unknowable
# from the bytes alone — a cut record, a swapped delimiter — and the checks fall back to bounds).

def utf16le_bom(rng, src):
    return b"\xff\xfe" + src.data.decode("utf-8", "replace").encode("utf-16-le"), None


def utf16be_bom(rng, src):
    return b"\xfe\xff" + src.data.decode("utf-8", "replace").encode("utf-16-be"), None


def utf8_bom(rng, src):
    return b"\xef\xbb\xbf" + src.data, same(src)


def cp1250_bytes(rng, src):
    # Windows-1250 text (Slovenian names) where UTF-8 is expected, in a random data line's last field.
    lines = text_lines(src)
    first = 1 if src.header else 0
    if len(lines) > first:
        i = rng.randrange(first, len(lines))
        lines[i] = lines[i] + "Žiga Čeh š".encode("cp1250")
    return join(lines), None


def latin1_bytes(rng, src):
    return src.data.decode("utf-8", "replace").encode("latin-1", "replace") + "Müller é\n".encode("latin-1"), None


def crlf(rng, src):
    return join(text_lines(src), b"\r\n"), same(src)


def lone_cr(rng, src):
    return join(text_lines(src), b"\r"), same(src)


def mixed_eol(rng, src):
    lines = text_lines(src)
    return b"".join(l + rng.choice([b"\n", b"\r\n", b"\r"]) for l in lines), same(src)


def delimiter_swap(rng, src):
    header, rows = table(src)
    d = rng.choice([b";", b"\t", b"|"])
    lines = ([d.join(header)] if header is not None else []) + [d.join(r) for r in rows]
    return join(lines), None


def truncate_mid_record(rng, src):
    lines = text_lines(src)
    body = join(lines)
    start = len(join(lines[:1])) if len(lines) > 1 else 0
    cut = rng.randrange(start, len(body)) if len(body) > start else len(body)
    return body[:cut], None


def truncate_mid_multibyte(rng, src):
    data = src.data
    at = [m.start() for m in re.finditer(rb"[\xc2-\xf4][\x80-\xbf]", data)]
    if not at:
        data = data.rstrip(b"\r\n") + "Žiga".encode()
        at = [len(data) - 5]
    cut = rng.choice(at) + 1          # after the lead byte: half a character at the end of the file
    return data[:cut], None


def nul_bytes(rng, src):
    data = bytearray(src.data)
    for _ in range(rng.randint(1, 4)):
        data.insert(rng.randrange(0, len(data) + 1), 0)
    return bytes(data), None


def megabyte_line(rng, src):
    lines = text_lines(src)
    size = rng.randint(2 << 20, 4 << 20)
    i = rng.randrange(1 if src.header else 0, len(lines) + 1)
    lines.insert(i, b"X" * size if rng.random() < 0.5 else b",".join([b"9" * (size // 3)] * 3))
    return join(lines), None


def header_repeated(rng, src):
    lines = text_lines(src)
    if len(lines) < 2:
        return join(lines * 2), None
    lines.insert(rng.randrange(1, len(lines) + 1), lines[0])
    return join(lines), None


def drop_header(rng, src):
    # A data row where the header belongs: its values must never become column names in the audit store.
    lines = text_lines(src)
    return join(lines[1:] if src.header else lines), None


def extra_column(rng, src):
    header, rows = table(src)
    at = rng.randrange(0, len(rows[0]) + 1) if rows else 0
    if header is not None:
        header.insert(min(at, len(header)), b"extra_col_%d" % rng.randrange(100))
    for r in rows:
        r.insert(min(at, len(r)), b"%d" % rng.randrange(1000))
    return untable(header, rows), (src.records if header is not None else None)


def missing_column(rng, src):
    header, rows = table(src)
    width = len(header) if header is not None else (len(rows[0]) if rows else 0)
    if width < 2:
        return src.data, None
    at = rng.randrange(width)
    if header is not None:
        del header[at]
    for r in rows:
        if at < len(r):
            del r[at]
    return untable(header, rows), None


def reordered_columns(rng, src):
    header, rows = table(src)
    if header is None or not rows:
        return src.data, None
    order = list(range(len(header)))
    rng.shuffle(order)
    pick = lambda r: [r[i] if i < len(r) else b"" for i in order] + r[len(order):]  # noqa: E731
    return untable(pick(header), [pick(r) for r in rows]), same(src)


HOSTILE_COLUMN_NAMES = [
    b'"quoted ""name"""', b"'; DROP TABLE source_files; --", b"x\" OR 1=1 --", b"C" * 6000, b"", b'""',
    "število_klicev".encode(), "名前".encode(), b"tab\there", b"bell\x07\x1b[31mred", b"a\x00b",
    b"origin_number", b"__proto__", b"${HOME}", b"%s%s%n", b"../../etc/passwd", b"NULL",
]


def hostile_column_names(rng, src):
    header, rows = table(src)
    if header is None:
        return src.data, None
    for i in rng.sample(range(len(header)), k=min(len(header), rng.randint(1, 4))):
        header[i] = rng.choice(HOSTILE_COLUMN_NAMES)
    if rng.random() < 0.5 and len(header) > 2:          # a duplicate name as well
        header[rng.randrange(len(header))] = header[0]
    return untable(header, rows), None


def stray_quote(rng, src):
    lines = text_lines(src)
    first = 1 if src.header else 0
    if len(lines) > first:
        i = rng.randrange(first, len(lines))
        pos = rng.randrange(0, len(lines[i]) + 1)
        lines[i] = lines[i][:pos] + b'"' + lines[i][pos:]
    return join(lines), None


def blank_lines(rng, src):
    # README "How a file is read": blank lines are not records, so the count stays the source's. Not before a
    # header: that reads the header as a record, a known bug with its own strict xfail (test_found_bugs.py).
    lines = text_lines(src)
    for _ in range(rng.randint(1, 5)):
        lines.insert(rng.randrange(1 if src.header else 0, len(lines) + 1), b"")
    return join(lines), same(src)


def whitespace_lines(rng, src):
    lines = text_lines(src)
    for _ in range(rng.randint(1, 5)):
        lines.insert(rng.randrange(1 if src.header else 0, len(lines) + 1), rng.choice([b" ", b"   ", b"\t"]))
    return join(lines), None


def only_blank_lines(rng, src):
    return rng.choice([b"\n", b"\r\n", b"\n\n\n", b"\r\n\r\n"]), 0


def gzip_named_csv(rng, src):
    return gzip.compress(src.data, mtime=0), same(src)


def empty(rng, src):
    return b"", 0


def header_only(rng, src):
    lines = text_lines(src)
    return join(lines[:1]), (0 if src.header else 1)


def binary_garbage(rng, src):
    return rng.randbytes(rng.randint(1, 50_000)), None


def parquet_truncated(rng, src):
    cut = rng.randrange(1, max(2, len(src.data)))
    return src.data[:cut], None


CONTENT: dict[str, Callable] = {f.__name__: f for f in (
    utf16le_bom, utf16be_bom, utf8_bom, cp1250_bytes, latin1_bytes, crlf, lone_cr, mixed_eol, delimiter_swap,
    truncate_mid_record, truncate_mid_multibyte, nul_bytes, megabyte_line, header_repeated, drop_header,
    extra_column, missing_column, reordered_columns, hostile_column_names, stray_quote, blank_lines,
    whitespace_lines, only_blank_lines, empty, header_only, binary_garbage)}
# Byte mutations that make sense for a Parquet source.
PARQUET_CONTENT = ("parquet_truncated", "nul_bytes", "binary_garbage", "empty", "utf8_bom")
def gzip_named_csv_gz(rng, src):
    return gzip.compress(src.data, mtime=1), same(src)     # other bytes than gzip_named_csv's: not a copy


# gzip content, named .csv and .csv.gz (docs/design.md §1); non-UTF-8 names are added with them.
GZIP = {"gzip_named_csv": gzip_named_csv, "gzip_named_csv_gz": gzip_named_csv_gz}


# ------------------------------------------------------------------------------------- names and entries

def hostile_name(rng, i: int, stem: str) -> bytes:
    kind = rng.choice(["dash", "newline", "long", "glob", "space_unicode", "semicolon", "percent"])
    return {
        "dash": b"-%d_%s.csv" % (i, stem.encode()),
        "newline": b"m%d\n%s.csv" % (i, stem.encode()),
        "long": (b"m%d_" % i + stem.encode() + b"_" + b"L" * 250)[:246] + b".csv",
        "glob": b"m%d_[a-z]*?{x,y}.csv" % i,
        "space_unicode": ("m%d ž Čeh %s .csv" % (i, stem)).encode(),
        "semicolon": b"m%d;rm -rf ~;'%s'.csv" % (i, stem.encode()),
        "percent": b"m%d_%%s%%n%%x.csv" % i,
    }[kind]


NON_UTF8_NAMES = (b"ra\xe8un_%d.csv", b"\xff\xfe_%d.csv", b"klic_\xc8_%d.csv")


def mutated_night(sources: list[Source], rng: random.Random, n: int, *, outside: str,
                  names_and_gzip: bool = False) -> list[Entry]:
    """`n` landing entries: every content mutation in turn (so a folder of ≥ 25 holds each), over random
    sources, some under hostile names, plus hidden files, symlinks (inside and `outside` the landing), a FIFO
    and a folder. `names_and_gzip`: also non-UTF-8 names and gzip content, first in the folder (a small night gets both)."""
    content = dict(CONTENT)
    kinds = list(content)
    rng.shuffle(kinds)
    if names_and_gzip:
        content.update(GZIP)
        kinds = list(GZIP) + kinds
    entries: list[Entry] = []
    specials = ["hidden", "symlink_inside", "symlink_outside", "fifo", "dir"]
    if names_and_gzip:
        specials += ["non_utf8_name"] * 3
    text_sources = [s for s in sources if not s.parquet]
    parquet_sources = [s for s in sources if s.parquet]
    for i in range(n):
        special = specials[i] if i < len(specials) else None
        src = rng.choice(sources)
        if special == "hidden":
            entries.append(Entry("hidden", b".m%d_%s.csv" % (i, src.stem.encode()), data=src.data, source=src.name))
            continue
        if special == "symlink_inside":
            entries.append(Entry("symlink_inside", b"m%d_link.csv" % i, kind="symlink", target="__first_file__"))
            continue
        if special == "symlink_outside":
            entries.append(Entry("symlink_outside", b"m%d_out.csv" % i, kind="symlink", target=outside))
            continue
        if special == "fifo":
            entries.append(Entry("fifo", b"m%d_pipe.csv" % i, kind="fifo"))
            continue
        if special == "dir":
            entries.append(Entry("dir", b"m%d_dir.csv" % i, kind="dir"))
            continue
        if parquet_sources and rng.random() < 0.1:
            src = rng.choice(parquet_sources)
            mutation = rng.choice(PARQUET_CONTENT)
            fn = parquet_truncated if mutation == "parquet_truncated" else CONTENT[mutation]
        else:
            src = rng.choice(text_sources)
            mutation = kinds[(i - len(specials)) % len(kinds)]
            fn = content[mutation]
        data, records = fn(rng, src)
        ext = ".parquet" if src.parquet and mutation != "empty" else ".csv"
        if mutation == "gzip_named_csv_gz":
            ext = ".csv.gz"
        if special == "non_utf8_name":
            name = rng.choice(NON_UTF8_NAMES) % i
            mutation = f"non_utf8_name+{mutation}"
        elif rng.random() < 0.2:
            name = hostile_name(rng, i, src.stem)
            mutation = f"hostile_name+{mutation}"
        else:
            name = b"m%02d_%s_%s%s" % (i, mutation.encode(), src.stem.encode(), ext.encode())
        entries.append(Entry(mutation, name, data=data, records=records, source=src.name))
    return entries


def write_entries(landing: Path, entries: list[Entry]) -> None:
    import os

    landing.mkdir(parents=True, exist_ok=True)
    base = os.fsencode(landing)
    first_file = next(e.name for e in entries if e.kind == "file" and not e.name.startswith(b"."))
    for e in entries:
        path = os.path.join(base, e.name)
        if e.kind == "file":
            with open(path, "wb") as f:
                f.write(e.data)
        elif e.kind == "symlink":
            os.symlink(first_file if e.target == "__first_file__" else os.fsencode(e.target), path)
        elif e.kind == "fifo":
            os.mkfifo(path)
        elif e.kind == "dir":
            os.mkdir(path)
            with open(os.path.join(path, b"inner.csv"), "wb") as f:
                f.write(b"a,b\n1,2\n")


def load_sources(generated: Path, manifest, fixtures: Path) -> list[Source]:
    """The generated night's files (record counts from its manifest) and the format fixtures (records =
    lines, minus the header of header formats)."""
    out = []
    for p in sorted(generated.iterdir()):
        fm = manifest.files.get(p.name)
        if fm is None or p.stat().st_size == 0 or p.name.startswith(("header_only", "empty")):
            continue
        headerless = p.name.startswith(("asterisk", "freeswitch"))
        out.append(Source(p.name, p.read_bytes(), header=not headerless, records=fm.rows,
                          parquet=p.suffix == ".parquet"))
    for p in sorted(fixtures.glob("*.csv")):
        headerless = p.name.startswith(("asterisk", "freeswitch"))
        lines = [l for l in lines_of(p.read_bytes()) if l.strip()]
        out.append(Source("fx_" + p.name, p.read_bytes(), header=not headerless,
                          records=len(lines) - (0 if headerless else 1)))
    return out
