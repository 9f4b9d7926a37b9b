"""Generate one realistic night of CDR / billing landing files for cdr-audit.

    python -m sample_data.generate --rows N --out DIR --seed S [--date YYYY-MM-DD] [--source KIND] [--quiet]

Writes the extracts that switches, mediation and billing drop into the landing
folder on one night (docs/design.md §2), in the formats the ingest profiles read
(formats/*.yaml, read by transforms.formats), with injected defects the pipeline must survive, and
returns a manifest of what it wrote (row counts, defects by kind, and raw
sensitive values so tests can prove none leaked). `--source mediation` or
`--source ts32298_ps` (generate_export()) writes that one export alone, of N
records, with the night's subscribers: a 3GPP TS 32.298 packet-switched export
is not part of the sample night.

Deterministic: the same arguments give byte-identical files. The subscriber
population (MSISDN, IMSI, IMEI, name, e-mail, tariff) is derived from the seed
alone, subscriber by subscriber, so two nights made with the same seed share
their subscribers whatever their dates or sizes.

The bulk rows are made vectorized (numpy + pyarrow compute, 100 000-row
chunks, streamed to disk); defect rows and the small files are plain Python.

Modules, each importing only those listed before it:
  reference         operator, names, numbering, handsets, tariffs, countries and networks, prices
  formats           the landing formats' profiles and columns (the one import from transforms)
  manifest          defect kinds; FileManifest, NightManifest
  vectorized        hashing, digit/hex text, string assembly, weighted choices, CSV lines
  subscribers       the population and the home network's cells
  night             one event date: UTC offsets, who roams where, traffic times, timestamps
  events            subscriber events and hosted-PBX call legs, as numbers
  sensitive_values  the raw sensitive values written, for the manifest
  writing           CSV records, streamed bulk chunks with records placed between, progress
  generator         one night being written: what every format's writer shares
  defect_rows       malformed, rule-breaking and duplicate records inside the big files
  mediation, canonical, asterisk, freeswitch, defect_files, payments, consents, ts32298_ps
                    one module per landing format: its columns and its file
  landing           generate_night: every file of a night, in order, and the manifest;
                    generate_export: one export alone
  cli, __main__     the command line
"""

from .cli import main
from .formats import BILLING_CSV_COLUMNS, HOSTILE_COLUMNS
from .landing import EXPORTS, MIN_ROWS, SPLIT, generate_export, generate_night, split_rows
from .manifest import (
    ALL_DEFECT_KINDS,
    CONSENT_DEFECTS,
    DUPLICATE_ROW,
    FILE_DEFECTS,
    MALFORMED,
    PAYMENT_DEFECTS,
    RULE_VIOLATIONS,
    FileManifest,
    NightManifest,
)
from .reference import C_EU, COUNTRIES, DEFAULT_NIGHT, LOCAL_TZ, PLMN_EU, PLMNS
from .subscribers import Cells, Population, luhn_digit, population_size
from .writing import CHUNK

__all__ = [
    "ALL_DEFECT_KINDS", "BILLING_CSV_COLUMNS", "C_EU", "CHUNK", "CONSENT_DEFECTS", "COUNTRIES", "Cells",
    "DEFAULT_NIGHT",
    "DUPLICATE_ROW", "EXPORTS", "FILE_DEFECTS", "FileManifest", "HOSTILE_COLUMNS", "LOCAL_TZ", "MALFORMED",
    "MIN_ROWS", "NightManifest", "PAYMENT_DEFECTS", "PLMNS", "PLMN_EU", "Population", "RULE_VIOLATIONS", "SPLIT",
    "generate_export", "generate_night", "luhn_digit", "main", "population_size", "split_rows",
]
