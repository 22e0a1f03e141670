-- rollup_hourly's rows computed straight from `calls FINAL` (+ restatement deltas; a
-- restatement that prices an unpriced call takes it out of unpriced_calls, as 0070's views
-- do): the exact, duplicate-proof source a rollup query runs on with source=raw, and what
-- rebuild_rollups re-derives a month from. One row per call / delta; queries re-aggregate.
SELECT
    toStartOfHour(src.start_time) AS hour,
    src.environment AS environment, src.feature AS feature, src.tenant AS tenant, src.provider AS provider,
    if(src.response_model != '', src.response_model AS response_model, src.request_model) AS model,
    src.version AS version,
    toUInt64(1) AS calls,
    toInt64(src.cost_usd IS NULL) AS unpriced_calls,
    src.input_tokens AS input_tokens, src.output_tokens AS output_tokens, src.cache_read_tokens AS cache_read_tokens, src.cache_write_tokens AS cache_write_tokens, src.reasoning_tokens AS reasoning_tokens,
    ifNull(src.cost_usd, toDecimal128(0, 18)) AS cost_usd,
    ifNull(src.input_cost_usd, toDecimal128(0, 18)) AS input_cost_usd,
    ifNull(src.output_cost_usd, toDecimal128(0, 18)) AS output_cost_usd,
    toDecimal128(0, 18) AS restated_usd,
    toUInt64(0) AS restatements
FROM calls AS src FINAL
WHERE src.superseded_by = ''  -- a superseded span is another span's call (0050)
UNION ALL
SELECT
    toStartOfHour(src.start_time) AS hour,
    src.environment AS environment, src.feature AS feature, src.tenant AS tenant, src.provider AS provider,
    if(src.response_model != '', src.response_model AS response_model, src.request_model) AS model,
    src.version AS version,
    toUInt64(0), -toInt64(src.previous_cost_usd IS NULL AND src.cost_usd IS NOT NULL), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0),
    src.cost_delta_usd AS cost_delta_usd, toDecimal128(0, 18), toDecimal128(0, 18), src.cost_delta_usd AS cost_delta_usd, toUInt64(1)
FROM cost_restatements AS src
