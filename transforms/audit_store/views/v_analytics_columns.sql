-- What each billing column became in analytics (kept / pseudonymized / generalized / dropped), under which clause and HMAC key id, over how many files and nights.
SELECT a.dataset, a.column_name, a.output_column, a.treatment, a.action, a.clause, p.key_id,
       count(DISTINCT (a.run_id, a.sha256, a.file_name)) AS files,
       min(f.night) AS first_night, max(f.night) AS last_night
FROM analytics_findings a JOIN v_night_files f USING (run_id, sha256, file_name)
LEFT JOIN pseudonymization_log p ON p.run_id = a.run_id AND p.sha256 = a.sha256
     AND p.file_name = a.file_name AND p.dataset = a.dataset
     AND p.column_name IN (a.column_name, a.output_column)
GROUP BY ALL ORDER BY a.dataset, a.column_name, p.key_id
