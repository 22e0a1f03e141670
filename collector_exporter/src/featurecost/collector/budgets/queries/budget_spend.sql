-- Spend of one budget scope over [since, until), one row per value of the scope's
-- "each" dimensions (a single row when it has none).
-- Cost = priced calls + restatement deltas (re-pricing appends deltas, never edits calls),
-- both placed in the period of the call's start_time. unpriced_calls counts calls whose
-- cost is still unknown, so an unknown model cannot make a budget look safe.
SELECT
    g_feature,
    g_tenant,
    g_user,
    g_environment,
    sum(cost) AS spend_usd,
    sum(is_call) AS calls,
    sum(unpriced) AS unpriced_calls
FROM
(
    SELECT
        if({each_feature:UInt8}, feature, '') AS g_feature,
        if({each_tenant:UInt8}, tenant, '') AS g_tenant,
        if({each_user:UInt8}, user_id, '') AS g_user,
        if({each_environment:UInt8}, environment, '') AS g_environment,
        ifNull(cost_usd, toDecimal128(0, 18)) AS cost,
        toUInt64(1) AS is_call,
        toUInt64(cost_usd IS NULL AND (trace_id, span_id) NOT IN (SELECT trace_id, span_id FROM cost_restatements))
            AS unpriced
    FROM calls FINAL
    WHERE start_time >= {since:DateTime64(6, 'UTC')}
      AND superseded_by = ''
      AND start_time < {until:DateTime64(6, 'UTC')}
      AND (NOT {match_feature:UInt8} OR feature = {feature:String})
      AND (NOT {match_tenant:UInt8} OR tenant = {tenant:String})
      AND (NOT {match_user:UInt8} OR user_id = {user:String})
      AND (NOT {match_environment:UInt8} OR environment = {environment:String})

    UNION ALL

    SELECT
        if({each_feature:UInt8}, feature, '') AS g_feature,
        if({each_tenant:UInt8}, tenant, '') AS g_tenant,
        if({each_user:UInt8}, user_id, '') AS g_user,
        if({each_environment:UInt8}, environment, '') AS g_environment,
        cost_delta_usd AS cost,
        toUInt64(0) AS is_call,
        toUInt64(0) AS unpriced
    FROM cost_restatements FINAL
    WHERE start_time >= {since:DateTime64(6, 'UTC')}
      AND start_time < {until:DateTime64(6, 'UTC')}
      AND (NOT {match_feature:UInt8} OR feature = {feature:String})
      AND (NOT {match_tenant:UInt8} OR tenant = {tenant:String})
      AND (NOT {match_user:UInt8} OR user_id = {user:String})
      AND (NOT {match_environment:UInt8} OR environment = {environment:String})
)
GROUP BY g_feature, g_tenant, g_user, g_environment
ORDER BY spend_usd DESC, g_feature, g_tenant, g_user, g_environment
