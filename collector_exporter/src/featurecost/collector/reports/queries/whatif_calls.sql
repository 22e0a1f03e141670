-- The calls of one feature (and optionally one tenant) in the window, one row per call, with
-- the usage the what-if report re-prices at another model and the call's actual cost:
-- calls FINAL (a span stored twice counts once) plus its restatement deltas. `priced` says
-- whether the call has a cost at all: priced at ingest, or restated (a restatement always
-- carries a price: reprice never turns a cost back into NULL).
WITH restated AS (
    SELECT
        trace_id,
        span_id,
        sum(cost_delta_usd) AS delta_usd,
        count() AS restatements
    FROM cost_restatements
    WHERE feature = {feature:String}
      AND ({environment:String} = '*' OR environment = {environment:String})
      AND start_time >= {since:DateTime64(6, 'UTC')}
      AND start_time < {until:DateTime64(6, 'UTC')}
    GROUP BY trace_id, span_id
)
SELECT
    c.start_time AS start_time,
    c.tenant AS tenant,
    c.root_id AS root_id,
    c.provider AS provider,
    if(c.response_model != '', c.response_model, c.request_model) AS model,
    c.service_tier AS service_tier,
    c.usage_source AS usage_source,
    c.status AS status,
    c.input_tokens AS input_tokens,
    c.output_tokens AS output_tokens,
    c.cache_read_tokens AS cache_read_tokens,
    c.cache_write_tokens AS cache_write_tokens,
    c.cache_write_1h_tokens AS cache_write_1h_tokens,
    c.reasoning_tokens AS reasoning_tokens,
    c.input_audio_tokens AS input_audio_tokens,
    c.output_audio_tokens AS output_audio_tokens,
    c.cost_usd IS NOT NULL OR ifNull(r.restatements, 0) > 0 AS priced,
    ifNull(c.cost_usd, toDecimal128(0, 18)) + ifNull(r.delta_usd, toDecimal128(0, 18)) AS actual_usd
FROM calls AS c FINAL
LEFT JOIN restated AS r ON r.trace_id = c.trace_id AND r.span_id = c.span_id
WHERE c.feature = {feature:String}
  AND c.superseded_by = ''  -- a superseded span is another span's call (0050)
  AND ({tenant:String} = '' OR c.tenant = {tenant:String})
  AND ({environment:String} = '*' OR c.environment = {environment:String})
  AND c.start_time >= {since:DateTime64(6, 'UTC')}
  AND c.start_time < {until:DateTime64(6, 'UTC')}
ORDER BY c.start_time, c.trace_id, c.span_id
