-- rollup_hourly's rows computed straight from `calls FINAL` (+ restatement deltas): the
-- exact, duplicate-proof source a rollup query runs on with source=raw, and what
-- rebuild_rollups re-derives a month from. One row per call / delta; queries re-aggregate.
SELECT
    toStartOfHour(start_time) AS hour,
    environment, feature, tenant, provider,
    if(response_model != '', response_model, request_model) AS model,
    version,
    toUInt64(1) AS calls,
    toUInt64(cost_usd IS NULL) AS unpriced_calls,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    ifNull(cost_usd, toDecimal128(0, 18)) AS cost_usd,
    ifNull(input_cost_usd, toDecimal128(0, 18)) AS input_cost_usd,
    ifNull(output_cost_usd, toDecimal128(0, 18)) AS output_cost_usd,
    toDecimal128(0, 18) AS restated_usd,
    toUInt64(0) AS restatements
FROM calls FINAL
UNION ALL
SELECT
    toStartOfHour(start_time) AS hour,
    environment, feature, tenant, provider,
    if(response_model != '', response_model, request_model) AS model,
    version,
    toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0),
    cost_delta_usd, toDecimal128(0, 18), toDecimal128(0, 18), cost_delta_usd, toUInt64(1)
FROM cost_restatements
