-- Per month: calls in the rollups versus distinct calls in `calls FINAL`. A positive
-- drift means a span arrived twice in different batches and the rollup counted it twice;
-- rebuild_rollups re-derives that month.
SELECT
    month,
    sum(rollup_calls) AS rollup_calls,
    sum(stored_calls) AS stored_calls,
    toInt64(sum(rollup_calls)) - toInt64(sum(stored_calls)) AS drift
FROM
(
    SELECT toYYYYMM(hour) AS month, sum(calls) AS rollup_calls, toUInt64(0) AS stored_calls
    FROM rollup_hourly GROUP BY month
    UNION ALL
    SELECT toYYYYMM(start_time) AS month, toUInt64(0), count() FROM calls FINAL GROUP BY month
)
GROUP BY month
ORDER BY month
