-- rollup_sessions' rows computed straight from `calls FINAL` (+ restatement deltas; a
-- restatement that prices an unpriced call takes it out of unpriced_calls, as 0070's views
-- do), at the rollup's own grain, so a query may read `rollup_sessions FINAL` without grouping.
SELECT
    week,
    environment,
    feature,
    session_id,
    sum(calls) AS calls,
    sum(unpriced_calls) AS unpriced_calls,
    sum(cost_usd) AS cost_usd,
    sum(restated_usd) AS restated_usd
FROM
(
    SELECT
        toMonday(src.start_time) AS week,
        src.environment AS environment,
        src.feature AS feature,
        src.session_id AS session_id,
        toUInt64(1) AS calls,
        toInt64(src.cost_usd IS NULL) AS unpriced_calls,
        ifNull(src.cost_usd, toDecimal128(0, 18)) AS cost_usd,
        toDecimal128(0, 18) AS restated_usd
    FROM calls AS src FINAL
    WHERE src.superseded_by = ''  -- a superseded span is another span's call (0050)
    UNION ALL
    SELECT
        toMonday(src.start_time) AS week,
        src.environment AS environment,
        src.feature AS feature,
        src.session_id AS session_id,
        toUInt64(0), -toInt64(src.previous_cost_usd IS NULL AND src.cost_usd IS NOT NULL), src.cost_delta_usd, src.cost_delta_usd
    FROM cost_restatements AS src
)
GROUP BY week, environment, feature, session_id
