-- Time series: spend per interval (priced calls plus restatement deltas), one series per
-- feature, from rollup_hourly: intervals shorter than an hour show whole hours. An interval
-- where nothing was priced is a gap (NULL), not $0.
SELECT
    $__timeInterval(hour) AS time,
    feature,
    if(sum(r.calls) > sum(r.unpriced_calls) OR sum(r.restated_usd) != 0, sum(r.cost_usd), NULL) AS cost_usd
FROM rollup_hourly AS r
WHERE environment = ${environment:sqlstring}
  AND hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
  AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
  AND ('__all' IN (${tenant:sqlstring}) OR tenant IN (${tenant:sqlstring}))
GROUP BY time, feature
ORDER BY time, feature
