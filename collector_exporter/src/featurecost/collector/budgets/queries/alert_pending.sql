-- Alerts still to deliver: not every webhook accepted them, attempts left.
SELECT *
FROM alerts FINAL
WHERE status = 'pending' AND attempts < {max_attempts:UInt32}
ORDER BY raised_at, dedupe_key
