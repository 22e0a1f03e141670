-- Variable `feature` (multi, All = '__all'): features with calls in the time range.
SELECT DISTINCT feature
FROM rollup_hourly
WHERE environment = ${environment:sqlstring}
  AND hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
ORDER BY feature
