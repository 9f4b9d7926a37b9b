-- Each night's files with their latest real outcome (a re-run records the files it skips as 'known').
SELECT * FROM source_files WHERE status <> 'known'
QUALIFY row_number() OVER (PARTITION BY night, sha256, file_name ORDER BY processed_at DESC, run_id DESC) = 1
