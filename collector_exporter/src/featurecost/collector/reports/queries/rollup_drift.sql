-- Per month: calls in the rollups versus distinct calls in `calls FINAL`. A positive
-- drift means a span arrived twice in different batches and the rollup counted it twice;
-- rebuild_rollups re-derives that month.
SELECT
    month,
    sum(r) AS rollup_calls,
    sum(s) AS stored_calls,
    toInt64(sum(r)) - toInt64(sum(s)) AS drift
FROM
(
    SELECT toYYYYMM(hour) AS month, toInt64(sum(calls)) AS r, toInt64(0) AS s
    FROM rollup_hourly GROUP BY month
    UNION ALL
    SELECT toYYYYMM(start_time) AS month, toInt64(0) AS r, toInt64(countIf(superseded_by = '')) AS s
    FROM calls FINAL GROUP BY month
)
GROUP BY month
ORDER BY month
