"""One landing night: N split over the five main files, each format written in turn, then the
small defect files, the payments extract and the consent extract; or one export alone, of N records. Returns the manifest."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from .asterisk import write_asterisk
from .canonical import write_billing_csv, write_parquet
from .consents import write_consents
from .defect_files import write_defect_files
from .freeswitch import write_freeswitch
from .generator import Generator
from .manifest import NightManifest
from .mediation import write_mediation
from .payments import write_payments
from .reference import DEFAULT_NIGHT
from .ts32298_ps import write_ts32298_ps

MIN_ROWS = 200

# Share of N per main file (the rest goes to mediation).
SPLIT = {"billing_csv": 0.35, "parquet": 0.10, "asterisk": 0.06, "freeswitch": 0.04}


def split_rows(rows: int) -> dict[str, int]:
    """Records per main file; they add up to `rows`."""
    parts = {k: int(rows * f) for k, f in SPLIT.items()}
    parts["mediation"] = rows - sum(parts.values())
    return parts


def generate_night(out: Path, rows: int, seed: int, night: date = DEFAULT_NIGHT, *,
                   progress: bool = False) -> NightManifest:
    """Write one night of landing files into `out` and describe them.

    Deterministic in (rows, seed, night). The subscriber population depends on
    the seed only (its size on `rows`), so nights with the same seed share it.
    """
    gen = _generator(out, rows, seed, night, progress)
    parts = split_rows(rows)
    write_mediation(gen, parts["mediation"])
    write_billing_csv(gen, parts["billing_csv"])
    write_parquet(gen, parts["parquet"])
    write_asterisk(gen, parts["asterisk"])
    write_freeswitch(gen, parts["freeswitch"])
    write_defect_files(gen)
    write_payments(gen)
    write_consents(gen)
    return _manifest(gen)


# Exports a landing folder can hold alone (generate_export): the mediation CSV of the sample night, and the
# packet-switched export of formats/ts32298_ps.yaml, which the sample night does not hold.
EXPORTS = {"mediation": write_mediation, "ts32298_ps": write_ts32298_ps}


def generate_export(out: Path, source: str, rows: int, seed: int, night: date = DEFAULT_NIGHT, *,
                    progress: bool = False) -> NightManifest:
    """Write one export of `rows` records into `out` (nothing else) and describe it.

    Its subscribers and date are those of generate_night(out, rows, seed, night): the same people, the
    same roaming, the same hours of traffic. Deterministic in (source, rows, seed, night).
    """
    if source not in EXPORTS:
        raise ValueError(f"source must be one of {', '.join(EXPORTS)}")
    gen = _generator(out, rows, seed, night, progress)
    EXPORTS[source](gen, rows)
    return _manifest(gen)


def _generator(out: Path, rows: int, seed: int, night: date, progress: bool) -> Generator:
    if rows < MIN_ROWS:
        raise ValueError(f"rows must be at least {MIN_ROWS}")
    if seed < 0:
        raise ValueError("seed must be non-negative")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return Generator(out, rows, seed, night, progress)


def _manifest(gen: Generator) -> NightManifest:
    return NightManifest(night=gen.night_date, seed=gen.seed, rows=gen.rows, subscribers=gen.pop.size,
                         files=dict(sorted(gen.files.items())), **gen.collect.result(gen.cells))
