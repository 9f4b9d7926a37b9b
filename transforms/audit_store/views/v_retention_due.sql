-- What the latest sweep kept and when it falls due: rows due within each reporting horizon of that sweep's as-of date and of today (overdue_today: due on or before today, waiting for the next sweep).
-- The horizons are the policy's reporting.retention_due_within_days: one column each, named by its days,
-- where the markers below stand.
WITH latest AS (SELECT max(as_of) AS as_of FROM retention_actions WHERE NOT dry_run)
SELECT r.as_of, r.dataset, r.category, r.clause, count(*) AS partitions, CAST(sum(r.rows) AS BIGINT) AS rows_kept,
       min(r.due_on) AS next_due_on,
       /*rows due within each horizon after the sweep*/
       CAST(coalesce(sum(r.rows) FILTER (WHERE r.due_on <= current_date), 0) AS BIGINT) AS rows_overdue_today,
       /*rows due within each horizon from today*/
FROM retention_actions r JOIN latest l USING (as_of)
WHERE r.action = 'kept' AND NOT r.dry_run
GROUP BY ALL ORDER BY r.dataset, r.category
