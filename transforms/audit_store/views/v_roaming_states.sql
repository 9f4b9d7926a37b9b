-- Per assessed window (as-of month): subscribers in each roaming state (counts only).
SELECT as_of_month, state, count(*) AS subscribers,
       count(*) FILTER (WHERE long_inactivity) AS long_inactivity
FROM roaming_status GROUP BY ALL ORDER BY as_of_month, state
