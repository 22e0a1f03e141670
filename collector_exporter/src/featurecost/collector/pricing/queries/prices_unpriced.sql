-- Models seen without a price in [since, until): calls still unpriced after restatements,
-- grouped by provider, model and the reason the pricer gave.
SELECT
    c.provider AS provider,
    if(c.response_model != '', c.response_model, c.request_model) AS model,
    c.unpriced_reason AS reason,
    any(c.endpoint) AS endpoint,
    count() AS calls,
    sum(c.input_tokens) AS input_tokens,
    sum(c.output_tokens) AS output_tokens,
    min(c.start_time) AS first_seen,
    max(c.start_time) AS last_seen
FROM calls AS c FINAL
WHERE c.cost_usd IS NULL
  AND c.superseded_by = ''
  AND c.start_time >= {since:DateTime64(6, 'UTC')}
  AND c.start_time < {until:DateTime64(6, 'UTC')}
  AND (c.trace_id, c.span_id) NOT IN (
      SELECT trace_id, span_id FROM cost_restatements FINAL WHERE cost_usd IS NOT NULL
  )
GROUP BY provider, model, reason
ORDER BY calls DESC, provider, model
