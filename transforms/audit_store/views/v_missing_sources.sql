-- Sources that did not come: a format read on 3 nights with files running, then not read on a night (for up to 7 nights).
-- A source is a format (the file's profile), never a file name. "Not read" is what the store can say: the extract
-- did not arrive, or it came and was refused, failed or repeated an earlier night's content (the night's files say
-- which). A source is regular once read on 3 nights with files running, whatever the calendar gap between them; it
-- is missing on each night after its last read until it is read again, for up to 7 audited nights: then it is taken
-- as retired (a format replaced by another, e.g. a switch upgrade), no longer expected (docs/design.md §9).
WITH read_as AS (       -- the formats each night's files were read as (a file refused, failed or known has none)
    SELECT DISTINCT night, profile AS source FROM v_night_files WHERE profile IS NOT NULL
), with_files AS (
    SELECT night, row_number() OVER (ORDER BY night) AS k FROM (SELECT DISTINCT night FROM read_as)
), regular AS (         -- the nights a source was read on, having been read on the 2 nights with files before too
    SELECT s.source, s.night FROM read_as s JOIN with_files w USING (night)
    QUALIFY count(*) OVER (PARTITION BY s.source ORDER BY w.k RANGE BETWEEN 2 PRECEDING AND CURRENT ROW) = 3
), audited AS (
    SELECT DISTINCT night FROM runs WHERE finished_at IS NOT NULL
), last_read AS (       -- per audited night and source, the latest night before it the source was read on
    SELECT a.night, s.source, max(s.night) AS last_read_on
    FROM audited a JOIN read_as s ON s.night < a.night GROUP BY a.night, s.source
), missing AS (
    SELECT l.night, l.source, l.last_read_on,
           (SELECT count(*) FROM audited a WHERE a.night > l.last_read_on AND a.night <= l.night) AS nights_without
    FROM last_read l JOIN regular g ON g.source = l.source AND g.night = l.last_read_on
    WHERE NOT EXISTS (SELECT 1 FROM read_as t WHERE t.night = l.night AND t.source = l.source)
)
SELECT night, source, last_read_on, CAST(nights_without AS INTEGER) AS nights_without FROM missing
WHERE nights_without <= 7
