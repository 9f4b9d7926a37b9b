-- The last run (by start time), its outcome and the chain's link check.
-- rows_quarantined + rows_refused + rows_failed = the run's rows not loaded (runs.rows_rejected): a file refused
-- whole or failed keeps nothing in any zone (docs/design.md §9).
-- nothing_landed: the run completed, but its landing folder held no file to read (empty, or only hidden, in-flight or
-- non-regular entries, which no count here holds): the night's extracts did not arrive (docs/design.md §9).
WITH last AS (SELECT * FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1),
files AS (
    SELECT run_id,
           CAST(coalesce(sum(rows_rejected) FILTER (WHERE status IN ('loaded', 'quarantined')), 0) AS BIGINT)
               AS rows_quarantined,
           CAST(coalesce(sum(rows_rejected) FILTER (WHERE status IN ('rejected_file', 'duplicate_file')), 0)
                AS BIGINT) AS rows_refused,
           CAST(coalesce(sum(rows_rejected) FILTER (WHERE status = 'failed'), 0) AS BIGINT) AS rows_failed,
           CAST(coalesce(sum(rows_before_lateness_window), 0) AS BIGINT) AS rows_before_lateness_window,
           CAST(coalesce(sum(rows_after_night), 0) AS BIGINT) AS rows_after_night
    FROM source_files WHERE run_id = (SELECT run_id FROM last) GROUP BY run_id
)
SELECT r.run_id, r.night, r.trigger, r.started_at, r.finished_at, r.status,
       r.files_seen, r.files_processed, r.files_skipped_known, r.files_rejected, r.files_failed,
       r.finished_at IS NOT NULL AND r.files_processed + r.files_skipped_known + r.files_rejected = 0 AS nothing_landed,
       r.rows_read, r.rows_loaded, coalesce(f.rows_quarantined, 0) AS rows_quarantined,
       coalesce(f.rows_refused, 0) AS rows_refused, coalesce(f.rows_failed, 0) AS rows_failed,
       coalesce(f.rows_before_lateness_window, 0) AS rows_before_lateness_window,
       coalesce(f.rows_after_night, 0) AS rows_after_night,
       r.policy_id, r.policy_version, r.policy_sha256, r.code_version,
       c.entries AS log_entries, c.last_seq AS log_last_seq, c.last_hash AS log_last_hash,
       c.links_ok AS chain_links_ok
FROM last r LEFT JOIN files f USING (run_id) CROSS JOIN v_audit_chain c
