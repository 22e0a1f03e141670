-- Window totals: all spend, and the part no feature claimed ('unattributed').
SELECT
    sum(calls) AS total_calls,
    sum(unpriced_calls) AS total_unpriced_calls,
    sum(cost_usd) AS total_spend_usd,
    sumIf(calls, feature = 'unattributed') AS unattributed_calls,
    sumIf(cost_usd, feature = 'unattributed') AS unattributed_spend_usd
FROM rollup_hourly
WHERE ({environment:String} = '*' OR environment = {environment:String})
  AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')})
  AND hour < {until:DateTime64(6, 'UTC')}
