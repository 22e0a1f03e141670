-- Calls in [since, until) (optionally of one model) with their cost as restated so far:
-- what `featurecost prices reprice` compares a fresh pricing against.
SELECT
    c.trace_id AS trace_id, c.span_id AS span_id, c.start_time AS start_time, c.end_time AS end_time,
    c.environment AS environment, c.service_name AS service_name, c.feature AS feature, c.tenant AS tenant,
    c.user_id AS user_id, c.plan AS plan, c.root_id AS root_id, c.session_id AS session_id,
    c.version AS version, c.operation AS operation, c.provider AS provider,
    c.request_model AS request_model, c.response_model AS response_model,
    c.input_tokens AS input_tokens, c.output_tokens AS output_tokens,
    c.cache_read_tokens AS cache_read_tokens, c.cache_write_tokens AS cache_write_tokens,
    c.reasoning_tokens AS reasoning_tokens, c.usage_source AS usage_source, c.status AS status,
    c.error_type AS error_type, c.cache_write_1h_tokens AS cache_write_1h_tokens,
    c.input_audio_tokens AS input_audio_tokens, c.output_audio_tokens AS output_audio_tokens,
    c.service_tier AS service_tier, c.endpoint AS endpoint, c.gateway_cost_usd AS gateway_cost_usd,
    c.cost_usd AS stored_cost_usd, c.input_cost_usd AS stored_input_cost_usd,
    c.output_cost_usd AS stored_output_cost_usd,
    r.restatements AS restatements, r.cost_usd AS restated_cost_usd,
    r.input_cost_usd AS restated_input_cost_usd, r.output_cost_usd AS restated_output_cost_usd
FROM calls AS c FINAL
LEFT JOIN
(
    SELECT
        trace_id, span_id, count() AS restatements,
        argMax(cost_usd, restated_at) AS cost_usd,
        sum(input_cost_delta_usd) AS input_cost_usd,
        sum(output_cost_delta_usd) AS output_cost_usd
    FROM cost_restatements FINAL
    GROUP BY trace_id, span_id
) AS r ON c.trace_id = r.trace_id AND c.span_id = r.span_id
WHERE c.start_time >= {since:DateTime64(6, 'UTC')}
  AND c.superseded_by = ''  -- not billed: re-pricing it would bill it through its deltas
  AND c.start_time < {until:DateTime64(6, 'UTC')}
  AND ({model:String} = '' OR c.response_model = {model:String} OR c.request_model = {model:String})
ORDER BY c.start_time, c.trace_id, c.span_id
