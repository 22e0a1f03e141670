-- Table: the weekly per-feature row. Spend, calls, actions, sessions, cost per session
-- p50/p95 and the week-over-week change of the median session cost. A session's cost
-- sums its priced calls; sessions with no priced call have no cost and stay out of the
-- quantiles instead of counting as $0.
SELECT
    week,
    feature,
    spend_usd,
    calls,
    actions,
    sessions,
    session_cost_p50_usd,
    session_cost_p95_usd,
    if(previous_p50 > 0, toFloat64(session_cost_p50_usd) / toFloat64(previous_p50) - 1, NULL) AS p50_change_wow,
    unpriced_calls
FROM
(
    SELECT
        week,
        feature,
        sum(session_cost) AS spend_usd,
        sum(session_calls) AS calls,
        sum(session_actions) AS actions,
        count() AS sessions,
        quantileExact(0.5)(session_cost) AS session_cost_p50_usd,
        quantileExact(0.95)(session_cost) AS session_cost_p95_usd,
        lagInFrame(session_cost_p50_usd) OVER (PARTITION BY feature ORDER BY week) AS previous_p50,
        sum(session_unpriced) AS unpriced_calls
    FROM
    (
        SELECT
            toMonday(start_time) AS week,
            feature,
            session_id,
            sum(cost_usd) AS session_cost,
            count() AS session_calls,
            uniqExact(root_id) AS session_actions,
            countIf(cost_usd IS NULL) AS session_unpriced
        FROM calls FINAL
        WHERE environment = ${environment:sqlstring}
          AND $__timeFilter(start_time)
          AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
          AND ('__all' IN (${tenant:sqlstring}) OR tenant IN (${tenant:sqlstring}))
        GROUP BY week, feature, session_id
    )
    GROUP BY week, feature
)
ORDER BY week DESC, ifNull(spend_usd, 0) DESC, feature
