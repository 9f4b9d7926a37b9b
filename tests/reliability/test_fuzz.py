"""Seeded mutation fuzzing of whole landing folders through the real CLI (README "Bad input", docs/design.md §9).

Each night is a landing folder of mutated copies of the generated night's files and the format fixtures
(tests/reliability/mutations.py), run with `cdr-audit run`. Whatever a file holds, the run must finish with a
documented exit code and no traceback, record every landing entry once, account for every row it read
(docs/design.md §9: rows_read = rows_loaded + rows_rejected, and the zones hold exactly those rows), read as
many records as the bytes hold where that is known independently, and leak no raw identifier outside the
billing and quarantine zones (docs/design.md §6: the audit store holds no personal data).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.leakscan import night_identifiers, scan
from tests.reliability.conftest import FIXTURE_IDENTIFIERS
from tests.reliability.harness import (EXIT_FILE_ERRORS, EXIT_OK, SCALE, SEED, Run, dict_rows, run_many,
                                       zone_count_by_sha)
from tests.reliability.mutations import Entry, lines_of, mutated_night, write_entries
from transforms.nightly.audit_file import EXTRACTS

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

NIGHTS = 4 * SCALE             # CI: 4 nights × 50 entries = 200 fuzzed landing entries
ENTRIES_PER_NIGHT = 50

# Extracts (payments, consents) land into their own zones, never analytics.
EXTRACT_PROFILES = {e.profile for e in EXTRACTS}


@dataclass
class FuzzNight:
    index: int
    seed: int
    landing: Path
    lake: Path
    entries: list[Entry]
    run: Run | None = None

    def where(self, entry: Entry | None = None) -> str:
        """What a failure message needs to reproduce it."""
        what = f"night {self.index} (seed {self.seed}; session CDR_AUDIT_RELIABILITY_SEED={SEED}" \
               f" CDR_AUDIT_RELIABILITY_SCALE={SCALE}; landing {self.landing})"
        if entry is not None:
            what = f"{entry.name!r} [mutation {entry.mutation} of {entry.source}] in " + what
        return what

    def source_files(self) -> list[dict]:
        return dict_rows(self.lake, "SELECT * FROM source_files")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_nights(root: Path, sources, outside: Path, n_nights: int, per_night: int, *, names_and_gzip: bool,
                 seed_base: int) -> list[FuzzNight]:
    nights = []
    for i in range(n_nights):
        seed = seed_base + i
        entries = mutated_night(sources, random.Random(seed), per_night, outside=str(outside),
                                names_and_gzip=names_and_gzip)
        night = FuzzNight(i, seed, root / f"n{i}" / "landing", root / f"n{i}" / "lake", entries)
        write_entries(night.landing, entries)
        # Beside the landing, never in it: which mutation made which entry, for whoever debugs a failure.
        (night.landing.parent / "entries.json").write_text(json.dumps(
            [{"name": repr(e.name), "mutation": e.mutation, "source": e.source, "records": e.records}
             for e in entries], indent=1))
        nights.append(night)
    t = time.monotonic()
    for night, run in zip(nights, run_many([(n.landing, n.lake) for n in nights])):
        night.run = run
    print(f"\nfuzzed {sum(len(n.entries) for n in nights)} landing entries in {n_nights} night(s):"
          f" {time.monotonic() - t:.0f} s of runs")
    return nights


@pytest.fixture(scope="session")
def outside(tmp_path_factory) -> Path:
    """A file outside every landing folder a symlink points to: it must never be read."""
    p = tmp_path_factory.mktemp("rel_outside") / "outside_secret.csv"
    p.write_text("origin_number,destination_number\n+38640999888,+38640999777\n")
    return p


@pytest.fixture(scope="session")
def fuzz_nights(sources, outside, tmp_path_factory) -> list[FuzzNight]:
    return build_nights(tmp_path_factory.mktemp("rel_fuzz"), sources, outside, NIGHTS, ENTRIES_PER_NIGHT,
                        names_and_gzip=True, seed_base=SEED * 1000)


# ------------------------------------------------------------------------------------------- the checks
# Each returns the problems it found (empty: fine), so one test reports every night's at once.

def check_exit(night: FuzzNight) -> list[str]:
    r = night.run
    problems = []
    if r.returncode not in (EXIT_OK, EXIT_FILE_ERRORS):
        problems.append(f"exit {r.returncode} (documented: 0, or 3 with the failed file recorded); stderr tail:"
                        f" {r.stderr[-1500:]} — {night.where()}")
    if "Traceback" in r.console:
        problems.append(f"a traceback on the console: {r.console[r.console.index('Traceback'):][:1500]}"
                        f" — {night.where()}")
    return problems


def check_recorded(night: FuzzNight) -> list[str]:
    """One source_files row per landing entry; a failed file only with its reason; the run closed."""
    if night.run.returncode not in (EXIT_OK, EXIT_FILE_ERRORS):
        return [f"no run to check — {night.where()}"]
    problems = []
    listed = os.listdir(os.fsencode(night.landing))
    rows = night.source_files()
    if len(rows) != len(listed):
        problems.append(f"{len(rows)} source_files rows for {len(listed)} landing entries — {night.where()}")
    by_sha = Counter(r["sha256"] for r in rows)
    for e in night.entries:
        if e.kind != "file" or e.name.startswith(b"."):
            continue
        if by_sha[sha(e.data)] == 0:
            problems.append(f"no source_files row for its bytes — {night.where(e)}")
    ignored = sum(r["status"] == "ignored" for r in rows)
    should_ignore = sum(e.kind != "file" or e.name.startswith(b".") for e in night.entries)
    if ignored != should_ignore:
        problems.append(f"{ignored} entries ignored, {should_ignore} hidden / non-regular — {night.where()}")
    for r in rows:
        if r["status"] == "failed":
            problems.append(f"file {r['file_name']!r} failed ({r['reason']}) — a pipeline error, {night.where()}")
            if not r["reason"]:
                problems.append(f"failed file {r['file_name']!r} without a reason — {night.where()}")
    (status,), = [tuple(x.values()) for x in dict_rows(night.lake, "SELECT status FROM runs")]
    want = "completed" if night.run.returncode == EXIT_OK else "completed_with_errors"
    if status != want:
        problems.append(f"run status {status!r}, exit {night.run.returncode} — {night.where()}")
    return problems


def nonblank_lines(data: bytes) -> int:
    # Empty lines are not records (README "How a file is read"); a line of spaces is read as one (a short record).
    # A gzip delivery is counted by what it decompresses to (docs/design.md §1).
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return sum(1 for line in lines_of(data) if line)


def check_rows(night: FuzzNight) -> list[str]:
    """rows_read = loaded + rejected; rows_read equals the records the mutation left when that is known from the
    bytes, and never exceeds the non-blank physical lines; the zones hold exactly the rows the audit says."""
    if night.run.returncode not in (EXIT_OK, EXIT_FILE_ERRORS):
        return []
    problems = []
    rows = night.source_files()
    by_sha = {}
    for r in rows:
        if r["rows_read"] != r["rows_loaded"] + r["rows_rejected"]:
            problems.append(f"{r['file_name']!r}: rows_read {r['rows_read']} != loaded {r['rows_loaded']} + rejected"
                            f" {r['rows_rejected']} — {night.where()}")
        if r["status"] not in ("duplicate_file", "ignored"):
            by_sha[r["sha256"]] = r
    for e in night.entries:
        if e.kind != "file" or e.name.startswith(b"."):
            continue
        r = by_sha.get(sha(e.data))
        if r is None:
            continue            # a byte-identical copy of another entry: checked through that one
        read_row_by_row = r["status"] in ("loaded", "quarantined")
        if e.records is not None and read_row_by_row and r["rows_read"] != e.records:
            problems.append(f"rows_read {r['rows_read']}, the bytes hold {e.records} records (status {r['status']})"
                            f" — {night.where(e)}")
        if e.records == 0 and r["status"] != "empty":
            problems.append(f"no data record, status {r['status']} ({r['reason']}) rows_read {r['rows_read']}"
                            f" — {night.where(e)}")
        if read_row_by_row and not e.name.endswith(b".parquet") and r["rows_read"] > nonblank_lines(e.data):
            problems.append(f"rows_read {r['rows_read']} > {nonblank_lines(e.data)} non-blank lines"
                            f" — {night.where(e)}")
    # What the audit says each file left in the zones is what the zones hold, row for row.
    # Rows loaded: CDRs into billing, the fixed-header extracts into their own zones (invoices, the consent register).
    loaded = (zone_count_by_sha(night.lake, "billing") + zone_count_by_sha(night.lake, "invoices")
              + zone_count_by_sha(night.lake, "consents"))
    quarantined = zone_count_by_sha(night.lake, "quarantine")
    analytics = zone_count_by_sha(night.lake, "analytics")
    for s, r in by_sha.items():
        if r["status"] in ("loaded", "quarantined"):
            want = (r["rows_loaded"], r["rows_rejected"])
        else:
            want = (0, 0)       # refused whole, empty, failed: nothing of it in any zone (docs/design.md §9)
        got = (loaded.get(s, 0), quarantined.get(s, 0))
        if got != want:
            problems.append(f"{r['file_name']!r} ({r['status']}): zones hold {got} loaded/quarantined rows, the audit"
                            f" says {want} — {night.where()}")
        if r["profile"] not in EXTRACT_PROFILES and analytics.get(s, 0) != (r["rows_loaded"] if want != (0, 0) else 0):
            problems.append(f"{r['file_name']!r}: {analytics.get(s, 0)} analytics rows for {r['rows_loaded']} loaded"
                            f" — {night.where()}")
    return problems


def needles(generated, seed: int) -> list[str]:
    _, manifest = generated
    pool = sorted(set(night_identifiers(manifest)) | set(manifest.caller_names) | set(manifest.emails)
                  | set(manifest.ip_addresses))
    # The numbers in the file outside the landing that a symlink points to: it is never read, so never shown.
    outside = ["+38640999888", "38640999888", "040999888"]
    return random.Random(seed).sample(pool, min(400, len(pool))) + FIXTURE_IDENTIFIERS + outside


def check_leaks(night: FuzzNight, generated) -> list[str]:
    """No raw identifier of the inputs in the audit store, its exports, the pseudonymous and anonymous zones,
    the reports or the console (docs/design.md §6; billing/, invoices/ and quarantine/ hold them by design)."""
    lake = night.lake
    roots = [lake / z for z in ("audit", "analytics", "aggregates", "roaming", "reports", "_work") if (lake / z).exists()]
    hits = scan(roots, needles(generated, night.seed), night.run.console)
    return [f"identifier {n!r} found in {where[:3]} — {night.where()}" for n, where in hits.items()]


def report(problems: list[str]) -> str:
    return f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])


# -------------------------------------------------------------------------------------------------- tests

def test_fuzzed_nights_exit_as_documented_without_traceback(fuzz_nights):
    assert sum(len(n.entries) for n in fuzz_nights) >= 200 * SCALE
    problems = [p for n in fuzz_nights for p in check_exit(n)]
    assert not problems, report(problems)


def test_every_landing_entry_is_recorded_once(fuzz_nights):
    problems = [p for n in fuzz_nights for p in check_recorded(n)]
    assert not problems, report(problems)


def test_every_row_read_is_accounted_for_in_the_audit_and_the_zones(fuzz_nights):
    problems = [p for n in fuzz_nights for p in check_rows(n)]
    assert not problems, report(problems)


def test_no_raw_identifier_leaves_billing_and_quarantine(fuzz_nights, generated):
    problems = [p for n in fuzz_nights for p in check_leaks(n, generated)]
    assert not problems, report(problems)


# Non-UTF-8 file names and gzip content (named .csv and .csv.gz): each is audited, the gzip read as what it
# decompresses to (docs/design.md §1).
def test_non_utf8_names_and_gzip_content(sources, outside, generated, tmp_path_factory):
    nights = build_nights(tmp_path_factory.mktemp("rel_fuzz_names"), sources, outside, SCALE, 16,
                          names_and_gzip=True, seed_base=SEED * 1000 + 500)
    problems = [p for n in nights for check in (check_exit, check_recorded, check_rows) for p in check(n)]
    problems += [p for n in nights for p in check_leaks(n, generated) if n.run.returncode in (0, 3)]
    gz = [(n, e) for n in nights for e in n.entries if "gzip" in e.mutation]
    assert gz, "no gzip entry made"
    for n, e in gz:             # gzip content is read as what it decompresses to, named .csv or .csv.gz
        rows = {r["sha256"]: r for r in n.source_files()} if n.run.returncode in (0, 3) else {}
        r = rows.get(sha(e.data))
        if r is None or r["status"] not in ("loaded", "quarantined"):
            problems.append(f"gzip entry {r and r['status']} ({r and r['reason']}) — {n.where(e)}")
    assert not problems, report(problems)
