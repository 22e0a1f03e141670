-- Where each feature's tokens go, per root action (user action): the per-action averages
-- are computed by the caller from these totals (turns = calls / actions).
-- Distinct ids are counted by their 64-bit hash: ~5x faster than hashing the strings,
-- and two of n ids collide with odds about n^2 / 2^65 (1 in 10 million at 2M actions).
SELECT
    feature,
    uniqExact(cityHash64(root_id)) AS actions,
    sum(calls) AS calls,
    sum(unpriced_calls) AS unpriced_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS spend_usd
FROM rollup_actions
WHERE ({environment:String} = '*' OR environment = {environment:String})
  AND hour >= toStartOfHour({since:DateTime64(6, 'UTC')})
  AND hour < {until:DateTime64(6, 'UTC')}
GROUP BY feature
ORDER BY spend_usd DESC, feature
