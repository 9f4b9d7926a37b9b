-- Per night: files and rows read, loaded (billing / invoices / consents), quarantined, refused whole, made into analytics rows, loaded rows dated more than the lateness window before the night or after it, and the aggregate cells released (every release table: v_aggregate_releases per table).
-- rows_read = rows_loaded + rows_quarantined + rows_refused + rows_failed: nothing of a file refused whole or
-- failed is kept in any zone, so its rows are not counted as quarantined (docs/design.md §9).
WITH files AS (
    SELECT night, count(*) AS files,
           count(*) FILTER (WHERE status = 'loaded') AS files_loaded,
           count(*) FILTER (WHERE status = 'quarantined') AS files_quarantined,
           count(*) FILTER (WHERE status IN ('rejected_file', 'duplicate_file')) AS files_rejected,
           count(*) FILTER (WHERE status = 'failed') AS files_failed,
           CAST(sum(rows_read) AS BIGINT) AS rows_read, CAST(sum(rows_loaded) AS BIGINT) AS rows_loaded,
           CAST(coalesce(sum(rows_loaded) FILTER (WHERE coalesce(profile NOT IN ('payments', 'consents'), true)), 0)
                AS BIGINT) AS rows_billing,
           CAST(coalesce(sum(rows_loaded) FILTER (WHERE profile = 'payments'), 0) AS BIGINT) AS rows_invoices,
           CAST(coalesce(sum(rows_loaded) FILTER (WHERE profile = 'consents'), 0) AS BIGINT) AS rows_consents,
           CAST(coalesce(sum(rows_rejected) FILTER (WHERE status IN ('loaded', 'quarantined')), 0) AS BIGINT)
               AS rows_quarantined,
           CAST(coalesce(sum(rows_rejected) FILTER (WHERE status IN ('rejected_file', 'duplicate_file')), 0)
                AS BIGINT) AS rows_refused,
           CAST(coalesce(sum(rows_rejected) FILTER (WHERE status = 'failed'), 0) AS BIGINT) AS rows_failed,
           CAST(coalesce(sum(rows_before_lateness_window), 0) AS BIGINT) AS rows_before_lateness_window,
           CAST(coalesce(sum(rows_after_night), 0) AS BIGINT) AS rows_after_night,
           max(lateness_window_days) AS lateness_window_days
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
SELECT f.night, coalesce(n.runs, 0) AS runs, f.files, f.files_loaded, f.files_quarantined, f.files_rejected,
       f.files_failed, f.rows_read, f.rows_loaded, f.rows_billing, f.rows_invoices, f.rows_consents,
       f.rows_quarantined,
       f.rows_refused, f.rows_failed, coalesce(a.rows_analytics, 0) AS rows_analytics,
       f.lateness_window_days, f.rows_before_lateness_window, f.rows_after_night,
       CAST(coalesce(l.groups, 0) AS BIGINT) AS aggregate_groups_released,
       CAST(coalesce(l.suppressed, 0) AS BIGINT) AS aggregate_groups_suppressed
FROM files f LEFT JOIN analytics a USING (night) LEFT JOIN last_release l USING (night)
LEFT JOIN runs_per_night n USING (night)
ORDER BY f.night
