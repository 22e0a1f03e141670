-- Variable `feature` (multi, All = '__all'): features with calls in the time range.
SELECT DISTINCT feature
FROM calls
WHERE environment = ${environment:sqlstring}
  AND $__timeFilter(start_time)
ORDER BY feature
