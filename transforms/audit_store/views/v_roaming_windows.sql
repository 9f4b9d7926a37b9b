-- Per fair-use window assessed (as-of month), as the latest run that assessed it recorded it: subscribers assessed and in each roaming state, windows with nobody to assess included (counts only).
SELECT w.month AS as_of_month, w.run_id, r.night, r.started_at AS assessed_at,
       coalesce(w.subscribers, 0) AS subscribers, coalesce(w.flagged, 0) AS flagged,
       coalesce(w.not_flagged, 0) AS not_flagged, coalesce(w.insufficient_history, 0) AS insufficient_history,
       coalesce(w.long_inactivity, 0) AS long_inactivity, w.path IS NOT NULL AS status_file_written
FROM roaming_runs w JOIN runs r USING (run_id)
WHERE w.kind = 'window'
QUALIFY row_number() OVER (PARTITION BY w.month ORDER BY r.started_at DESC, w.run_id DESC) = 1
ORDER BY as_of_month
