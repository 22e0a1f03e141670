-- Cost by one dimension ({dimension} is one of tenant, user_id, plan, version, provider,
-- model) within each feature: A/B cost per equivalent action. An action that used two
-- models counts once under each model.
-- Distinct ids are counted by their 64-bit hash: ~5x faster than hashing the strings,
-- and two of n ids collide with odds about n^2 / 2^65 (1 in 10 million at 2M actions).
SELECT
    feature,
    {dimension:Identifier} AS value,
    sum(calls) AS calls,
    sum(unpriced_calls) AS unpriced_calls,
    uniqExact(cityHash64(root_id)) AS actions,
    uniqExact(cityHash64(session_id)) AS sessions,
    sum(cost_usd) AS spend_usd
FROM rollup_actions
WHERE ({environment:String} = '*' OR environment = {environment:String})
  AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')})
  AND hour < {until:DateTime64(6, 'UTC')}
  AND ({feature:String} = '' OR feature = {feature:String})
GROUP BY feature, value
ORDER BY feature, spend_usd DESC, value
