-- rollup_actions' rows computed straight from `calls FINAL` (+ restatement deltas; a
-- restatement that prices an unpriced call takes it out of unpriced_calls, as 0070's views
-- do); see raw_hourly.sql.
SELECT
    toStartOfHour(src.start_time) AS hour,
    src.environment AS environment, src.feature AS feature, src.session_id AS session_id, src.root_id AS root_id, src.tenant AS tenant, src.user_id AS user_id, src.plan AS plan, src.version AS version, src.provider AS provider,
    if(src.response_model != '', src.response_model AS response_model, src.request_model) AS model,
    toUInt64(1) AS calls,
    toInt64(src.cost_usd IS NULL) AS unpriced_calls,
    src.input_tokens AS input_tokens, src.output_tokens AS output_tokens, src.cache_read_tokens AS cache_read_tokens, src.cache_write_tokens AS cache_write_tokens, src.reasoning_tokens AS reasoning_tokens,
    ifNull(src.cost_usd, toDecimal128(0, 18)) AS cost_usd,
    toDecimal128(0, 18) AS restated_usd,
    src.start_time AS first_call,
    src.start_time AS last_call
FROM calls AS src FINAL
WHERE src.superseded_by = ''  -- a superseded span is another span's call (0050)
UNION ALL
SELECT
    toStartOfHour(src.start_time) AS hour,
    src.environment AS environment, src.feature AS feature, src.session_id AS session_id, src.root_id AS root_id, src.tenant AS tenant, src.user_id AS user_id, src.plan AS plan, src.version AS version, src.provider AS provider,
    if(src.response_model != '', src.response_model AS response_model, src.request_model) AS model,
    toUInt64(0), -toInt64(src.previous_cost_usd IS NULL AND src.cost_usd IS NOT NULL), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0),
    src.cost_delta_usd AS cost_delta_usd, src.cost_delta_usd AS cost_delta_usd, src.start_time AS start_time, src.start_time AS start_time
FROM cost_restatements AS src
