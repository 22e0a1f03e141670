-- The most recent alerts, newest first.
SELECT *
FROM alerts FINAL
ORDER BY raised_at DESC, dedupe_key
LIMIT {limit:UInt32}
