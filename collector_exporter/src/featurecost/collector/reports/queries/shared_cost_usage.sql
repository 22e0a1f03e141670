-- Per tenant and feature: spend and root actions (the usage the shared-cost rule splits
-- by). The caller marks {shared} features as shared and allocates their spend.
-- Distinct ids are counted by their 64-bit hash: ~5x faster than hashing the strings,
-- and two of n ids collide with odds about n^2 / 2^65 (1 in 10 million at 2M actions).
SELECT
    tenant,
    feature,
    has({shared:Array(String)}, feature) AS is_shared,
    uniqExact(cityHash64(root_id)) AS actions,
    sum(calls) AS calls,
    sum(unpriced_calls) AS unpriced_calls,
    sum(cost_usd) AS spend_usd
FROM rollup_actions
WHERE ({environment:String} = '*' OR environment = {environment:String})
  AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')})
  AND hour < {until:DateTime64(6, 'UTC')}
GROUP BY tenant, feature
ORDER BY tenant, feature
