-- Stat: how much of the bill the report cannot explain, from rollup_hourly (whole hours).
-- Unpriced = calls whose cost is unknown (NULL, counted in unpriced_calls, never $0);
-- unattributed = calls no feature was set for. Deliberately not filtered by the feature
-- variable: the point is the share of everything.
SELECT
    if(sum(r.calls) = 0, NULL, sum(r.unpriced_calls) / sum(r.calls)) AS unpriced_call_share,
    if(sum(r.calls) = 0, NULL, sumIf(r.calls, feature = 'unattributed') / sum(r.calls)) AS unattributed_call_share,
    if(
        sum(r.cost_usd) = 0, NULL,
        toFloat64(sumIf(r.cost_usd, feature = 'unattributed')) / toFloat64(sum(r.cost_usd))
    ) AS unattributed_cost_share
FROM rollup_hourly AS r
WHERE environment = ${environment:sqlstring}
  AND hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
  AND ('__all' IN (${tenant:sqlstring}) OR tenant IN (${tenant:sqlstring}))
