-- Variable `tenant` (multi, All = '__all'): tenants with calls in the time range.
SELECT DISTINCT tenant
FROM calls
WHERE environment = ${environment:sqlstring}
  AND $__timeFilter(start_time)
  AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
ORDER BY tenant
