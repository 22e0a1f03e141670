-- Time series: priced cost per interval, one series per feature.
SELECT
    $__timeInterval(start_time) AS time,
    feature,
    sum(cost_usd) AS cost_usd
FROM calls FINAL
WHERE environment = ${environment:sqlstring}
  AND $__timeFilter(start_time)
  AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
  AND ('__all' IN (${tenant:sqlstring}) OR tenant IN (${tenant:sqlstring}))
GROUP BY time, feature
ORDER BY time, feature
