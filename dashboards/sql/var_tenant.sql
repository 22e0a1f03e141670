-- Variable `tenant` (multi, All = '__all'): tenants with calls in the time range.
SELECT DISTINCT tenant
FROM rollup_hourly
WHERE environment = ${environment:sqlstring}
  AND hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
  AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
ORDER BY tenant
