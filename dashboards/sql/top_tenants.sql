-- Table: the ten tenants with the highest spend (priced calls plus restatement deltas), from
-- rollup_hourly (whole hours). Unpriced calls are counted, never summed as $0; a tenant with
-- nothing priced has spend NULL.
SELECT
    if(tenant = '', '(no tenant)', tenant) AS tenant,
    if(sum(r.calls) > sum(r.unpriced_calls) OR sum(r.restated_usd) != 0, sum(r.cost_usd), NULL) AS spend_usd,
    sum(r.restated_usd) AS restated_usd,
    sum(r.calls) AS calls,
    sum(r.unpriced_calls) AS unpriced_calls
FROM rollup_hourly AS r
WHERE environment = ${environment:sqlstring}
  AND hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
  AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
  AND ('__all' IN (${tenant:sqlstring}) OR tenant IN (${tenant:sqlstring}))
GROUP BY tenant
ORDER BY ifNull(spend_usd, 0) DESC, tenant
LIMIT 10
