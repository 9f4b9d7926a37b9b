-- Each night's files with their latest real outcome (a re-run records the files it skips as 'known'), and the reason most of a file's rows not loaded were quarantined or refused for.
WITH latest AS (
    SELECT * FROM source_files WHERE status <> 'known'
    QUALIFY row_number() OVER (PARTITION BY night, sha256, file_name ORDER BY processed_at DESC, run_id DESC) = 1
), main_reason AS (   -- a row with two faults counts under both; ties go to the reason first by name
    SELECT run_id, sha256, file_name, reason AS main_reason, rows AS main_reason_rows FROM rejection_reasons
    WHERE rows > 0
    QUALIFY row_number() OVER (PARTITION BY run_id, sha256, file_name ORDER BY rows DESC, reason) = 1
)
SELECT l.*, m.main_reason, m.main_reason_rows
FROM latest l LEFT JOIN main_reason m USING (run_id, sha256, file_name)
