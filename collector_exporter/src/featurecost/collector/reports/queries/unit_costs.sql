-- Per feature: LLM spend next to the product usage imported for it (usage.<feature>
-- columns of `featurecost import usage`), summed over tenants. Usage of an imported period
-- is prorated by the days it overlaps [since, until) (day-aligned by the caller), like
-- revenue; the caller divides spend by usage.
SELECT
    feature,
    sum(spend_usd) AS spend_usd,
    sum(calls) AS calls,
    sum(unpriced_calls) AS unpriced_calls,
    sum(usage_count) AS usage_count,
    sum(usage_rows) AS usage_rows
FROM
(
    SELECT
        feature,
        sum(cost_usd) AS spend_usd,
        -- signed since 0050 (withdrawn calls); raw source sums unsigned: one type for the UNION
        toInt64(sum(calls)) AS calls,
        toInt64(sum(unpriced_calls)) AS unpriced_calls,
        toDecimal128(0, 18) AS usage_count,
        toUInt64(0) AS usage_rows
    FROM rollup_hourly
    WHERE ({environment:String} = '*' OR environment = {environment:String})
      AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')})
      AND hour < {until:DateTime64(6, 'UTC')}
    GROUP BY feature
    UNION ALL
    SELECT
        feature,
        toDecimal128(0, 18),
        toInt64(0),
        toInt64(0),
        sum(toDecimal128(usage_count, 18)
            * toDecimal64(dateDiff('day', greatest(period_start, toDate({since:DateTime64(6, 'UTC')})),
                                   least(period_end + 1, toDate({until:DateTime64(6, 'UTC')}))), 0)
            / toDecimal64(dateDiff('day', period_start, period_end + 1), 0)),
        toUInt64(count())
    FROM product_usage FINAL
    WHERE feature != ''
      AND period_start < toDate({until:DateTime64(6, 'UTC')})
      AND period_end >= toDate({since:DateTime64(6, 'UTC')})
    GROUP BY feature
)
GROUP BY feature
ORDER BY spend_usd DESC, feature
