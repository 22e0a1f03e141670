-- Table: prompt caching per feature. Tokens served from the cache and the cache-read
-- share of input tokens (the hit rate). Dollar savings need the price of a cache read vs
-- a fresh input token per call, which the raw table does not keep; see docs/dashboards.md.
SELECT
    feature,
    sum(input_tokens) AS input_tokens_total,
    sum(cache_read_tokens) AS cache_read_tokens_total,
    sum(cache_write_tokens) AS cache_write_tokens_total,
    if(sum(input_tokens) = 0, NULL, sum(cache_read_tokens) / sum(input_tokens)) AS cache_hit_rate,
    sum(input_cost_usd) AS input_cost_total_usd
FROM calls FINAL
WHERE environment = ${environment:sqlstring}
  AND $__timeFilter(start_time)
  AND ('__all' IN (${feature:sqlstring}) OR feature IN (${feature:sqlstring}))
  AND ('__all' IN (${tenant:sqlstring}) OR tenant IN (${tenant:sqlstring}))
GROUP BY feature
ORDER BY cache_read_tokens_total DESC, feature
