"""The command line: python -m sample_data.generate --rows N --out DIR --seed S [...]."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import Sequence

from .landing import EXPORTS, MIN_ROWS, generate_export, generate_night
from .manifest import NightManifest
from .reference import DEFAULT_NIGHT, LOCAL_TZ

_EPILOG = """\
files written into DIR (D = --date):
  mediation_D.csv           3GPP-style mediation export, header = mediation profile columns; holds
                            roaming (servingNodePLMNIdentifier 29340 home, EU/EEA and non-EU PLMNs),
                            PGW data records, charges in EUR with 22 %% VAT; servedPDPAddress = IPv4
  billing_D.csv             canonical billing CSV (all canonical columns) plus off-list columns
                            caller_name, email, ip_address; start_time ISO UTC
  billing_D_copy.csv        byte-identical copy of billing_D.csv (duplicate delivery)
  billing_D.parquet         canonical columns, all strings
  asterisk_Master_D.csv     Asterisk cdr_csv Master.csv, 18 columns, no header, local time
  freeswitch_D.csv          FreeSWITCH mod_cdr_csv example template, 15 quoted columns, no header
  empty_D.csv               0 bytes
  header_only_D.csv         canonical header, no records
  latin1_D.csv              canonical CSV encoded cp1250 (invalid UTF-8: 'Žiga Čeh')
  freeswitch_resaved_D.csv  FreeSWITCH rows saved again by a spreadsheet: unquoted, 'YYYY/M/D H:MM',
                            numbers without '+', CRLF, two repeated rows
  nul_byte_D.csv            canonical CSV with a NUL byte inside one record
  hostile_header_D.csv      canonical CSV with hostile column names (SQL-ish, newline-ish, ~5 KB long)
  payments_D.csv            payments / invoice-status extract (UTF-8, header): one row per invoice of each
                            postpaid subscriber for the 3 billing periods before D's month (invoice on the
                            3rd of the next month, due 15 days later), status as of D: mostly paid, some
                            open, a few partially_paid and disputed; claim_type business_services for
                            business tariffs (several lines may share one ACC- account), else
                            consumer_services; subscriber_number in E.164
  consents_D.csv            consent extract (UTF-8, header subscriber_number,purpose,status,recorded_at,
                            channel): grants, withdrawals and re-grants of subscribers served tonight,
                            recorded on D and the two days before (consecutive extracts overlap), out
                            of time order; recorded_at with Z, with an offset, or local without one

injected row defects (every night, however small; counts grow slowly with N):
  malformed   too_few_fields, too_many_fields, unterminated_quote (the mediation and canonical
              CSVs end in a record cut inside a quoted value: the extract was truncated)
  oversized   overlong_field: one ~100 KB apn value per CSV (parses; breaks the apn rule)
  rule        email_as_origin, negative_duration, unknown_service_type, bad_imsi
  duplicate   duplicate_row: records repeated verbatim inside a file
  payments    bad_payment_date (invoice_date YYYY-02-30), bad_payment_status ('settled'),
              missing_invoice_id, duplicate_invoice (an invoice row delivered twice): one each
  consents    bad_consent_number ('unknown'), unknown_purpose ('newsletters'), unknown_channel ('sms'),
              bad_recorded_at (YYYY-02-30), future_recorded_at (two days after D), duplicate_consent
              (an event delivered twice), broken_consent_line (three fields): one each
Mediation and canonical CSV get every row kind; Parquet gets the rule kinds and duplicates;
Asterisk gets email_as_origin, too_few_fields, duplicates; FreeSWITCH email_as_origin, duplicates.
All other records are valid under expectations/billing_cdr.json.

