-- The per-feature cost table over [since, until) for one environment.
-- total_cost_usd sums priced calls only; unpriced_calls counts the calls whose cost is
-- unknown (NULL), so an unknown model shows up instead of looking free.
SELECT
    feature,
    count() AS calls,
    uniqExact(root_id) AS actions,
    uniqExact(session_id) AS sessions,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS total_cost_usd,
    countIf(cost_usd IS NULL) AS unpriced_calls,
    groupUniqArrayIf(unpriced_reason, unpriced_reason != '') AS unpriced_reasons
FROM calls FINAL
WHERE ({environment:String} = '*' OR environment = {environment:String})
  AND start_time >= {since:DateTime64(6, 'UTC')}
  AND start_time < {until:DateTime64(6, 'UTC')}
GROUP BY feature
ORDER BY ifNull(total_cost_usd, 0) DESC, feature
