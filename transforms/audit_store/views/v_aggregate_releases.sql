-- Per night, event date and release table, as the night's latest run that released aggregates recorded it: cells, released, suppressed under k (primary) and so no released cell minus finer released cells reveals fewer than k (secondary), `other` rows released, events and the share of events in released cells (docs/design.md §4).
WITH latest AS (   -- the night's latest run that released aggregates
    SELECT r.night, a.run_id
    FROM aggregate_releases a JOIN runs r USING (run_id) GROUP BY r.night, a.run_id
    QUALIFY row_number() OVER (PARTITION BY r.night ORDER BY max(r.started_at) DESC) = 1
)
SELECT l.night, a.run_id, a.event_date, coalesce(a.release_table, 'single grain') AS release_table, a.k, a.clause,
       a.groups_total AS cells, a.groups_released AS cells_released,
       a.groups_suppressed_primary AS cells_suppressed_primary,
       a.groups_suppressed_secondary AS cells_suppressed_secondary,
       a.other_cells_released, a.events, a.events_released, a.share_events_released
FROM aggregate_releases a JOIN latest l USING (run_id)
ORDER BY l.night, a.event_date, a.groups_total, release_table
