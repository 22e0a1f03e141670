-- rollup_actions' rows computed straight from `calls FINAL` (+ restatement deltas); see
-- raw_hourly.sql.
SELECT
    toStartOfHour(start_time) AS hour,
    environment, feature, session_id, root_id, tenant, user_id, plan, version, provider,
    if(response_model != '', response_model, request_model) AS model,
    toUInt64(1) AS calls,
    toUInt64(cost_usd IS NULL) AS unpriced_calls,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    ifNull(cost_usd, toDecimal128(0, 18)) AS cost_usd,
    toDecimal128(0, 18) AS restated_usd,
    start_time AS first_call,
    start_time AS last_call
FROM calls FINAL
UNION ALL
SELECT
    toStartOfHour(start_time) AS hour,
    environment, feature, session_id, root_id, tenant, user_id, plan, version, provider,
    if(response_model != '', response_model, request_model) AS model,
    toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0),
    cost_delta_usd, cost_delta_usd, start_time, start_time
FROM cost_restatements
