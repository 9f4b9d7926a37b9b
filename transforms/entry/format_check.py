"""`cdr-audit formats`: list the source formats, show one, and check a file against them before its first
night — which format it is and why, what becomes of each column, how many records parse, and why the
others would be quarantined. Counts and names only, never a value from the file (docs/design.md §1).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from transforms.formats import Format, FormatCatalog
from transforms.formats.model import CallingCode, Cases, Column, Constant, First, ImeiFromImeisv, PlmnArea, Sum
from transforms.formats.recognize import Detection, detect
from transforms.lake.connection import connect, execute
from transforms.policy import Policy
from transforms.privacy.redact import safe_error, safe_name, shorten
from transforms.steps.delivery import compression_of, readable_copy
from transforms.steps.fieldcheck import check_fields
from transforms.steps.ingest import ingest_file
from transforms.steps.reading import HEAD_BYTES, INGEST_FLAG
from transforms.steps.validate import DUPLICATE, load_rules, typed_select


@dataclass(frozen=True)
class CheckResult:
    outcome: str          # fits | fits_with_rejects | no_format (refused: no format fits, or its reader gives up)
    text: str


def listing(formats: FormatCatalog) -> str:
    lines = [f"{len(formats.formats)} formats (from {', '.join(formats.folders)}):"]
    for f in formats.formats:
        kind = "refused" if f.refuse else f"{f.container}, {'header' if f.header else 'no header'}"
        lines.append(f"  {f.name:<26} {kind:<22} {f.title}")
    lines.append("  payments                   csv, header            the payments / invoice-status extract "
                 "(its own step)")
    lines.append("  consents                   csv, header            the consent extract (its own step, into the"
                 " consent register)")
    return "\n".join(lines)


def describe(fmt: Format, policy: Policy) -> str:
    """One format in words: where it is from, how it is recognised, what feeds each canonical column."""
    lines = [f"{fmt.name}: {fmt.title}", f"  file: {fmt.path}"]
    if fmt.refuse:
        return "\n".join(lines + [f"  refused: files of it are {fmt.refuse}"])
    delimiter = f"delimiter {fmt.delimiter!r}" if fmt.delimiter else "delimiter sniffed from the file"
    lines.append(f"  {fmt.container}, {'header row' if fmt.header else 'no header'}, {delimiter}")
    lines.append(f"  times without an offset: {fmt.timezone}")
    columns = policy.allowed_columns if fmt.canonical else fmt.columns
    if columns:
        lines.append(f"  columns ({len(columns)}): {', '.join(columns)}")
    lines.append("  canonical column ← derivation:")
    for canonical, d in fmt.map:
        lines.append(f"    {canonical:<22} ← {_words(d)}")
    if fmt.answered:
        lines.append(f"  unanswered legs (not {', '.join(fmt.answered.values)} in {fmt.answered.column}):"
                     " kept as attempts with duration 0")
    if fmt.not_allowed:
        lines.append(f"  known columns off the list (dropped): {', '.join(fmt.not_allowed)}")
    return "\n".join(lines)


def _words(d) -> str:
    if isinstance(d, Column):
        mods = [m for m, on in (("time " + "/".join(d.time), bool(d.time)), ("hex → decimal", d.hex),
                                ("strip " + ", ".join(d.strip_prefixes), bool(d.strip_prefixes)),
                                ("international prefixes " + ", ".join(d.international_prefixes),
                                 bool(d.international_prefixes)),
                                ("E.164 digits", d.e164_digits), ("lower case", d.lowercase)) if on]
        return d.name + (f" ({'; '.join(mods)})" if mods else "")
    if isinstance(d, Constant):
        return f"constant {d.value!r}"
    if isinstance(d, Sum):
        return " + ".join(_words(p) for p in d.parts)
    if isinstance(d, First):
        return "first of " + ", ".join(_words(p) for p in d.parts)
    if isinstance(d, ImeiFromImeisv):
        return f"IMEI from the IMEISV in {_words(d.part)}"
    if isinstance(d, PlmnArea):
        return f"home / roaming by the serving network in {_words(d.part)}"
    if isinstance(d, CallingCode):
        return f"country calling code of the number in {_words(d.part)}"
    assert isinstance(d, Cases)
    cases = "; ".join(f"{'|'.join(c.patterns)} → {_words(c.then)}" for c in d.cases)
    return f"by {d.column}: {cases}" + (f"; else {_words(d.default)}" if d.default is not None else "")


def check_file(path: Path, policy: Policy, formats: FormatCatalog, *, format_name: str | None = None,
               timezone: str | None = None, records: int = 1000) -> CheckResult:
    """Read the first `records` records of a file as the night would; report in counts and names."""
    path = Path(path)
    name = safe_name(path.name, 120)
    work = Path(tempfile.mkdtemp(prefix="cdr-audit-check-"))
    try:
        # As the night reads it: decompressed when compressed, and never by its own name, which DuckDB would
        # glob (docs/design.md §1).
        with open(path, "rb") as fh:
            compression = compression_of(fh.read(4))
        path = readable_copy(path, "check", compression, work)
        detection = _detect(path, policy, formats, format_name)      # whether a header line comes first
        if detection.format is not None:
            sample = _first_records(path, work / "sample", records, detection.format.header)
            detection = _detect(sample, policy, formats, format_name)  # what ingest sees: the records checked
        if detection.format is None:
            return CheckResult("no_format", f"{name}: no format fits — {detection.reason}")
        why = "forced" if format_name else detection.reason.removeprefix(f"{detection.format.name}: ")
        ingest = ingest_file(sample, policy, formats, work / "ingest", format_override=format_name,
                             timezone=timezone)
        if ingest.status == "rejected_file" or ingest.profile is None:
            # A format fits, but the night would refuse the file all the same (its reader gave up on it).
            return CheckResult("no_format", f"{name}: format {detection.format.name} — {why}; but the file would"
                                            f" be refused: {ingest.reason}")
        lines = [f"{name}: format {ingest.profile} — {why}",
                 f"  {ingest.rows_read:,} record(s) read, {ingest.rows_unparseable:,} unparseable"]
        fields = check_fields(ingest, policy, formats)
        lines.append("  columns:")
        for f in fields.findings:
            feeds = f" → {f.canonical_columns}" if f.canonical_columns else ""
            lines.append(f"    {shorten(f.source_column, 40):<40} {f.classification:<20} {f.action:<8}{feeds}")
        parsed, failing = _parse_counts(ingest.staged_path, policy) if ingest.staged_path else ({}, {})
        lines.append("  canonical columns with values (parsed / present):")
        for column, (ok, present) in parsed.items():
            if present:
                lines.append(f"    {column:<22} {ok:>7,} / {present:<7,}")
        reasons = {**ingest.unparseable_by_reason, **{r: n for r, n in failing.items() if n}}
        lines.append("  would be quarantined, by reason: " + ("; ".join(f"{r} ({n:,})" for r, n in sorted(
            reasons.items(), key=lambda rn: -rn[1])) or "none"))
        return CheckResult("fits_with_rejects" if reasons else "fits", "\n".join(lines))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _detect(path: Path, policy: Policy, formats: FormatCatalog, format_name: str | None) -> Detection:
    """The format ingest will pick for the file, and why: from the same head (Parquet: its column names)."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    parquet_columns = None
    if head[:4] == b"PAR1":
        con = connect()
        try:
            parquet_columns = tuple(d[0] for d in execute(con, "SELECT * FROM read_parquet($p) LIMIT 0",
                                                          {"p": str(path)}).description)
        except duckdb.Error as exc:
            return Detection(None, (), ",", f"unreadable Parquet ({safe_error(exc)})")
        finally:
            con.close()
    return detect(head, formats, policy, override=format_name, parquet_columns=parquet_columns)


