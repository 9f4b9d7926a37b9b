-- Per event date, release (1: the day, once its window closed; 2, …: late rows that passed k on their own) and release table, as the run that made the release recorded it: what it was made from, cells, released, suppressed under k (primary) and so no released cell minus finer released cells reveals fewer than k (secondary), `other` rows released, events and the share of events in released cells (docs/design.md §4).
-- A release is made once and never rewritten: one row per (event_date, release_number, release_table), from the
-- first run that recorded it; `night` is that run's night. Rows written before releases were made once
-- (release_number NULL) stay in aggregate_releases only.
SELECT r.night, a.run_id, a.event_date, a.release_number, a.release_kind,
       coalesce(a.release_table, 'single grain') AS release_table, a.k, a.clause, a.window_closes_on,
       a.parts, a.rows_aggregated, a.late_rows_pending,
       a.groups_total AS cells, a.groups_released AS cells_released,
       a.groups_suppressed_primary AS cells_suppressed_primary,
       a.groups_suppressed_secondary AS cells_suppressed_secondary,
       a.other_cells_released, a.events, a.events_released, a.share_events_released
FROM aggregate_releases a JOIN runs r USING (run_id)
WHERE a.release_number IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY a.event_date, a.release_number, a.release_table ORDER BY r.started_at) = 1
ORDER BY a.event_date, a.release_number, a.groups_total, release_table
