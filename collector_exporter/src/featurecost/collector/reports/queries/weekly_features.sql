-- The weekly per-feature row. Weeks start Monday 00:00 UTC; {since} and {until} are
-- Monday-aligned by the caller. Session cost = what the session's calls of that feature
-- cost within the week (restatement deltas included); only sessions with every call priced
-- enter the p50/p95 and anomaly rule (unpriced_sessions counts the others).
-- p50/p95: quantileExact, the sorted session cost at 0-based index floor(q * n).
-- Anomalous session: cost > median + 3.5 * 1.4826 * MAD (robust z-score > 3.5) and
-- cost > 2 * median, where median and MAD are over the feature's priced sessions of the
-- 4 weeks before the session's week; no verdict with fewer than 10 baseline sessions.
WITH
    sessions AS (
        -- FINAL: rollup_sessions is at this grain already, merging on read beats a GROUP BY
        SELECT week, feature, cost_usd AS cost, unpriced_calls AS unpriced
        FROM rollup_sessions FINAL
        WHERE ({environment:String} = '*' OR environment = {environment:String})
          AND calls != 0  -- a session whose only call was superseded (0050) is no session
          AND week >= toMonday(toStartOfHour({since:DateTime64(6, 'UTC')})) - 28
          AND week < {until:DateTime64(6, 'UTC')}
    ),
    per_week AS (
        SELECT
            week,
            feature,
            count() AS sessions,
            countIf(unpriced > 0) AS unpriced_sessions,
            groupArrayIf(cost, unpriced = 0) AS priced
        FROM sessions
        GROUP BY week, feature
    ),
    with_baseline AS (
        SELECT
            week,
            feature,
            sessions,
            unpriced_sessions,
            priced,
            arrayFlatten(groupArray(priced) OVER (
                PARTITION BY feature ORDER BY toInt64(toRelativeWeekNum(week))
                RANGE BETWEEN 4 PRECEDING AND 1 PRECEDING)) AS baseline
        FROM per_week
    ),
    session_stats AS (
        SELECT
            week,
            feature,
            sessions,
            unpriced_sessions,
            arrayReduce('quantileExact(0.5)', priced) AS session_cost_p50,
            arrayReduce('quantileExact(0.95)', priced) AS session_cost_p95,
            length(baseline) AS baseline_sessions,
            arrayReduce('quantileExact(0.5)', baseline) AS baseline_median,
            arrayReduce('quantileExact(0.5)', arrayMap(c -> abs(c - baseline_median), baseline)) AS baseline_mad,
            if(baseline_sessions >= 10,
               arrayCount(c -> c > baseline_median + baseline_mad * toDecimal32('5.1891', 4)
                               AND c > 2 * baseline_median, priced),
               0) AS anomalous_sessions
        FROM with_baseline
        WHERE week >= toMonday(toStartOfHour({since:DateTime64(6, 'UTC')})) - 7
    ),
    spend AS (
        SELECT
            toMonday(hour) AS week,
            feature,
            sum(calls) AS calls,
            sum(unpriced_calls) AS unpriced_calls,
            sum(cost_usd) AS spend_usd,
            sum(restated_usd) AS restated_usd
        FROM rollup_hourly
        WHERE ({environment:String} = '*' OR environment = {environment:String})
          AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')}) - INTERVAL 7 DAY
          AND hour < {until:DateTime64(6, 'UTC')}
        GROUP BY week, feature
    ),
    revenue AS (
        SELECT
            w.week AS week,
            sum(u.revenue_usd
                * toDecimal64(greatest(0, dateDiff('day', greatest(u.period_start, w.week),
                                                   least(u.period_end + 1, w.week + 7))), 0)
                / toDecimal64(dateDiff('day', u.period_start, u.period_end + 1), 0)) AS revenue_usd,
            count() AS usage_rows
        FROM (SELECT DISTINCT week FROM spend) AS w
        CROSS JOIN (SELECT * FROM product_usage FINAL WHERE feature = '') AS u
        WHERE u.period_start < w.week + 7 AND u.period_end >= w.week
        GROUP BY w.week
    )
SELECT
    p.week AS week,
    p.feature AS feature,
    p.calls AS calls,
    p.unpriced_calls AS unpriced_calls,
    p.spend_usd AS spend_usd,
    p.restated_usd AS restated_usd,
    st.sessions AS sessions,
    st.unpriced_sessions AS unpriced_sessions,
    st.session_cost_p50 AS session_cost_p50,
    st.session_cost_p95 AS session_cost_p95,
    st.anomalous_sessions AS anomalous_sessions,
    st.baseline_sessions AS baseline_sessions,
    r.revenue_usd AS revenue_usd,
    r.usage_rows AS revenue_rows
FROM spend AS p
LEFT JOIN session_stats AS st ON st.week = p.week AND st.feature = p.feature
LEFT JOIN revenue AS r ON r.week = p.week
ORDER BY week, spend_usd DESC, feature
