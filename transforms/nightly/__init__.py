"""The nightly audit run, in the order a record travels (docs/design.md §7):

1. `plan` — fingerprint the landing files, skip what was audited before, open the run;
2. `audit_file` — one file through ingest → field check → validate → billing / quarantine → analytics,
   leaving its typed facts (`facts`); Airflow maps it over the night's files;
3. `aggregate_night` (every day whose release window closed, released once, and late rows that pass k) and
   `roaming_night` (every month tonight touched) — the night-wide steps;
4. `close` — every fact into the audit store in one transaction, the log chained, the exports refreshed.

The CLI calls these in sequence; the DAG wires them as tasks.
"""
