-- Per night, file, column and clause: columns off the allowed list (not_allowed / unknown) and rules that rows failed, with the rows affected; quarantine reasons no validation rule names (unreadable lines, duplicate rows, payments checks) are listed with their row counts, and files refused whole with their reason (nothing of them kept, nothing quarantined).
SELECT f.night, f.run_id, f.file_name, 'off_list_column' AS kind, x.source_column AS column_name,
       x.clause, x.classification AS rule, x.action AS outcome, CAST(NULL AS BIGINT) AS rows_affected,
       CAST(0 AS BIGINT) AS rows_quarantined
FROM field_findings x JOIN v_night_files f USING (run_id, sha256, file_name)
WHERE x.classification IN ('not_allowed', 'unknown')   -- a column read for derivation is not kept
UNION ALL
SELECT f.night, f.run_id, f.file_name, 'failed_rule', v.column_name, v.clause, v.rule, v.expectation,
       v.unexpected_count, v.rows_quarantined
FROM validation_results v JOIN v_night_files f USING (run_id, sha256, file_name)
WHERE NOT v.success
UNION ALL
SELECT f.night, f.run_id, f.file_name,
       CASE WHEN f.status IN ('rejected_file', 'duplicate_file') THEN 'refused_file' ELSE 'quarantine_reason' END,
       NULL, NULL, q.reason,
       CASE WHEN f.status IN ('rejected_file', 'duplicate_file') THEN 'refused_whole' ELSE 'quarantined' END,
       q.rows, CASE WHEN f.status IN ('rejected_file', 'duplicate_file') THEN 0 ELSE q.rows END
FROM rejection_reasons q JOIN v_night_files f USING (run_id, sha256, file_name)
WHERE NOT EXISTS (SELECT 1 FROM validation_results v WHERE v.run_id = q.run_id AND v.sha256 = q.sha256
                  AND v.file_name = q.file_name AND v.rule = q.reason AND NOT v.success)
