-- Median session cost per feature and week (Monday 00:00 UTC), over sessions whose calls
-- were all priced: the series the regression rule reads.
SELECT week, feature, count() AS sessions, quantileExact(0.5)(cost) AS session_cost_p50
FROM
(
    SELECT week, feature, cost_usd AS cost, unpriced_calls AS unpriced
    FROM rollup_sessions FINAL
    WHERE ({environment:String} = '*' OR environment = {environment:String})
      AND calls != 0  -- a session whose only call was superseded (0050) is no session
      AND week >= toMonday(toStartOfHour({since:DateTime64(6, 'UTC')}))
      AND week < {until:DateTime64(6, 'UTC')}
)
WHERE unpriced = 0
GROUP BY week, feature
ORDER BY feature, week
