"""Find raw personal values (or secrets) anywhere in a tree of output files.

Parquet, DuckDB and SQLite files are read back as text (so compressed pages are
searched decompressed, and every table of a database is dumped) and their raw
bytes are searched too (footers and statistics hold min/max values uncompressed).
A needle may be text or bytes (a raw key).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb


def _texts(path: Path) -> list[bytes]:
    raw = path.read_bytes()
    if path.suffix == ".parquet":
        con = duckdb.connect()
        rows = con.execute("SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
        con.close()
        return [raw, "\n".join(map(repr, rows)).encode()]
    if path.suffix == ".duckdb":
        con = duckdb.connect(str(path), read_only=True)
        tables = [t[0] for t in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        dump = "\n".join(repr(con.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)
        con.close()
        return [raw, dump.encode()]
    if raw.startswith(b"SQLite format 3\x00"):       # e.g. Airflow's metadata DB: every table as SQL text
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        dump = "\n".join(con.iterdump())
        con.close()
        return [raw, dump.encode()]
    return [raw]


def scan(roots: list[Path], needles: list[str | bytes], extra_text: str | bytes = "") -> dict:
    """Map each needle found to the files (or '<text>') it was found in."""
    wanted = [(n, n if isinstance(n, bytes) else n.encode()) for n in needles if n]
    if isinstance(extra_text, str):
        extra_text = extra_text.encode("utf-8", "surrogateescape")
    hits: dict[str, list[str]] = {}
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            for blob in _texts(path):
                for n, b in wanted:
                    if b in blob:
                        hits.setdefault(n, []).append(str(path))
    for n, b in wanted:
        if b in extra_text:
            hits.setdefault(n, []).append("<text>")
    return hits


def identifier_variants(msisdns, imsis, imeis, cells) -> list[str]:
    """Raw identifiers as they could appear: E.164 with and without '+', national form."""
    out = []
    for m in msisdns:
        digits = m.lstrip("+")
        out += [m, digits, "0" + digits[3:]]
    # Short or all-digit cell ids would match counts by chance; hex ids with letters are distinctive.
    return out + list(imsis) + list(imeis) + [c for c in cells if len(c) >= 6 and any(ch.isalpha() for ch in c)]


def night_identifiers(manifest) -> list[str]:
    """Every raw identifier sample of a generated night: the CDRs' and the payments extract's (numbers, accounts)."""
    numbers = list(dict.fromkeys([*manifest.msisdns, *manifest.payment_msisdns]))
    return identifier_variants(numbers, manifest.imsis, manifest.imeis, manifest.cell_ids) + list(manifest.account_ids)
