-- Median session cost per environment × feature × week (weeks start Monday, UTC) over
-- [since, until). A session belongs to the week it started in; sessions with an
-- unpriced call are left out rather than counted cheaper than they were.
SELECT
    environment,
    feature,
    week,
    quantileExact(0.5)(session_cost) AS median_session_cost,
    count() AS sessions
FROM
(
    SELECT
        environment,
        feature,
        session_id,
        toMonday(min(start_time)) AS week,
        sum(cost_usd) AS session_cost
    FROM calls FINAL
    WHERE start_time >= {since:DateTime64(6, 'UTC')}
      AND start_time < {until:DateTime64(6, 'UTC')}
    GROUP BY environment, feature, session_id
    HAVING countIf(cost_usd IS NULL) = 0
)
GROUP BY environment, feature, week
ORDER BY environment, feature, week
