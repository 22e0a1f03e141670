-- Stat: priced spend, calls, sessions and unpriced calls in the range (unpriced never counts as $0).
SELECT
    sum(cost_usd) AS spend_usd,
    count() AS calls,
    uniqExact(session_id) AS sessions,
    countIf(cost_usd IS NULL) AS unpriced_calls
FROM calls FINAL
WHERE environment = ${environment:sqlstring}
  AND $__timeFilter(start_time)
  AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
  AND ('__all' IN (${tenant:sqlstring}) OR tenant IN (${tenant:sqlstring}))
