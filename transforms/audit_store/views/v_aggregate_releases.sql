-- Per event date: each release of its aggregates (1: the day, once its window closed; 2, …: late rows that passed k on their own), what it was made from and released, and the rows the latest finished run left waiting (window open, or below k).
-- A release is made once and never rewritten (docs/design.md §4): one row per (event_date, release_number),
-- from the run that made it. A day with rows waiting shows them on its latest release, or alone (release NULL).
WITH made AS (
    SELECT a.event_date, a.release_number, a.release_kind, a.run_id AS released_by_run, r.night AS released_on_night,
           a.window_closes_on, a.k, a.parts, a.rows_aggregated, a.groups_total, a.groups_released,
           a.groups_suppressed_primary + a.groups_suppressed_secondary AS groups_suppressed, a.late_rows_pending
    FROM aggregate_releases a JOIN runs r USING (run_id)
    WHERE a.release_number IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY a.event_date, a.release_number ORDER BY r.started_at) = 1
), numbered AS (
    SELECT *, release_number = max(release_number) OVER (PARTITION BY event_date) AS is_latest FROM made
), latest_run AS (
    SELECT run_id FROM runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1
), waiting AS (
    SELECT w.event_date, w.reason AS waiting_reason, w.parts AS parts_waiting, w.rows_waiting, w.window_closes_on
    FROM aggregate_waiting w JOIN latest_run USING (run_id)
)
SELECT coalesce(m.event_date, w.event_date) AS event_date, m.release_number, m.release_kind, m.released_by_run,
       m.released_on_night, coalesce(m.window_closes_on, w.window_closes_on) AS window_closes_on, m.k, m.parts,
       m.rows_aggregated, m.groups_total, m.groups_released, m.groups_suppressed, m.late_rows_pending,
       w.waiting_reason, w.parts_waiting, w.rows_waiting
FROM numbered m FULL JOIN waiting w ON w.event_date = m.event_date AND m.is_latest
ORDER BY event_date, release_number NULLS LAST
