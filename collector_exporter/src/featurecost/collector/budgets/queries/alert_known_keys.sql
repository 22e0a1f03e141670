-- Which of these dedupe keys already raised an alert (whatever its delivery state).
SELECT dedupe_key
FROM alerts FINAL
WHERE dedupe_key IN {keys:Array(String)}