--source ts32298_ps writes, instead of the night, one file of N records:
  ts32298_ps_D.csv          3GPP TS 32.298 packet-switched export (formats/ts32298_ps.yaml), one data
                            session per record: header of ASN.1 field names; recordType sGWRecord /
                            pGWRecord (a few nodes write 84 / 85); servedIMSI; servedIMEISV (TAC + SNR +
                            SVN, 16 digits; some empty); servedMSISDN as E.164 digits without '+';
                            accessPointNameNI; servingNodePLMNIdentifier (29340 home, foreign PLMNs when
                            roaming); locationAreaCode and cellIdentifier in hex; recordOpeningTime
                            YYMMDDhhmmss+hhmm (the Maribor nodes' clocks on UTC: +0000, the others local);
                            duration; dataVolumeGPRSUplink / Downlink; off-list subscriberName,
                            servedPDPPDNAddress (IPv4), chargingID, causeForRecClosing, rATType, nodeID.
                            Rule-breaking and duplicate rows as in the mediation export; no malformed ones.
--source mediation writes mediation_D.csv alone, of N records. Either way the subscribers are those
of the night of the same --rows and --seed.

N (--rows) is split over the five main files (mediation 45 %, canonical CSV 35 %, Parquet 10 %,
Asterisk 6 %, FreeSWITCH 4 %); their record counts (defect rows included) add up to N. The
subscriber population has max(50, N/40) members and depends on --seed only, so nights generated
with the same seed share subscribers. Same arguments => byte-identical files.

Progress goes to stderr on runs of 500,000 rows or more, and a summary (files, rows, bytes,
defects) at the end; --quiet silences both. From Python: sample_data.generate.generate_night()
returns the same manifest as a NightManifest dataclass.
"""


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m sample_data.generate",
        description="Generate one realistic night of CDR / billing landing files (with defects) for cdr-audit.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, required=True, metavar="N",
                    help=f"records over the five main files, or of the one export (>= {MIN_ROWS});"
                         " 10,000,000 streams in flat memory")
    ap.add_argument("--out", type=Path, required=True, metavar="DIR",
                    help="landing folder to write into (created; this generator's files are overwritten)")
    ap.add_argument("--seed", type=int, required=True, metavar="S",
                    help="non-negative seed: output and subscriber population are a function of it")
    ap.add_argument("--date", type=date.fromisoformat, default=DEFAULT_NIGHT, metavar="YYYY-MM-DD",
                    help=f"event date of the night, local time {LOCAL_TZ} (default {DEFAULT_NIGHT})")
    ap.add_argument("--manifest", type=Path, metavar="FILE",
                    help="also write the manifest (files, rows, defects, raw sensitive values) as JSON to FILE;"
                         " keep it outside DIR, it is not a landing file")
    ap.add_argument("--source", choices=("night", *EXPORTS), default="night",
                    help="night: every file of a night (default); mediation, ts32298_ps: that one export alone,"
                         " of N records, with the night's subscribers")
    ap.add_argument("--quiet", action="store_true", help="print nothing (no progress, no summary)")
    args = ap.parse_args(argv)
    if args.rows < MIN_ROWS:
        ap.error(f"--rows must be at least {MIN_ROWS}")
    if args.seed < 0:
        ap.error("--seed must be non-negative")
    t0 = time.monotonic()
    if args.source == "night":
        manifest = generate_night(args.out, args.rows, args.seed, args.date, progress=not args.quiet)
    else:
        manifest = generate_export(args.out, args.source, args.rows, args.seed, args.date, progress=not args.quiet)
    elapsed = time.monotonic() - t0
    if args.manifest:
        args.manifest.parent.mkdir(parents=True, exist_ok=True)
        args.manifest.write_text(manifest.to_json() + "\n", encoding="utf-8")
    if not args.quiet:
        print(_summary(manifest, args.out, elapsed), file=sys.stderr)
    return 0


def _summary(m: NightManifest, out: Path, elapsed: float) -> str:
    lines = [f"night {m.night} seed {m.seed}: {len(m.files)} files, {m.rows_total:,} records,"
             f" {m.subscribers:,} subscribers, {elapsed:.1f} s -> {out}"]
    for f in m.files.values():
        defects = ", ".join(f"{k} {v}" for k, v in sorted(f.defects.items()))
        lines.append(f"  {f.name:<34} {f.rows:>11,} rows {f.bytes:>14,} B  {f.profile or '-':<19} {defects}")
    return "\n".join(lines)

