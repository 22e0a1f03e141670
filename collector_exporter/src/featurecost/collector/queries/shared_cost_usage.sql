-- Per tenant and feature: spend and root actions (the usage the shared-cost rule splits
-- by). The caller marks {shared} features as shared and allocates their spend.
SELECT
    tenant,
    feature,
    has({shared:Array(String)}, feature) AS is_shared,
    uniqExact(root_id) AS actions,
    sum(calls) AS calls,
    sum(unpriced_calls) AS unpriced_calls,
    sum(cost_usd) AS spend_usd
FROM rollup_actions
WHERE ({environment:String} = '*' OR environment = {environment:String})
  AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')})
  AND hour < {until:DateTime64(6, 'UTC')}
GROUP BY tenant, feature
ORDER BY tenant, feature
