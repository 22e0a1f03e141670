-- Stat: spend (priced calls plus restatement deltas), calls, sessions and unpriced calls in
-- the range, from rollup_actions (whole hours). Spend is NULL, not $0, when nothing was priced.
SELECT
    if(sum(r.calls) > sum(r.unpriced_calls) OR sum(r.restated_usd) != 0, sum(r.cost_usd), NULL) AS spend_usd,
    sum(r.restated_usd) AS restated_usd,
    sum(r.calls) AS calls,
    uniqExact(r.session_id) AS sessions,
    sum(r.unpriced_calls) AS unpriced_calls
FROM rollup_actions AS r
WHERE environment = ${environment:sqlstring}
  AND hour >= toStartOfHour($__fromTime) AND hour <= $__toTime
  AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
  AND ('__all' IN (${tenant:sqlstring}) OR tenant IN (${tenant:sqlstring}))
