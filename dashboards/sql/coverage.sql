-- Stat: how much of the bill the report cannot explain. Unpriced = calls whose cost is
-- unknown (NULL); unattributed = calls no feature was set for. Deliberately not filtered
-- by the feature variable: the point is the share of everything.
SELECT
    if(count() = 0, NULL, countIf(cost_usd IS NULL) / count()) AS unpriced_call_share,
    if(count() = 0, NULL, countIf(feature = 'unattributed') / count()) AS unattributed_call_share,
    if(
        ifNull(sum(cost_usd), 0) = 0, NULL,
        toFloat64(ifNull(sumIf(cost_usd, feature = 'unattributed'), 0)) / toFloat64(sum(cost_usd))
    ) AS unattributed_cost_share
FROM calls FINAL
WHERE environment = ${environment:sqlstring}
  AND $__timeFilter(start_time)
  AND ('__all' IN (${tenant:sqlstring}) OR tenant IN (${tenant:sqlstring}))
