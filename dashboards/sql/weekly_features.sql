-- Table: the `weekly` report's rows. build.py puts the report's own named query
-- (collector queries/weekly_features.sql) where @query(weekly_features) stands, with
-- since/until bound to the Mondays around the time range (build.NAMED_QUERY_PARAMETERS):
-- one query, no drifting copy. Spend includes restatement deltas; p50/p95 are over the
-- sessions with every call priced (NULL when there are none), unpriced_sessions counts the
-- others. The week-over-week change compares with the feature's previous calendar week.
-- The tenant variable does not apply (the weekly report is per feature).
SELECT
    week,
    feature,
    spend_usd,
    restated_usd,
    calls,
    unpriced_calls,
    sessions,
    unpriced_sessions,
    session_p50_usd,
    session_p95_usd,
    if(previous_p50 > 0, toFloat64(session_p50_usd) / toFloat64(previous_p50) - 1, NULL) AS p50_change_wow,
    anomalous_sessions
FROM
(
    SELECT
        *,
        max(session_p50_usd) OVER (
            PARTITION BY feature ORDER BY toInt64(toRelativeWeekNum(week))
            RANGE BETWEEN 1 PRECEDING AND 1 PRECEDING) AS previous_p50
    FROM
    (
        SELECT
            *,
            if(sessions > unpriced_sessions, session_cost_p50, NULL) AS session_p50_usd,
            if(sessions > unpriced_sessions, session_cost_p95, NULL) AS session_p95_usd
        FROM
        (
            @query(weekly_features)
        )
    )
)
WHERE week >= toMonday($__fromTime, 'UTC')
  AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
ORDER BY week DESC, spend_usd DESC, feature
