-- The per-feature cost table over [since, until) for one environment ('*': all).
-- total_cost_usd sums priced calls plus restatement deltas (cost_restatements); it is NULL
-- only when nothing in the feature was priced or restated. unpriced_calls counts the calls
-- whose cost is still unknown: NULL when stored and not priced by a restatement since (a
-- `prices reprice` after the model was added to the prices file), so an unknown model shows up
-- instead of looking free, and stops showing once it is priced.
WITH priced_later AS (
    SELECT trace_id, span_id
    FROM cost_restatements FINAL
    WHERE cost_usd IS NOT NULL
      AND ({environment:String} = '*' OR environment = {environment:String})
      AND start_time >= {since:DateTime64(6, 'UTC')}
      AND start_time < {until:DateTime64(6, 'UTC')}
),
deltas AS (
    SELECT feature, sum(cost_delta_usd) AS delta_usd
    FROM cost_restatements
    WHERE ({environment:String} = '*' OR environment = {environment:String})
      AND ({feature:String} = '' OR feature = {feature:String})
      AND ({tenant:String} = '' OR tenant = {tenant:String})
      AND start_time >= {since:DateTime64(6, 'UTC')}
      AND start_time < {until:DateTime64(6, 'UTC')}
    GROUP BY feature
)
SELECT
    c.feature AS feature,
    count() AS calls,
    uniqExact(c.root_id) AS actions,
    uniqExact(c.session_id) AS sessions,
    sum(c.input_tokens) AS input_tokens,
    sum(c.output_tokens) AS output_tokens,
    sum(c.cache_read_tokens) AS cache_read_tokens,
    sum(c.cache_write_tokens) AS cache_write_tokens,
    sum(c.reasoning_tokens) AS reasoning_tokens,
    any(d.feature) != '' AS restated,
    if(countIf(c.cost_usd IS NOT NULL) = 0 AND NOT restated, NULL,
       sum(ifNull(c.cost_usd, toDecimal128(0, 18))) + any(d.delta_usd)) AS total_cost_usd,
    countIf(c.cost_usd IS NULL AND (c.trace_id, c.span_id) NOT IN priced_later) AS unpriced_calls,
    groupUniqArrayIf(
        c.unpriced_reason, c.unpriced_reason != '' AND (c.trace_id, c.span_id) NOT IN priced_later
    ) AS unpriced_reasons
FROM calls AS c FINAL
LEFT JOIN deltas AS d ON d.feature = c.feature
WHERE ({environment:String} = '*' OR c.environment = {environment:String})
  AND ({feature:String} = '' OR c.feature = {feature:String})  -- '' : every feature
  AND ({tenant:String} = '' OR c.tenant = {tenant:String})  -- '' : every tenant
  AND c.superseded_by = ''  -- another span of the same provider call is billed (0050)
  AND c.start_time >= {since:DateTime64(6, 'UTC')}
  AND c.start_time < {until:DateTime64(6, 'UTC')}
GROUP BY c.feature
ORDER BY ifNull(total_cost_usd, 0) DESC, feature
