-- One row per data-subject request: its right and clause, when it was received, the last day to answer it (as extended), days left as of today and its state (overdue, due_soon, open, fulfilled, refused); never the subject's tokens.
-- Today is the operator's local day (operator.local_timezone), as a request's dates are; due_soon: open, and the
-- last day at most the policy's subject_rights.due_soon_within_days away. Both stand where the markers below
-- are. A request is overdue from the day after its last day.
WITH today AS (SELECT /*today*/ AS today)
SELECT request_id, subject_right, clause, subject_kind, received, due, extended_to,
       coalesce(extended_to, due) AS due_effective,
       CASE WHEN status IN ('open', 'extended') THEN coalesce(extended_to, due) - today END AS days_left,
       CASE WHEN status NOT IN ('open', 'extended') THEN status
            WHEN coalesce(extended_to, due) < today THEN 'overdue'
            WHEN coalesce(extended_to, due) <= today + /*due soon within days*/ THEN 'due_soon'
            ELSE 'open' END AS state,
       status, reference, recorded_at, recorded_by, extended_at, fulfilled_at, refused_at,
       restricted_at IS NOT NULL AND lifted_at IS NULL AS restriction_in_force
FROM subject_requests, today
ORDER BY due_effective, received, request_id
