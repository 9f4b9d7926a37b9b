-- Per night: files and rows read, loaded (billing / invoices), quarantined, made into analytics rows, and the aggregate groups released.
WITH files AS (
    SELECT night, count(*) AS files,
           count(*) FILTER (WHERE status = 'loaded') AS files_loaded,
           count(*) FILTER (WHERE status IN ('rejected_file', 'duplicate_file')) AS files_rejected,
           count(*) FILTER (WHERE status = 'failed') AS files_failed,
           CAST(sum(rows_read) AS BIGINT) AS rows_read, CAST(sum(rows_loaded) AS BIGINT) AS rows_loaded,
           CAST(coalesce(sum(rows_loaded) FILTER (WHERE profile IS DISTINCT FROM 'payments'), 0) AS BIGINT)
               AS rows_billing,
           CAST(coalesce(sum(rows_loaded) FILTER (WHERE profile = 'payments'), 0) AS BIGINT) AS rows_invoices,
           CAST(sum(rows_rejected) AS BIGINT) AS rows_quarantined
    FROM v_night_files GROUP BY night
), analytics AS (   -- one pseudonymization_log row per tokenized column, each with the file's row count
    SELECT f.night, CAST(sum(p.rows) AS BIGINT) AS rows_analytics
    FROM (SELECT run_id, sha256, file_name, max(rows) AS rows FROM pseudonymization_log GROUP BY ALL) p
    JOIN v_night_files f USING (run_id, sha256, file_name) GROUP BY f.night
), last_release AS (   -- the night's latest run that released aggregates
    SELECT r.night, a.run_id, sum(a.groups_released) AS groups, sum(a.groups_suppressed_primary
           + a.groups_suppressed_secondary) AS suppressed
    FROM aggregate_releases a JOIN runs r USING (run_id) GROUP BY r.night, a.run_id
    QUALIFY row_number() OVER (PARTITION BY r.night ORDER BY max(r.started_at) DESC) = 1
), runs_per_night AS (
    SELECT night, count(*) AS runs FROM runs GROUP BY night
)
SELECT f.night, coalesce(n.runs, 0) AS runs, f.files, f.files_loaded, f.files_rejected, f.files_failed,
       f.rows_read, f.rows_loaded, f.rows_billing, f.rows_invoices, f.rows_quarantined,
       coalesce(a.rows_analytics, 0) AS rows_analytics,
       CAST(coalesce(l.groups, 0) AS BIGINT) AS aggregate_groups_released,
       CAST(coalesce(l.suppressed, 0) AS BIGINT) AS aggregate_groups_suppressed
FROM files f LEFT JOIN analytics a USING (night) LEFT JOIN last_release l USING (night)
LEFT JOIN runs_per_night n USING (night)
ORDER BY f.night
