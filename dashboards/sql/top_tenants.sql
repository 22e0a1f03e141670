-- Bar gauge / table: the ten tenants with the highest priced spend.
SELECT
    if(tenant = '', '(no tenant)', tenant) AS tenant,
    sum(cost_usd) AS spend_usd,
    count() AS calls,
    uniqExact(user_id) AS users,
    uniqExact(session_id) AS sessions,
    countIf(cost_usd IS NULL) AS unpriced_calls
FROM calls FINAL
WHERE environment = ${environment:sqlstring}
  AND $__timeFilter(start_time)
  AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
  AND ('__all' IN (${tenant:sqlstring}) OR tenant IN (${tenant:sqlstring}))
GROUP BY tenant
ORDER BY ifNull(spend_usd, 0) DESC, tenant
LIMIT 10