def _first_records(src: Path, dst: Path, records: int, header: bool) -> Path:
    """A copy of the file cut after its first `records` records (Parquet: rows; text: lines after the header)."""
    with open(src, "rb") as fh:
        is_parquet = fh.read(4) == b"PAR1"
    if is_parquet:
        con = connect()
        try:
            execute(con, "COPY (SELECT * FROM read_parquet($s) LIMIT $n) TO $d (FORMAT parquet)",
                    {"s": str(src), "n": records, "d": str(dst)})
        finally:
            con.close()
        return dst
    with open(src, "rb") as fh, open(dst, "wb") as out:
        for i, line in enumerate(fh):
            if i >= records + header or out.tell() > 64 * HEAD_BYTES * 16:
                break
            out.write(line)
    return dst


def _parse_counts(staged: str, policy: Policy) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """Per canonical column: (values that parse to its type, values present); per reason validate would give a
    row (a rule, a value that does not cast, a record over several lines, a repeated row): rows with it."""
    rules = load_rules(policy)
    con = connect()
    try:
        counts = ", ".join(f"count({c}) FILTER (WHERE {c}_ok), count({c}_raw)" for c in policy.allowed_columns)
        typed = typed_select(policy)
        oks = ", ".join(f"{c} IS NOT NULL AS {c}_ok" for c in policy.allowed_columns)
        raws = ", ".join(f"r.{c} AS {c}_raw" for c in policy.allowed_columns)
        row = execute(con, f"""SELECT {counts} FROM (SELECT {oks}, * FROM (SELECT {typed}, {raws}
                                                       FROM read_parquet($p) r))""", {"p": staged}).fetchone()
        parsed = {c: (row[2 * i], row[2 * i + 1]) for i, c in enumerate(policy.allowed_columns)}
        failing = execute(con, "SELECT " + ", ".join(f"count(*) FILTER (WHERE {r.predicate})" for r in rules)
                          + f" FROM (SELECT {typed} FROM read_parquet($p))",
                          {"p": staged, **{k: v for r in rules for k, v in r.params.items()}}).fetchone()
        reasons = {r.name: n for r, n in zip(rules, failing, strict=True)}
        # The reasons validate adds beside the suite's rules (transforms/steps/validate.py), named as it names them.
        reasons.update({f"{c}_unparseable": present - ok for c, (ok, present) in parsed.items()})
        reasons.update(execute(con, f"SELECT {INGEST_FLAG}, count(*) FROM read_parquet($p)"
                                    f" WHERE {INGEST_FLAG} IS NOT NULL GROUP BY ALL", {"p": staged}).fetchall())
        raw_cols = ", ".join(f"coalesce({c}, chr(0))" for c in policy.allowed_columns)
        reasons[DUPLICATE] = execute(con, f"SELECT count(*) - count(DISTINCT concat_ws(chr(31), {raw_cols}))"
                                          " FROM read_parquet($p)", {"p": staged}).fetchone()[0]
        return parsed, reasons
    finally:
        con.close()
