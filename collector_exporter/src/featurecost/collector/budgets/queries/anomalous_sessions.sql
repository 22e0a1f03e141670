-- Sessions active in [since, until) that the reports' anomaly rule flags (docs/reports.md):
-- session cost > median + 3.5 * 1.4826 * MAD (robust z-score > 3.5) and > 2 * median, where
-- median and MAD are over the environment × feature's fully priced sessions in
-- [baseline_since, since); no verdict with fewer than {min_baseline_sessions} of them.
WITH baseline AS
(
    SELECT
        environment,
        feature,
        groupArray(session_cost) AS costs,
        length(costs) AS sessions,
        arrayReduce('quantileExact(0.5)', costs) AS median_session_cost,
        arrayReduce('quantileExact(0.5)', arrayMap(c -> abs(c - median_session_cost), costs)) AS mad
    FROM
    (
        SELECT environment, feature, session_id, sum(cost_usd) AS session_cost
        FROM calls FINAL
        WHERE start_time >= {baseline_since:DateTime64(6, 'UTC')}
          AND superseded_by = ''
          AND start_time < {since:DateTime64(6, 'UTC')}
        GROUP BY environment, feature, session_id
        HAVING countIf(cost_usd IS NULL) = 0
    )
    GROUP BY environment, feature
)
SELECT
    s.environment AS environment,
    s.feature AS feature,
    s.session_id AS session_id,
    s.session_cost AS session_cost,
    s.calls AS calls,
    b.median_session_cost AS median_session_cost,
    b.sessions AS baseline_sessions
FROM
(
    SELECT environment, feature, session_id, sum(cost_usd) AS session_cost, count() AS calls
    FROM calls FINAL
    WHERE start_time >= {since:DateTime64(6, 'UTC')}
      AND superseded_by = ''
      AND start_time < {until:DateTime64(6, 'UTC')}
      AND cost_usd IS NOT NULL
    GROUP BY environment, feature, session_id
) AS s
INNER JOIN baseline AS b ON s.environment = b.environment AND s.feature = b.feature
WHERE b.sessions >= {min_baseline_sessions:UInt32}
  AND s.session_cost > b.median_session_cost + b.mad * toDecimal32('5.1891', 4)
  AND s.session_cost > 2 * b.median_session_cost
ORDER BY s.session_cost DESC
LIMIT 100
