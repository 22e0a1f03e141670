-- The {n} most expensive root actions (user actions) in the window. Two passes: rank
-- actions by spend alone, grouping by the 64-bit hash of the id (cheap), then read the
-- details of the top {n} only, grouped by the id itself (amounts stay exact).
WITH top AS (
    SELECT feature, cityHash64(root_id) AS root_hash, sum(cost_usd) AS spend
    FROM rollup_actions
    WHERE ({environment:String} = '*' OR environment = {environment:String})
      AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')})
      AND hour < {until:DateTime64(6, 'UTC')}
    GROUP BY feature, root_hash
    ORDER BY spend DESC, feature, any(root_id)
    LIMIT {n:UInt32}
)
SELECT
    feature,
    root_id,
    any(session_id) AS session_id,
    any(tenant) AS tenant,
    any(user_id) AS user_id,
    min(first_call) AS first_call,
    sum(calls) AS calls,
    sum(unpriced_calls) AS unpriced_calls,
    sum(cost_usd) AS spend_usd
FROM rollup_actions
WHERE ({environment:String} = '*' OR environment = {environment:String})
  AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')})
  AND hour < {until:DateTime64(6, 'UTC')}
  AND (feature, cityHash64(root_id)) IN (SELECT feature, root_hash FROM top)
GROUP BY feature, root_id
ORDER BY spend_usd DESC, feature, root_id
