-- Per tenant: LLM spend and users in the window next to imported revenue and active users.
-- Revenue of an imported period is prorated by the days it overlaps [since, until)
-- (day-aligned by the caller); active users = the largest count reported for an
-- overlapping period.
SELECT
    tenant,
    sum(spend_usd) AS spend_usd,
    sum(calls) AS calls,
    sum(unpriced_calls) AS unpriced_calls,
    sum(revenue_usd) AS revenue_usd,
    max(active_users) AS active_users,
    sum(usage_rows) AS usage_rows
FROM
(
    SELECT
        tenant,
        sum(cost_usd) AS spend_usd,
        -- signed since 0050 (withdrawn calls); raw source sums unsigned: one type for the UNION
        toInt64(sum(calls)) AS calls,
        toInt64(sum(unpriced_calls)) AS unpriced_calls,
        toDecimal128(0, 18) AS revenue_usd,
        toUInt64(0) AS active_users,
        toUInt64(0) AS usage_rows
    FROM rollup_hourly
    WHERE ({environment:String} = '*' OR environment = {environment:String})
      AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')})
      AND hour < {until:DateTime64(6, 'UTC')}
    GROUP BY tenant
    UNION ALL
    SELECT
        tenant,
        toDecimal128(0, 18),
        toInt64(0),
        toInt64(0),
        sum(revenue_usd
            * toDecimal64(dateDiff('day', greatest(period_start, toDate({since:DateTime64(6, 'UTC')})),
                                   least(period_end + 1, toDate({until:DateTime64(6, 'UTC')}))), 0)
            / toDecimal64(dateDiff('day', period_start, period_end + 1), 0)),
        max(active_users),
        toUInt64(count())
    FROM product_usage FINAL
    WHERE feature = ''
      AND period_start < toDate({until:DateTime64(6, 'UTC')})
      AND period_end >= toDate({since:DateTime64(6, 'UTC')})
    GROUP BY tenant
)
GROUP BY tenant
ORDER BY spend_usd DESC, tenant
