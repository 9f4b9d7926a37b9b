-- Per event date: the analytics rows the latest finished run left unreleased, and why: the day's window is still open, or its late rows do not pass k on their own yet (docs/design.md §4).
WITH latest_run AS (
    SELECT run_id, night FROM runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1
)
SELECT l.night, w.run_id, w.event_date, w.reason, w.parts, w.rows_waiting, w.window_closes_on
FROM aggregate_waiting w JOIN latest_run l USING (run_id)
ORDER BY w.event_date
