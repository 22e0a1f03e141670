-- Time series: p50 and p95 of the cost of a session, by the interval the session started in.
SELECT
    $__timeInterval(session_start) AS time,
    quantileExact(0.5)(session_cost) AS p50_usd,
    quantileExact(0.95)(session_cost) AS p95_usd
FROM
(
    SELECT
        session_id,
        min(start_time) AS session_start,
        sum(cost_usd) AS session_cost
    FROM calls FINAL
    WHERE environment = ${environment:sqlstring}
      AND $__timeFilter(start_time)
      AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
      AND ('__all' IN (${tenant:sqlstring}) OR tenant IN (${tenant:sqlstring}))
    GROUP BY session_id
)
GROUP BY time
ORDER BY time
