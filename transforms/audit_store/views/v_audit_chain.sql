-- The audit log's chain at a glance: entries, last link, and whether every prev_hash is the hash of the entry before it (links only; `cdr-audit verify` recomputes every hash).
WITH links AS (
    SELECT seq, hash, prev_hash, logged_at,
           lag(hash, 1, repeat('0', 64)) OVER (ORDER BY seq) AS expected_prev_hash,   -- the genesis link
           lag(seq, 1, 0) OVER (ORDER BY seq) AS previous_seq
    FROM audit_log)
SELECT count(*) AS entries, min(seq) AS first_seq, max(seq) AS last_seq, arg_max(hash, seq) AS last_hash,
       max(logged_at) AS last_logged_at,
       coalesce(bool_and(prev_hash = expected_prev_hash AND seq = previous_seq + 1), true) AS links_ok,
       min(seq) FILTER (WHERE prev_hash <> expected_prev_hash OR seq <> previous_seq + 1) AS first_bad_seq
FROM links
