-- The last run (by start time), its outcome and the chain's link check.
SELECT r.run_id, r.night, r.trigger, r.started_at, r.finished_at, r.status,
       r.files_seen, r.files_processed, r.files_skipped_known, r.files_rejected, r.files_failed,
       r.rows_read, r.rows_loaded, r.rows_rejected AS rows_quarantined,
       r.policy_id, r.policy_version, r.policy_sha256, r.code_version,
       c.entries AS log_entries, c.last_seq AS log_last_seq, c.last_hash AS log_last_hash,
       c.links_ok AS chain_links_ok
FROM (SELECT * FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1) r CROSS JOIN v_audit_chain c
