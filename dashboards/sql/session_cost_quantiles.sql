-- Time series: p50 and p95 of the cost of a session per week (Monday 00:00 UTC), from
-- rollup_sessions (restatement deltas included). Weekly on purpose: that is the grain the
-- rollup keeps, and the weekly table's per-feature p50/p95 come out the same for one feature.
-- A session of several selected features costs the sum of them. Only sessions with every
-- call priced count (like the weekly report); the tenant variable does not apply (sessions
-- are not kept per tenant).
SELECT
    toDateTime(week, 'UTC') AS time,
    quantileExact(0.5)(session_cost) AS p50_usd,
    quantileExact(0.95)(session_cost) AS p95_usd
FROM
(
    SELECT
        week,
        session_id,
        sum(cost_usd) AS session_cost,
        sum(unpriced_calls) AS session_unpriced
    FROM rollup_sessions
    WHERE environment = ${environment:sqlstring}
      AND week >= toMonday($__fromTime, 'UTC') AND week <= toDate($__toTime, 'UTC')
      AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
    GROUP BY week, session_id
)
WHERE session_unpriced = 0
GROUP BY time
ORDER BY time
