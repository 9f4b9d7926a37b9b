"""The per-file steps of the nightly audit, in the order a record passes them (docs/design.md §7):
`ingest` (the source format recognised: `transforms.formats`; strict `reading`) → `fieldcheck` → `validate` (GX over DuckDB: `gx_duckdb`)
→ `billing` / `quarantine`; a payments extract takes `payments` instead. Each step takes its input
location and the policy, writes its output and returns a small typed result."""
