-- Per retention sweep, data set, category and action: partitions, files and rows, with the clause.
SELECT run_id, as_of, dataset, category, action, legal_basis, clause, count(*) AS partitions,
       CAST(sum(files) AS BIGINT) AS files, CAST(sum(rows) AS BIGINT) AS rows,
       min(due_on) AS earliest_due_on, max(due_on) AS latest_due_on,
       string_agg(DISTINCT hold_ids, ',') AS hold_ids, bool_or(dry_run) AS dry_run
FROM retention_actions GROUP BY ALL ORDER BY as_of, dataset, category, action
