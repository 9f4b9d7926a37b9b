-- Holds not released: who placed them, why, their scope and the key ids of a subject (never its tokens).
SELECT hold_id, reason, placed_by, placed_at, dataset, date_from, date_to, subject_kind,
       CASE WHEN subject_tokens IS NULL THEN NULL
            ELSE array_to_string(list_sort(json_keys(subject_tokens)), ',') END AS subject_key_ids,
       current_date - CAST(placed_at AS DATE) AS days_active
FROM legal_holds WHERE released_at IS NULL ORDER BY placed_at, hold_id
