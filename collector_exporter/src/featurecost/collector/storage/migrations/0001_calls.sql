-- One row per billable LLM call. ReplacingMergeTree on the span identity makes a span
-- delivered twice count once (queries read with FINAL); insert_deduplication_token
-- additionally drops a whole re-inserted batch.
CREATE TABLE IF NOT EXISTS calls
(
    trace_id String,
    span_id String,
    start_time DateTime64(6, 'UTC'),
    end_time DateTime64(6, 'UTC'),
    environment LowCardinality(String),
    service_name LowCardinality(String),
    feature LowCardinality(String),
    tenant String,
    user_id String,
    plan LowCardinality(String),
    root_id String,
    session_id String,
    version LowCardinality(String),
    operation LowCardinality(String),
    provider LowCardinality(String),
    request_model LowCardinality(String),
    response_model LowCardinality(String),
    input_tokens UInt64,
    output_tokens UInt64,
    cache_read_tokens UInt64,
    cache_write_tokens UInt64,
    reasoning_tokens UInt64,
    usage_source LowCardinality(String),
    status LowCardinality(String),
    error_type LowCardinality(String),
    attributes Map(String, String),
    cost_usd Nullable(Decimal(38, 18)),
    input_cost_usd Nullable(Decimal(38, 18)),
    output_cost_usd Nullable(Decimal(38, 18)),
    price_source LowCardinality(String),
    price_entry LowCardinality(String),
    price_data_version LowCardinality(String),
    unpriced_reason String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(start_time)
ORDER BY (environment, feature, toStartOfHour(start_time), trace_id, span_id)
SETTINGS non_replicated_deduplication_window = 10000
