-- The {n} most expensive root actions (user actions) in the window. Two passes: rank
-- actions by spend alone (cheap), then read the details of the top {n} only.
WITH top AS (
    SELECT feature, root_id, sum(cost_usd) AS spend
    FROM rollup_actions
    WHERE ({environment:String} = '*' OR environment = {environment:String})
      AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')})
      AND hour < {until:DateTime64(6, 'UTC')}
    GROUP BY feature, root_id
    ORDER BY spend DESC, feature, root_id
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
  AND (feature, root_id) IN (SELECT feature, root_id FROM top)
GROUP BY feature, root_id
ORDER BY spend_usd DESC, feature, root_id
